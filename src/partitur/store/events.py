"""The event log: append with de-duplication, read back for processing and timelines.

The log is append-only; the only deletes are erasure (privacy) and dropping old partitions.
Each appended event gets a ``seq`` (assigned here, in the writing transaction) and a row in
``event_queue`` that the profile worker deletes in the transaction that processes the event,
so processing happens exactly once even across crashes.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from partitur.store.db import Database, Row, Tx, chunk_sizes

EVENT_COLUMNS = (
    "seq, message_id, source_id, type, event, user_id, anonymous_id, ts, received_at, part, body"
)
_JSON = msgspec.json.Encoder()
_INSERT_EVENTS = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


class EventLog:
    """Dialect-neutral parts; :func:`event_log_for` picks the subclass."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writing -----------------------------------------------------------------------------
    def append(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> int:
        """Store the rows whose ``message_id`` is new; returns how many were stored.

        ``rows``: ``(message_id, source_id, type, event, user_id, anonymous_id, ts,
        received_at, part, body)``.
        """
        return self.append_groups(tx, [rows])[0]

    def append_groups(self, tx: Tx, groups: Sequence[Sequence[Sequence[Any]]]) -> list[int]:
        """Several requests' rows in one go (a group commit); for each group, how many of its
        rows were new. A ``message_id`` that appears twice is stored once, for the first group
        that has it, in the order given.

        The statements per call are few and do not grow with the number of groups or rows
        (beyond chunking): the group committer calls this once per commit.
        """
        seen: set[str] = set()
        kept: list[Sequence[Any]] = []
        owners: list[int] = []
        for index, rows in enumerate(groups):
            for row in rows:
                if row[0] not in seen:
                    seen.add(row[0])
                    kept.append(row)
                    owners.append(index)
        counts = [0] * len(groups)
        if not kept:
            return counts
        known = self._claim(tx, kept)
        if known:
            pairs = [(r, o) for r, o in zip(kept, owners, strict=True) if r[0] not in known]
            kept = [r for r, _ in pairs]
            owners = [o for _, o in pairs]
        for owner in owners:
            counts[owner] += 1
        if kept:
            self._store(tx, kept)
        return counts

    def _claim(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> set[str]:
        """Of the rows' (distinct) message_ids, those already known; the others are remembered
        by the time this transaction commits."""
        raise NotImplementedError

    def _store(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> None:
        """Write new rows to the log and the processing queue, with fresh seqs in order."""
        raise NotImplementedError

    def forget_message_ids(self, tx: Tx, before_us: int) -> int:
        """Drop de-duplication entries older than the window."""
        rows = tx.execute(
            "DELETE FROM message_ids WHERE received_at < ? RETURNING 1", (before_us,)
        )
        return len(rows)

    # -- reading -----------------------------------------------------------------------------
    def pending(self, tx: Tx, limit: int, parts: tuple[int, int] | None = None) -> list[Row]:
        """The oldest unprocessed events (optionally within a partition range), in seq order."""
        if parts is None:
            queued = tx.execute("SELECT seq FROM event_queue ORDER BY seq LIMIT ?", (limit,))
        else:
            queued = tx.execute(
                "SELECT seq FROM event_queue WHERE part >= ? AND part < ? ORDER BY seq LIMIT ?",
                (parts[0], parts[1], limit),
            )
        if not queued:
            return []
        return self.by_seqs(tx, [r[0] for r in queued])

    def by_seqs(self, tx: Tx, seqs: Sequence[int]) -> list[Row]:
        out: list[Row] = []
        for start in range(0, len(seqs), 900):
            chunk = seqs[start : start + 900]
            marks = ",".join("?" * len(chunk))
            out.extend(
                tx.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE seq IN ({marks})", chunk)
            )
        out.sort(key=lambda r: r[0])
        return out

    def done(self, tx: Tx, seqs: Sequence[int]) -> None:
        for start in range(0, len(seqs), 900):
            chunk = seqs[start : start + 900]
            marks = ",".join("?" * len(chunk))
            tx.execute(f"DELETE FROM event_queue WHERE seq IN ({marks})", chunk)

    def backlog(self, tx: Tx) -> int:
        row = tx.one("SELECT COUNT(*) FROM event_queue")
        return int(row[0]) if row else 0

    def count(self, tx: Tx) -> int:
        row = tx.one("SELECT COUNT(*) FROM events")
        return int(row[0]) if row else 0

    def delete_seqs(self, tx: Tx, seqs: Sequence[int]) -> None:
        """Erasure only: remove events from the log (and the queue)."""
        for start in range(0, len(seqs), 900):
            chunk = seqs[start : start + 900]
            marks = ",".join("?" * len(chunk))
            tx.execute(f"DELETE FROM events WHERE seq IN ({marks})", chunk)
        self.done(tx, seqs)

    def ensure_partitions(self, now: datetime) -> list[str]:
        """Create time partitions ahead of ``now`` where the backend has them."""
        return []


class SqliteEventLog(EventLog):
    """The writer holds SQLite's write lock (``BEGIN IMMEDIATE``) for the whole transaction, so
    "look up, then insert" cannot race with another writer.

    Few statements per append, whatever its size (each statement is a GIL hand-off for the
    writing thread, see ``store.db._MultiRow``): one lookup of the known ids (the ids as one
    JSON array), the events as multi-row inserts, and the queue rows and the remembered ids
    copied inside SQLite from the events just written.
    """

    _json: bool | None = None  # whether this SQLite has json_each (built in since 3.38)

    def _claim(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> set[str]:
        ids = [row[0] for row in rows]
        if self._json is None:
            try:
                tx.execute("SELECT value FROM json_each('[1]')")
                type(self)._json = True
            except sqlite3.OperationalError:
                type(self)._json = False
        if self._json:
            found = tx.execute(
                "SELECT message_id FROM message_ids "
                "WHERE message_id IN (SELECT value FROM json_each(?))",
                (_JSON.encode(ids).decode(),),
            )
            return {r[0] for r in found}
        known: set[str] = set()
        start = 0
        for size in chunk_sizes(len(ids), 512):
            found = tx.execute(_known_sql(size), ids[start : start + size])
            known.update(r[0] for r in found)
            start += size
        return known

    def _store(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> None:
        # sqlite_sequence remembers the highest seq ever used, so erased seqs are not reused.
        row = tx.one(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), "
            "COALESCE((SELECT MAX(seq) FROM events), 0))"
        )
        first = int(row[0] if row else 0) + 1
        tx.executemany(_INSERT_EVENTS, [(seq, *r) for seq, r in enumerate(rows, first)])
        tx.execute(
            "INSERT INTO event_queue (seq, part) SELECT seq, part FROM events WHERE seq >= ?",
            (first,),
        )
        tx.execute(
            "INSERT INTO message_ids (message_id, received_at) "
            "SELECT message_id, received_at FROM events WHERE seq >= ?",
            (first,),
        )


@functools.cache
def _known_sql(size: int) -> str:
    return f"SELECT message_id FROM message_ids WHERE message_id IN ({','.join('?' * size)})"


class PostgresEventLog(EventLog):
    def _claim(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> set[str]:
        # One statement of constant text (prepared after a few uses), whatever the count.
        # Sorted, so that two servers claiming overlapping ids lock them in the same order and
        # one simply waits for the other (then sees a conflict) instead of deadlocking.
        fresh = tx.execute(
            "INSERT INTO message_ids (message_id, received_at) "
            "SELECT id, at FROM unnest(?::text[], ?::bigint[]) AS claim(id, at) ORDER BY id "
            "ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
            ([row[0] for row in rows], [row[7] for row in rows]),
        )
        if len(fresh) == len(rows):
            return set()
        return {row[0] for row in rows} - {r[0] for r in fresh}

    def _store(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> None:
        # Unique, increasing within this call; other processes may interleave, which is fine:
        # the worker reads the queue, not a cursor, so a gap or a late commit is never skipped.
        found = tx.execute(
            "SELECT nextval('events_seq') FROM generate_series(1, ?)", (len(rows),)
        )
        seqs = sorted(int(r[0]) for r in found)
        raw = tx.raw  # type: ignore[attr-defined]
        with raw.cursor() as cur:
            with cur.copy(f"COPY events ({EVENT_COLUMNS}) FROM STDIN") as copy:
                for seq, row in zip(seqs, rows, strict=True):
                    copy.write_row((seq, *row))
            with cur.copy("COPY event_queue (seq, part, received_at) FROM STDIN") as copy:
                for seq, row in zip(seqs, rows, strict=True):
                    copy.write_row((seq, row[8], row[7]))

    def ensure_partitions(self, now: datetime, months_ahead: int = 2) -> list[str]:
        created = []
        with self.db.transaction() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(?)", (0x5041_5254,))
            year, month = now.year, now.month
            for _ in range(months_ahead + 1):
                start = datetime(year, month, 1, tzinfo=UTC)
                year2, month2 = (year + 1, 1) if month == 12 else (year, month + 1)
                end = datetime(year2, month2, 1, tzinfo=UTC)
                name = f"events_{year:04d}_{month:02d}"
                exists = tx.one("SELECT to_regclass(?)", (name,))
                if exists is None or exists[0] is None:
                    lo = int(start.timestamp()) * 1_000_000
                    hi = int(end.timestamp()) * 1_000_000
                    tx.execute(
                        f"CREATE TABLE {name} PARTITION OF events FOR VALUES FROM ({lo}) TO ({hi})"
                    )
                    created.append(name)
                year, month = year2, month2
        return created


def event_log_for(db: Database) -> EventLog:
    return PostgresEventLog(db) if db.dialect == "postgres" else SqliteEventLog(db)
