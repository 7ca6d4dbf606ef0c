"""The tracking plan service: versions in the store, enforcement on the ingest path.

Each apply stores a new version (unless nothing changed). The enforcer compiles a version once
(:func:`partitur.plan.enforce.compile_plan`) and asks the store for the latest version number at
most every :data:`REFRESH_SECONDS`, so a plan applied by another process takes effect on every
server within about a second, and the request path costs no query otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from partitur.auth.keys import Source
from partitur.clock import Clock
from partitur.errors import NotFound
from partitur.plan import store
from partitur.plan.enforce import CompiledPlan, Record, compile_plan, inspect
from partitur.plan.lineage import lineage
from partitur.plan.model import TrackingPlan
from partitur.plan.parse import load_document, parse_plan
from partitur.plan.policy import effective_policy
from partitur.plan.store import Applied, RejectedQuery, StoredPlan
from partitur.store.db import Database, Tx

log = logging.getLogger("partitur.plan")

REFRESH_SECONDS = 1.0
Inspector = Callable[[int, Any], tuple[bool, Record | None, bool]]

__all__ = ["Applied", "Inspector", "PlanService", "RejectedQuery", "StoredPlan"]


class PlanService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._compiled: CompiledPlan | None = None
        self._checked = -REFRESH_SECONDS
        self._lock = threading.Lock()

    # -- versions ------------------------------------------------------------------------------
    def get(self, version: int | None = None) -> StoredPlan:
        with self.db.read() as tx:
            found = store.load(tx, version)
        if found is None:
            raise NotFound("no tracking plan has been applied" if version is None
                           else f"there is no tracking plan version {version}")
        return found

    def apply(self, plan: TrackingPlan, *, expected: int | None = None) -> Applied:
        """Store ``plan`` as a new version; ``expected`` guards against lost updates."""
        with self.db.transaction() as tx:
            applied = store.store(tx, plan.dump(), self.clock.now_us(), expected)
        if applied.changed:
            self.refresh()
        return applied

    def apply_yaml(self, text: str, *, expected: int | None = None) -> Applied:
        return self.apply(parse_plan(load_document(text)), expected=expected)

    def apply_data(self, data: Any, *, expected: int | None = None) -> Applied:
        return self.apply(parse_plan(data), expected=expected)

    def versions(self, limit: int = 50) -> list[dict[str, Any]]:
        with self.db.read() as tx:
            return store.versions(tx, limit)

    def lineage(self, known_sources: Sequence[str] = ()) -> dict[str, Any]:
        stored = self.get()
        out = lineage(TrackingPlan.model_validate(stored.doc), known_sources)
        return {"version": stored.version, **out}

    # -- enforcement ---------------------------------------------------------------------------
    def refresh(self) -> None:
        """Look for a new version on the next event (after an apply in this process)."""
        self._checked = -REFRESH_SECONDS

    def compiled(self) -> CompiledPlan | None:
        """The current version, compiled; checks for a newer one at most once a second."""
        now = time.monotonic()
        if now - self._checked < REFRESH_SECONDS:
            return self._compiled
        with self._lock:
            if now - self._checked < REFRESH_SECONDS:
                return self._compiled
            with self.db.read() as tx:
                version = store.latest_version(tx)
                if version == 0:
                    self._compiled = None
                elif self._compiled is None or self._compiled.version != version:
                    found = store.load(tx, version)
                    assert found is not None
                    self._compiled = self._compile(found)
            self._checked = now
        return self._compiled

    def _compile(self, found: StoredPlan) -> CompiledPlan | None:
        try:
            return compile_plan(found.version, TrackingPlan.model_validate(found.doc))
        except Exception:  # stored by an older release under other rules: keep what runs
            log.exception("tracking plan version %d cannot be enforced", found.version)
            return self._compiled

    def inspector(self, source: Source) -> Inspector | None:
        """The check for one request from ``source``, or None when there is no plan."""
        plan = self.compiled()
        if plan is None:
            return None
        policy = effective_policy(source.plan_policy, plan.policy)
        source_id = source.id

        def check(index: int, msg: Any) -> tuple[bool, Record | None, bool]:
            return inspect(plan, policy, source_id, msg)

        return check

    # -- the rejected store ----------------------------------------------------------------------
    def write_rejected(self, tx: Tx, records: Sequence[tuple[Any, ...]]) -> None:
        """Called by the group commit, in the transaction that writes the event log."""
        store.write_rejected(tx, records)

    def violations_summary(
        self, since_us: int | None = None, source_id: str | None = None
    ) -> list[dict[str, Any]]:
        with self.db.read() as tx:
            return store.summary(tx, since_us, source_id)

    def rejected(self, query: RejectedQuery) -> tuple[list[dict[str, Any]], str | None]:
        with self.db.read() as tx:
            return store.rejected(tx, query)
