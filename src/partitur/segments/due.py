"""Time passing: re-evaluate the memberships whose due time has come.

Every evaluation stores in ``segment_due`` the next moment time alone could change a
person's membership ("no order in 30 days" becomes true 30 days after the last order).
:func:`fire_due` claims the rows that are due, in batches, re-evaluates them in their own
transaction, writes the changes and hands them to the hooks after the segment hook
(journeys), exactly as a batch of events would. On PostgreSQL rows are claimed with
``FOR UPDATE SKIP LOCKED``, and people the profile worker holds at that moment are left for
the next round, so several processes can run it at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from partitur.profiles import store as profile_store
from partitur.segments.engine import evaluate_people

if TYPE_CHECKING:
    from partitur.segments.service import SegmentService
    from partitur.services import Services

MAX_ROUNDS = 1000


def _service(services: Services) -> SegmentService:
    seg: SegmentService = services.extra["segments"]
    return seg


def lock_people(tx: Any, dialect: str, ids: list[str]) -> set[str]:
    """The people among ``ids`` this transaction could lock (all of them on SQLite, whose
    transactions hold the whole database)."""
    if dialect != "postgres" or not ids:
        return set(ids)
    marks = ",".join("?" * len(ids))
    rows = tx.execute(
        f"SELECT id FROM profiles WHERE id IN ({marks}) ORDER BY id FOR UPDATE SKIP LOCKED", ids
    )
    return {r[0] for r in rows}


def fire_due(services: Services, now_us: int, *, batch: int | None = None) -> int:
    """Re-evaluate every membership due at or before ``now_us``; returns how many
    (person, segment) pairs were evaluated. Call it after moving a manual clock."""
    size = batch or services.settings.segments_batch
    total = 0
    for _ in range(MAX_ROUNDS):
        done, more = _round(services, now_us, size)
        total += done
        if not more:
            break
    return total


def _round(services: Services, now_us: int, size: int) -> tuple[int, bool]:
    seg = _service(services)
    db = services.db
    skip = " FOR UPDATE SKIP LOCKED" if db.dialect == "postgres" else ""
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT profile_id, segment FROM segment_due WHERE due_at <= ? "
            f"ORDER BY due_at LIMIT ?{skip}",
            (now_us, size),
        )
        if not rows:
            return 0, False
        locked = lock_people(tx, db.dialect, sorted({r[0] for r in rows}))
        people = {
            pid: state
            for pid, state in profile_store.load(tx, sorted(locked)).items()
            if state.merged_into is None
        }
        defs = seg.cache.get(tx)
        wanted: dict[str, set[str]] = {}
        stale: list[tuple[str, str]] = []
        for pid, key in rows:
            if pid not in locked:
                continue
            target = defs.segments.get(key)
            if pid not in people or target is None or not target.dynamic:
                stale.append((pid, key))
            else:
                wanted.setdefault(pid, set()).add(key)
        if stale:
            tx.executemany(
                "DELETE FROM segment_due WHERE profile_id = ? AND segment = ?", stale
            )
        outcome = evaluate_people(tx, defs, people, wanted, now_us, "time", db.dialect)
        seg.notify(tx, now_us, people, outcome.changes)
    handled = sum(1 for r in rows if r[0] in locked)
    return handled, len(rows) == size and handled > 0


def next_due_us(services: Services) -> int | None:
    """The earliest due time in the index, if any."""
    with services.db.read() as tx:
        row = tx.one("SELECT MIN(due_at) FROM segment_due")
    return None if row is None or row[0] is None else int(row[0])
