"""The event log: append with de-duplication, read back for processing and timelines.

The log is append-only; the only deletes are erasure (privacy) and dropping old partitions.
Each appended event gets a ``seq`` (assigned here, in the writing transaction) and a row in
``event_queue`` that the profile worker deletes in the transaction that processes the event,
so processing happens exactly once even across crashes.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from partitur.store.db import Database, Row, Tx, chunks, pg_int_array, pg_json_param, select_in
from partitur.store.recent_ids import RecentIds

EVENT_COLUMNS = (
    "seq, message_id, source_id, type, event, user_id, anonymous_id, ts, received_at, part, body"
)
_JSON = msgspec.json.Encoder()
log = logging.getLogger("partitur.store")
_INSERT_EVENTS = (
    f"INSERT INTO events ({EVENT_COLUMNS.removeprefix('seq, ')}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


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
        # One statement of constant text on either store (an IN list of hundreds of values
        # was planned afresh against every PostgreSQL partition each time).
        out = select_in(tx, f"SELECT {EVENT_COLUMNS} FROM events WHERE seq IN (?...)",
                        list(seqs), "bigint")
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

    Known messageIds are looked up in memory (:mod:`partitur.store.recent_ids`), which keeps
    appends sequential writes; a few statements per append whatever its size (each statement is
    a GIL hand-off for the writing thread, see ``store.db._MultiRow``): the events as multi-row
    inserts and the queue rows copied inside SQLite from the events just written.
    """

    _json: bool | None = None  # whether this SQLite has json_each (built in since 3.38)
    LOAD_PAGE = 50_000

    def __init__(self, db: Database, window_us: int = 7 * 86_400_000_000) -> None:
        super().__init__(db)
        self.window_us = window_us  # how far back the index is rebuilt after a restart
        self.recent = RecentIds()

    def _has_json(self, tx: Tx) -> bool:
        if self._json is None:
            try:
                tx.execute("SELECT value FROM json_each('[1]')")
                type(self)._json = True
            except sqlite3.OperationalError:
                type(self)._json = False
        return bool(self._json)

    def _catch_up(self, tx: Tx) -> None:
        """Bring the index up to date with every event committed so far (and not with this
        transaction's own rows: those join after its commit, see :meth:`_store`)."""
        recent = self.recent
        notes: dict[str, Any] = getattr(tx, "notes", {})
        below = notes.get("events_from")
        if not recent.loaded:
            top = tx.one("SELECT MAX(received_at) FROM events")
            start = 0
            if top is not None and top[0] is not None:
                first = tx.one(
                    "SELECT MIN(seq) FROM events WHERE received_at >= ?",
                    (int(top[0]) - self.window_us,),
                )
                start = int(first[0]) - 1 if first and first[0] is not None else 0
            with recent.lock:
                recent.last_seq = start
                recent.loaded = True
        while True:
            with recent.lock:
                after = recent.last_seq
            if below is None:
                found = tx.execute(
                    "SELECT seq, message_id, received_at FROM events WHERE seq > ? "
                    "ORDER BY seq LIMIT ?",
                    (after, self.LOAD_PAGE),
                )
            else:
                found = tx.execute(
                    "SELECT seq, message_id, received_at FROM events WHERE seq > ? AND seq < ? "
                    "ORDER BY seq LIMIT ?",
                    (after, below, self.LOAD_PAGE),
                )
            if not found:
                return
            recent.add(((r[1], r[2]) for r in found), upto_seq=int(found[-1][0]))
            if len(found) < self.LOAD_PAGE:
                return

    def _claim(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> set[str]:
        self._catch_up(tx)
        ids = [row[0] for row in rows]
        notes: dict[str, Any] = getattr(tx, "notes", {})
        staged: set[str] = notes.get("event_ids", set())
        known = {i for i in ids if i in staged}
        maybe = self.recent.candidates(ids)
        if not maybe:
            return known
        # A matching hash is a candidate only: ask the log (by received_at, indexed).
        received = sorted({at for ats in maybe.values() for at in ats})
        names = sorted(maybe)
        if self._has_json(tx):
            found = tx.execute(
                "SELECT message_id FROM events "
                "WHERE received_at IN (SELECT value FROM json_each(?)) "
                "AND message_id IN (SELECT value FROM json_each(?))",
                (_JSON.encode(received).decode(), _JSON.encode(names).decode()),
            )
            known.update(r[0] for r in found)
            return known
        for at_chunk in chunks(received, 400):
            for name_chunk in chunks(names, 400):
                found = tx.execute(
                    "SELECT message_id FROM events "
                    f"WHERE received_at IN ({','.join('?' * len(at_chunk))}) "
                    f"AND message_id IN ({','.join('?' * len(name_chunk))})",
                    [*at_chunk, *name_chunk],
                )
                known.update(r[0] for r in found)
        return known

    def _store(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> None:
        # sqlite_sequence remembers the highest seq ever used, so erased seqs are not reused.
        row = tx.one(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), "
            "COALESCE((SELECT MAX(seq) FROM events), 0))"
        )
        first = int(row[0] if row else 0) + 1
        # AUTOINCREMENT numbers the rows first, first + 1, ...: we hold the write lock.
        tx.executemany(_INSERT_EVENTS, rows)
        tx.execute(
            "INSERT INTO event_queue (seq, part) SELECT seq, part FROM events WHERE seq >= ?",
            (first,),
        )
        last = first + len(rows) - 1
        pairs = [(r[0], r[7]) for r in rows]
        notes: dict[str, Any] | None = getattr(tx, "notes", None)
        if notes is None:  # not a transaction that reports its commit: learn at the next claim
            return
        notes.setdefault("events_from", first)
        notes.setdefault("event_ids", set()).update(p[0] for p in pairs)
        tx.after_commit.append(  # type: ignore[attr-defined]
            lambda: self.recent.add(pairs, upto_seq=last)
        )

    def forget_message_ids(self, tx: Tx, before_us: int) -> int:
        return self.recent.forget(before_us)


class PostgresEventLog(EventLog):
    """``message_ids`` is unlogged (migration 0014): cheap to write, but emptied by a crash of
    the server (and absent on a promoted standby). ``dedup_state`` is emptied at the same
    moment, so every claim first checks that it has its row, and if not, one writer rebuilds
    the ids of the window from the event log (under an advisory lock, other writers wait)."""

    REBUILD_LOCK = 0x4445_4455  # "DEDU"

    def __init__(self, db: Database, window_us: int = 7 * 86_400_000_000) -> None:
        super().__init__(db)
        self.window_us = window_us

    def _ensure_ids(self, tx: Tx) -> None:
        if tx.one("SELECT 1 FROM dedup_state") is not None:
            return
        tx.execute("SELECT pg_advisory_xact_lock(?)", (self.REBUILD_LOCK,))
        if tx.one("SELECT 1 FROM dedup_state") is not None:  # another writer just did it
            return
        top = tx.one("SELECT MAX(received_at) FROM events")
        if top is not None and top[0] is not None:
            cutoff = int(top[0]) - self.window_us
            tx.execute(
                "INSERT INTO message_ids (message_id, received_at) "
                "SELECT message_id, MIN(received_at) FROM events WHERE received_at >= ? "
                "GROUP BY message_id ON CONFLICT (message_id) DO NOTHING",
                (cutoff,),
            )
            log.warning(
                "message ids of the last %d h rebuilt from the event log "
                "(the server lost its unlogged tables)",
                self.window_us // 3_600_000_000,
            )
        newest = int(top[0]) if top is not None and top[0] is not None else 0
        tx.execute("INSERT INTO dedup_state (rebuilt_at) VALUES (?)", (newest,))

    def _claim(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> set[str]:
        self._ensure_ids(tx)
        # One statement of constant text (prepared after a few uses), whatever the count.
        # Sorted, so that two servers claiming overlapping ids lock them in the same order and
        # one simply waits for the other (then sees a conflict) instead of deadlocking.
        fresh = tx.execute(
            "INSERT INTO message_ids (message_id, received_at) "
            "SELECT c->>0, (c->>1)::bigint FROM jsonb_array_elements(?::jsonb) AS claim(c) "
            "ORDER BY 1 ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
            (pg_json_param([(row[0], row[7]) for row in rows]),),
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
        with raw.cursor() as cur, cur.copy(f"COPY events ({EVENT_COLUMNS}) FROM STDIN") as copy:
            for seq, row in zip(seqs, rows, strict=True):
                copy.write_row((seq, *row))
        # The queue rows are three numbers each: three array parameters in their text form
        # cost less Python than a COPY row by row, and the server less than JSON (3.4 against
        # 5 µs an event in a measurement of the statement alone).
        tx.execute(
            "INSERT INTO event_queue (seq, part, received_at) "
            "SELECT * FROM unnest(?::bigint[], ?::integer[], ?::bigint[])",
            (pg_int_array(seqs), pg_int_array(row[8] for row in rows),
             pg_int_array(row[7] for row in rows)),
        )

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


def event_log_for(db: Database, *, window_us: int | None = None) -> EventLog:
    """The event log for ``db``; ``window_us`` is the de-duplication window (the in-memory
    index of the embedded store is rebuilt that far back after a restart)."""
    cls: type[SqliteEventLog | PostgresEventLog] = (
        PostgresEventLog if db.dialect == "postgres" else SqliteEventLog
    )
    return cls(db) if window_us is None else cls(db, window_us)
