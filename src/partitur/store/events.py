"""The event log: append with de-duplication, read back for processing and timelines.

The log is append-only; the only deletes are erasure (privacy) and dropping old partitions.
Each appended event gets a ``seq`` (assigned here, in the writing transaction) and a row in
``event_queue`` that the profile worker deletes in the transaction that processes the event,
so processing happens exactly once even across crashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from partitur.store.db import Database, Row, Tx

EVENT_COLUMNS = (
    "seq, message_id, source_id, type, event, user_id, anonymous_id, ts, received_at, part, body"
)
_CHUNK = 5000


def _dedupe_in_request(rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    seen: set[str] = set()
    out = []
    for row in rows:
        if row[0] not in seen:
            seen.add(row[0])
            out.append(row)
    return out


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
        rows = _dedupe_in_request(rows)
        fresh = self._claim_message_ids(tx, rows)
        new_rows = [row for row in rows if row[0] in fresh]
        if not new_rows:
            return 0
        seqs = self._next_seqs(tx, len(new_rows))
        self._insert(tx, [(seq, *row) for seq, row in zip(seqs, new_rows, strict=True)])
        return len(new_rows)

    def _claim_message_ids(self, tx: Tx, rows: Sequence[Sequence[Any]]) -> set[str]:
        fresh: set[str] = set()
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            values = ",".join("(?, ?)" for _ in chunk)
            params: list[Any] = []
            for row in chunk:
                params.append(row[0])
                params.append(row[7])
            found = tx.execute(
                f"INSERT INTO message_ids (message_id, received_at) VALUES {values} "
                "ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
                params,
            )
            fresh.update(r[0] for r in found)
        return fresh

    def _next_seqs(self, tx: Tx, count: int) -> Sequence[int]:
        raise NotImplementedError

    def _insert(self, tx: Tx, rows: list[tuple[Any, ...]]) -> None:
        tx.executemany(
            f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
        tx.executemany(
            "INSERT INTO event_queue (seq, part) VALUES (?, ?)", [(r[0], r[9]) for r in rows]
        )

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
    def _next_seqs(self, tx: Tx, count: int) -> Sequence[int]:
        # The caller holds SQLite's write lock (BEGIN IMMEDIATE), so this cannot race.
        # sqlite_sequence remembers the highest seq ever used, so erased seqs are not reused.
        row = tx.one(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0), "
            "COALESCE((SELECT MAX(seq) FROM events), 0))"
        )
        first = int(row[0] if row else 0) + 1
        return range(first, first + count)


class PostgresEventLog(EventLog):
    def _next_seqs(self, tx: Tx, count: int) -> Sequence[int]:
        # Unique, increasing within this call; other processes may interleave, which is fine:
        # the worker reads the queue, not a cursor, so a gap or a late commit is never skipped.
        rows = tx.execute("SELECT nextval('events_seq') FROM generate_series(1, ?)", (count,))
        return sorted(int(r[0]) for r in rows)

    def _insert(self, tx: Tx, rows: list[tuple[Any, ...]]) -> None:
        raw = tx.raw  # type: ignore[attr-defined]
        with raw.cursor() as cur:
            with cur.copy(f"COPY events ({EVENT_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            with cur.copy("COPY event_queue (seq, part, received_at) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row((row[0], row[9], row[8]))

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
