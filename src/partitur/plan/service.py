"""Tracking plan storage and enforcement (to be completed: see plan package docs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from partitur.auth.keys import Source
from partitur.clock import Clock
from partitur.store.db import Database, Tx


class PlanService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def inspector(self, source: Source) -> Callable[[int, Any], tuple[bool, Any, bool]] | None:
        """A per-request check for ``source``'s events, or None when nothing is enforced."""
        return None

    def write_rejected(self, tx: Tx, rows: Sequence[tuple[Any, ...]]) -> None:
        tx.executemany(
            "INSERT INTO rejected_events (received_at, source_id, type, event, message_id, "
            "action, violations, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
