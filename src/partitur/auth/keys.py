"""Sources and their write keys; admin tokens for the management API.

A key is 32 random bytes, URL-safe, shown once when created. Only its SHA-256 is stored: keys
are high-entropy, so a fast unsalted hash is enough and lets a lookup be one index probe.
Lookups are cached for a few seconds, so revocation and policy changes apply within that time
across processes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from partitur.clock import Clock
from partitur.errors import Conflict, InvalidInput, NotFound
from partitur.store.db import Database

_TTL = 5.0


@dataclass(frozen=True)
class Source:
    id: str
    name: str
    rate_limit: float | None = None
    plan_policy: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "rate_limit": self.rate_limit,
            "plan_policy": self.plan_policy,
        }


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Keys:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._cache: dict[str, tuple[float, Source | None]] = {}
        self._admin: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    # -- sources -------------------------------------------------------------------------------
    def get_source(self, name: str) -> Source:
        with self.db.read() as tx:
            row = tx.one(
                "SELECT id, name, rate_limit, plan_policy FROM sources WHERE name = ? OR id = ?",
                (name, name),
            )
        if row is None:
            raise NotFound(f"no source named '{name}'")
        return Source(row[0], row[1], row[2], json.loads(row[3]))

    def list_sources(self) -> list[Source]:
        with self.db.read() as tx:
            rows = tx.execute(
                "SELECT id, name, rate_limit, plan_policy FROM sources ORDER BY name"
            )
        return [Source(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def ensure_source(self, name: str) -> Source:
        if not name or len(name) > 100:
            raise InvalidInput("a source name must be 1 to 100 characters")
        try:
            return self.get_source(name)
        except NotFound:
            pass
        source_id = "src_" + uuid.uuid4().hex[:12]
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO sources (id, name, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (source_id, name, self.clock.now_us()),
            )
        return self.get_source(name)

    def update_source(
        self,
        name: str,
        *,
        rate_limit: float | None = None,
        plan_policy: dict[str, Any] | None = None,
        clear_rate_limit: bool = False,
    ) -> Source:
        source = self.get_source(name)
        new_limit = rate_limit if rate_limit is not None else source.rate_limit
        if clear_rate_limit:
            new_limit = None
        if new_limit is not None and new_limit < 0:
            raise InvalidInput("rate_limit must be >= 0")
        policy = plan_policy if plan_policy is not None else source.plan_policy
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE sources SET rate_limit = ?, plan_policy = ? WHERE id = ?",
                (new_limit, json.dumps(policy), source.id),
            )
        self._cache.clear()
        return self.get_source(source.id)

    # -- keys ----------------------------------------------------------------------------------
    def create_write_key(self, source_name: str) -> tuple[str, Source]:
        source = self.ensure_source(source_name)
        key = "wk_" + secrets.token_urlsafe(24)
        self._store(key, "write", source.id, None)
        return key, source

    def create_admin_key(self, label: str | None = None) -> str:
        key = "adm_" + secrets.token_urlsafe(32)
        self._store(key, "admin", None, label)
        return key

    def _store(self, key: str, kind: str, source_id: str | None, label: str | None) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO api_keys (hash, kind, source_id, prefix, label, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (hash_key(key), kind, source_id, key[:8], label, self.clock.now_us()),
            )

    def store_known_key(self, key: str, kind: str, source_name: str | None = None) -> None:
        """Register a key chosen by the operator (the demo uses fixed keys)."""
        source_id = self.ensure_source(source_name).id if source_name else None
        with self.db.transaction() as tx:
            exists = tx.one("SELECT kind FROM api_keys WHERE hash = ?", (hash_key(key),))
            if exists is not None:
                if exists[0] != kind:
                    raise Conflict("that key is already registered as another kind")
                return
        self._store(key, kind, source_id, "chosen")

    def list_keys(self) -> list[dict[str, Any]]:
        with self.db.read() as tx:
            rows = tx.execute(
                "SELECT k.prefix, k.kind, s.name, k.label, k.created_at, k.revoked_at "
                "FROM api_keys k LEFT JOIN sources s ON s.id = k.source_id ORDER BY k.created_at"
            )
        return [
            {"prefix": r[0], "kind": r[1], "source": r[2], "label": r[3], "created_at": r[4],
             "revoked": r[5] is not None}
            for r in rows
        ]

    def revoke(self, key: str) -> None:
        with self.db.transaction() as tx:
            done = tx.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE hash = ? AND revoked_at IS NULL "
                "RETURNING 1",
                (self.clock.now_us(), hash_key(key)),
            )
        if not done:
            raise NotFound("no such active key")
        self._cache.clear()
        self._admin.clear()

    def resolve_write_key(self, key: str | None) -> Source | None:
        if not key:
            return None
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.db.read() as tx:
            row = tx.one(
                "SELECT s.id, s.name, s.rate_limit, s.plan_policy FROM api_keys k "
                "JOIN sources s ON s.id = k.source_id "
                "WHERE k.hash = ? AND k.kind = 'write' AND k.revoked_at IS NULL",
                (digest,),
            )
        source = Source(row[0], row[1], row[2], json.loads(row[3])) if row else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + _TTL, source)
        return source

    def is_admin(self, token: str | None) -> bool:
        if not token:
            return False
        digest = hash_key(token)
        now = time.monotonic()
        hit = self._admin.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.db.read() as tx:
            row = tx.one(
                "SELECT 1 FROM api_keys WHERE hash = ? AND kind = 'admin' AND revoked_at IS NULL",
                (digest,),
            )
        ok = row is not None
        with self._lock:
            if len(self._admin) > 1000:
                self._admin.clear()
            self._admin[digest] = (now + _TTL, ok)
        return ok
