"""Backfill: evaluate every person when a segment is created or its condition changes.

Runs in the background (the segment runner, in the server and in ``partitur worker``), one
batch of people per transaction in profile-id order; the cursor is stored with the segment
in the same transaction, so a backfill resumes where it stopped after a restart, and its
progress is visible in ``GET /api/v1/segments/{key}``. Entries and exits are written and
recorded in the history with cause ``backfill``; they reach journeys only when the segment
says ``backfill_triggers_journeys: true`` (by default people who already qualified when the
segment was defined do not start ``segment_entered`` journeys).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from partitur.profiles import store as profile_store
from partitur.segments.due import lock_people
from partitur.segments.engine import evaluate_people

if TYPE_CHECKING:
    from partitur.segments.service import SegmentService
    from partitur.services import Services


def backfill_step(services: Services, *, batch: int | None = None) -> bool:
    """Do one batch of the oldest pending backfill; False when there was nothing to do."""
    seg: SegmentService = services.extra["segments"]
    size = batch or services.settings.segments_batch
    db = services.db
    skip = " FOR UPDATE SKIP LOCKED" if db.dialect == "postgres" else ""
    now = services.clock.now_us()
    with db.transaction() as tx:
        row = tx.one(
            "SELECT key, version, backfill_cursor FROM segments WHERE kind = 'dynamic' "
            f"AND backfill_status IN ('pending', 'running') ORDER BY updated_at, key LIMIT 1"
            f"{skip}"
        )
        if row is None:
            return False
        key, version, cursor = row[0], int(row[1]), row[2]
        defs = seg.cache.get(tx)
        target = defs.segments.get(key)
        if target is None or target.version != version:
            return True  # the definition moved under us; the next step sees the new one
        ids = [
            r[0]
            for r in tx.execute(
                "SELECT id FROM profiles WHERE merged_into IS NULL AND id > ? "
                "ORDER BY id LIMIT ?",
                (cursor or "", size),
            )
        ]
        locked = lock_people(tx, db.dialect, ids)
        prefix: list[str] = []
        for pid in ids:  # stop before anyone the profile worker holds; resume there
            if pid not in locked:
                break
            prefix.append(pid)
        if ids and not prefix:
            return False
        people = profile_store.load(tx, prefix)
        outcome = evaluate_people(tx, defs, people, {p: {key} for p in prefix}, now,
                                  "backfill", db.dialect)
        finished = len(ids) < size and len(prefix) == len(ids)
        tx.execute(
            "UPDATE segments SET backfill_status = ?, backfill_cursor = ?, "
            "backfill_done = backfill_done + ?, "
            "backfill_started_at = COALESCE(backfill_started_at, ?), "
            "backfill_finished_at = ? WHERE key = ? AND version = ?",
            ("done" if finished else "running", prefix[-1] if prefix else cursor,
             len(prefix), now, now if finished else None, key, version),
        )
        # The entries are events in the log either way; journeys hear of them only if the
        # segment says backfills should trigger them.
        seg.notify(tx, now, people, outcome.changes,
                   hand_on=target.backfill_triggers_journeys)
    return True


def run_backfills(services: Services, *, max_steps: int = 100_000) -> int:
    """Run backfill steps until none is pending (tests, the CLI); returns the steps run."""
    steps = 0
    while steps < max_steps and backfill_step(services):
        steps += 1
    return steps
