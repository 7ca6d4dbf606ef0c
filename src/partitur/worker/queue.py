"""The profile worker's side of the processing queue: take the oldest events, mark them done.

``event_queue`` holds one row per appended event not yet processed (the ingest path writes it
in the transaction that stores the event). The worker reads the oldest rows with what it needs
of each event (seq, time, source, receipt time, body) and deletes them in the transaction that
processes them, so an event is processed exactly once even across crashes.

SQLite: one statement reads the queue joined to the log by ``seq`` (the rowid), and one range
delete removes what was read: the worker's transaction holds SQLite's write lock (``BEGIN
IMMEDIATE``) from the read to the delete, so nothing can enter the queue below the last seq read
meanwhile. PostgreSQL: writers commit concurrently and a lower seq can be committed late, so the
seqs read are deleted by value (``= ANY``), and the log is read by a range of seqs when they are
dense (else by one array parameter), keeping those that were queued.
A queue row whose event is gone is dropped with the rest.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from partitur.store.db import Tx, pg_json_array, pg_json_param, select_in

_COUNT_QUEUED = f"SELECT COUNT(*) FROM event_queue WHERE seq = ANY({pg_json_array('?', 'bigint')})"
_DELETE_QUEUED = f"DELETE FROM event_queue WHERE seq = ANY({pg_json_array('?', 'bigint')})"

log = logging.getLogger("partitur.worker")


# (seq, ts, source_id, received_at, body) of a queued event: plain tuples, as read.
Pending = tuple[Any, ...]


class Taken(NamedTuple):
    events: list[Pending]  # in seq order
    queued: list[int]  # every queue row taken (events whose row in the log is gone included)


_SQLITE_ALL = (
    "SELECT q.seq, e.ts, e.source_id, e.received_at, e.body FROM event_queue q "
    "LEFT JOIN events e ON e.seq = q.seq ORDER BY q.seq LIMIT ?"
)
_SQLITE_PARTS = (
    "SELECT q.seq, e.ts, e.source_id, e.received_at, e.body FROM event_queue q "
    "LEFT JOIN events e ON e.seq = q.seq WHERE q.part >= ? AND q.part < ? "
    "ORDER BY q.seq LIMIT ?"
)
_PG_QUEUE_ALL = "SELECT seq FROM event_queue ORDER BY seq LIMIT ?"
_PG_QUEUE_PARTS = (
    "SELECT seq FROM event_queue WHERE part >= ? AND part < ? ORDER BY seq LIMIT ?"
)
_PG_EVENTS = (
    "SELECT seq, ts, source_id, received_at, body FROM events WHERE seq IN (?...) ORDER BY seq"
)
_PG_EVENT_RANGE = (
    "SELECT seq, ts, source_id, received_at, body FROM events WHERE seq BETWEEN ? AND ? "
    "ORDER BY seq"
)


class EventQueue:
    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgres"

    def take(self, tx: Tx, limit: int, parts: tuple[int, int] | None = None) -> Taken:
        """The oldest ``limit`` queued events (within ``parts``, a partition range)."""
        if self.postgres:
            if parts is None:
                queued = [r[0] for r in tx.execute(_PG_QUEUE_ALL, (limit,))]
            else:
                queued = [r[0] for r in tx.execute(_PG_QUEUE_PARTS, (*parts, limit))]
            if queued and queued[-1] - queued[0] < 2 * len(queued):
                # Dense (one worker, or few gaps): a range scan, cheaper than one probe per seq.
                wanted = set(queued)
                rows = tx.execute(_PG_EVENT_RANGE, (queued[0], queued[-1]))
                events = [row for row in rows if row[0] in wanted]
            else:
                rows = select_in(tx, _PG_EVENTS, queued, "bigint")
                events = rows
        else:
            if parts is None:
                rows = tx.execute(_SQLITE_ALL, (limit,))
            else:
                rows = tx.execute(_SQLITE_PARTS, (*parts, limit))
            queued = [row[0] for row in rows]
            events = [row for row in rows if row[4] is not None]
        if len(events) != len(queued):
            log.warning("%d queued events are no longer in the log; dropped from the queue",
                        len(queued) - len(events))
        return Taken(events, queued)

    def count_through(self, tx: Tx, taken: Taken, parts: tuple[int, int] | None = None) -> int:
        """How many of the queue rows :meth:`take` returned are still queued (in another
        transaction than the one that took them: they may have been erased or processed)."""
        if not taken.queued:
            return 0
        if self.postgres:
            row = tx.one(_COUNT_QUEUED, (pg_json_param(taken.queued),))
        elif parts is None:
            row = tx.one("SELECT COUNT(*) FROM event_queue WHERE seq <= ?", (taken.queued[-1],))
        else:
            row = tx.one(
                "SELECT COUNT(*) FROM event_queue WHERE part >= ? AND part < ? AND seq <= ?",
                (*parts, taken.queued[-1]),
            )
        return int(row[0]) if row else 0

    def done(self, tx: Tx, taken: Taken, parts: tuple[int, int] | None = None) -> None:
        """Remove what :meth:`take` returned from the queue (in the same transaction)."""
        if not taken.queued:
            return
        if self.postgres:
            tx.execute(_DELETE_QUEUED, (pg_json_param(taken.queued),))
        elif parts is None:
            tx.execute("DELETE FROM event_queue WHERE seq <= ?", (taken.queued[-1],))
        else:
            tx.execute(
                "DELETE FROM event_queue WHERE part >= ? AND part < ? AND seq <= ?",
                (*parts, taken.queued[-1]),
            )
