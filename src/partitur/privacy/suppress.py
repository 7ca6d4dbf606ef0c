"""Keep erased people out at the door: drop, in the group commit's transaction, events that
carry a suppressed identifier, before they reach the event log or the rejected store.

The worker already deletes such events before they touch a profile, so for the event log this
is a saving (they are never written); for the rejected store, which the worker does not read,
it is the only guard. Log rows are checked by their ``userId`` and ``anonymousId`` columns
(and an alias by its ``previousId``); an event recognised only by an email or a phone is left
to the worker. Rejected-store records, few by nature, are checked for every identifier and for
an email or phone in their traits or properties.

Cost: per commit, one indexed read of the highest suppression id. Each server keeps the first
64 bits of every suppression hash in memory (about 60 bytes each), loading only those added
since it last looked, and remembers which column values it has judged, so the common case is
a few set operations per commit and a SHA-256 per value not seen before. A hit is confirmed
against the table, and only then are the rows looked at one by one.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from partitur.identity.extract import IdentityRules, identifier_hash
from partitur.privacy.find import carried_keys
from partitur.store.db import Tx

_DEC = msgspec.json.Decoder()
_TYPE, _BODY = 2, 9  # in an event log row (ingest.rows.Row)
_COLUMNS = {"user_id": 4, "anonymous_id": 5}  # identifier type -> its column in that row
_REJECTED_BODY = 8  # in a rejected store row (plan.enforce.Record[0])
_MAX_JUDGED = 500_000  # column values remembered per process (about 100 bytes each)


class Batch(Protocol):
    """One request's share of a group commit."""

    rows: Sequence[Sequence[Any]]
    rejected: Sequence[tuple[Any, ...]]


def _prefix(digest: str) -> int:
    return int(digest[:16], 16)


class SuppressionCheck:
    """``check(tx, batches)`` removes the rows and rejected records that carry a suppressed
    identifier from each batch, in place, and returns how many it removed. One instance per
    process (``dialect``: the store's), shared by the group-commit threads (one on SQLite, two
    on PostgreSQL), which take turns with its in-memory state."""

    def __init__(self, rules: IdentityRules, dialect: str) -> None:
        self.rules = rules
        # What only grows as suppressions are added: SQLite's rowid, PostgreSQL's id (0006).
        self._order = "rowid" if dialect == "sqlite" else "id"
        self._loaded = 0  # highest suppression id held in ``_prefixes``
        self._prefixes: set[int] = set()
        # Per column, the raw values already judged, and those whose hash prefix is held.
        self._judged: dict[str, set[str]] = {kind: set() for kind in _COLUMNS}
        self._held: dict[str, set[str]] = {kind: set() for kind in _COLUMNS}
        self._lock = threading.Lock()

    def refresh(self, tx: Tx) -> bool:
        """Load suppressions added since last time; False when there are none at all."""
        row = tx.one(f"SELECT MAX({self._order}) FROM suppressions")
        top = int(row[0]) if row and row[0] is not None else 0
        if top != self._loaded:
            if top < self._loaded:  # a different or rebuilt store: start over
                self._loaded, self._prefixes = 0, set()
            for (digest,) in tx.execute(
                f"SELECT hash FROM suppressions WHERE {self._order} > ? AND {self._order} <= ?",
                (self._loaded, top),
            ):
                self._prefixes.add(_prefix(digest))
            self._loaded = top
            self._forget()
        return bool(self._prefixes)

    def _forget(self) -> None:
        for kind in _COLUMNS:
            self._judged[kind].clear()
            self._held[kind].clear()

    def _may_be_held(self, kind: str, value: str) -> bool:
        # The first 64 bits of ``identifier_hash``, without spelling it out in hex.
        digest = hashlib.sha256(f"{kind}:{value}".encode()).digest()
        return int.from_bytes(digest[:8], "big") in self._prefixes

    def _body_keys(self, body: str | bytes, *, contact: bool) -> set[str]:
        try:
            message = _DEC.decode(body)
        except msgspec.DecodeError:
            return set()
        if not isinstance(message, dict):
            return set()
        return carried_keys(message, self.rules, contact=contact)

    def _row_keys(self, row: Sequence[Any]) -> set[str]:
        keys = set()
        for kind, at in _COLUMNS.items():
            if row[at] is not None:
                keys.add(f"{kind}:{row[at].strip()}")
        if row[_TYPE] == "alias":  # previousId is only in the body
            keys |= self._body_keys(row[_BODY], contact=False)
        return keys

    def __call__(self, tx: Tx, batches: Sequence[Batch]) -> int:
        with self._lock:
            return self._check(tx, batches)

    def _check(self, tx: Tx, batches: Sequence[Batch]) -> int:
        if not self.refresh(tx):
            return 0
        candidates: set[str] = set()
        # The common case, in set operations: every distinct column value of the commit is
        # judged once per process (until a new erasure), and is almost never held.
        if sum(len(self._judged[k]) for k in _COLUMNS) > _MAX_JUDGED:
            self._forget()
        for kind, at in _COLUMNS.items():
            values = {r[at] for b in batches for r in b.rows}
            values.discard(None)
            judged, held = self._judged[kind], self._held[kind]
            for value in values - judged:
                judged.add(value)
                if self._may_be_held(kind, value.strip()):
                    held.add(value)
            candidates.update(f"{kind}:{v.strip()}" for v in values & held)
        bodies = [(r[_BODY], False) for b in batches for r in b.rows if r[_TYPE] == "alias"]
        bodies += [(r[0][_REJECTED_BODY], True) for b in batches for r in b.rejected]
        for body, contact in bodies:
            candidates.update(k for k in self._body_keys(body, contact=contact)
                              if self._may_be_held(*k.split(":", 1)))
        if not candidates:
            return 0
        suppressed = self.suppressed(tx, candidates)
        if not suppressed:
            return 0
        dropped = 0
        for batch in batches:
            rows = [r for r in batch.rows if not suppressed & self._row_keys(r)]
            kept = [r for r in batch.rejected if not suppressed & self._body_keys(
                r[0][_REJECTED_BODY], contact=True)]
            dropped += len(batch.rows) - len(rows) + len(batch.rejected) - len(kept)
            batch.rows, batch.rejected = rows, kept
        return dropped

    @staticmethod
    def suppressed(tx: Tx, keys: set[str]) -> set[str]:
        """The keys among ``keys`` whose identifier was erased (asked of the table)."""
        by_hash = {identifier_hash(*key.split(":", 1)): key for key in keys}
        hashes = sorted(by_hash)
        found: set[str] = set()
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(by_hash[r[0]] for r in tx.execute(
                f"SELECT hash FROM suppressions WHERE hash IN ({marks})", chunk))
        return found
