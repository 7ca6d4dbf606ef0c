"""Failed events: what the profile worker sets aside when one event keeps failing.

A batch that fails because of the store (locked, unreachable, a serialisation conflict) is
simply tried again later: nothing is wrong with the events. A batch that fails for any other
reason (an event no code path expected, a segment or journey hook that breaks on it) is tried
again in smaller and smaller pieces, down to one event; an event that still fails on its own
``attempts`` times is moved from the queue to ``failed_events`` with the error, so everyone
else's events go on being processed. Nothing is dropped: the event stays in the log, is listed
by ``GET /api/v1/events/failed`` and goes back to the queue with ``POST
/api/v1/events/failed/replay`` once the cause is fixed. A replayed event is processed after the
person's later events (its order is lost, not the event).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from partitur.clock import iso
from partitur.store.db import Tx, chunks, select_in

_DEC = msgspec.json.Decoder()
ERROR_CHARS = 1_000


@dataclass(frozen=True, slots=True)
class FailedEvent:
    seq: int
    failed_at: int  # µs
    attempts: int
    error: str
    message_id: str | None
    type: str | None
    event: str | None
    received_at: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "failed_at": iso(self.failed_at),
            "attempts": self.attempts,
            "error": self.error,
            "message_id": self.message_id,
            "type": self.type,
            "event": self.event,
            "received_at": None if self.received_at is None else iso(self.received_at),
        }


def describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def set_aside(tx: Tx, seq: int, part: int, error: str, attempts: int, now_us: int) -> None:
    """Move queued event ``seq`` to ``failed_events`` (in the caller's transaction)."""
    tx.execute(
        "INSERT INTO failed_events (seq, part, failed_at, attempts, error) VALUES (?, ?, ?, ?, ?)",
        (seq, part, now_us, attempts, error),
    )
    tx.execute("DELETE FROM event_queue WHERE seq = ?", (seq,))


def head(tx: Tx, parts: tuple[int, int] | None) -> tuple[int, int] | None:
    """(seq, part) of the oldest queued event in ``parts``: the one a batch of one takes."""
    if parts is None:
        row = tx.one("SELECT seq, part FROM event_queue ORDER BY seq LIMIT 1")
    else:
        row = tx.one(
            "SELECT seq, part FROM event_queue WHERE part >= ? AND part < ? ORDER BY seq LIMIT 1",
            parts,
        )
    return None if row is None else (int(row[0]), int(row[1]))


def count(tx: Tx) -> int:
    row = tx.one("SELECT COUNT(*) FROM failed_events")
    return int(row[0]) if row else 0


def listing(tx: Tx, *, limit: int = 100, after: int | None = None) -> list[FailedEvent]:
    """Failed events by seq, ``limit`` from after ``after``; with what the log says of each."""
    rows = tx.execute(
        "SELECT f.seq, f.failed_at, f.attempts, f.error, e.message_id, e.type, e.event, "
        "e.received_at FROM failed_events f LEFT JOIN events e ON e.seq = f.seq "
        "WHERE f.seq > ? ORDER BY f.seq LIMIT ?",
        (-1 if after is None else after, limit),
    )
    return [FailedEvent(int(r[0]), int(r[1]), int(r[2]), str(r[3]), *r[4:]) for r in rows]


def replay(tx: Tx, seqs: Sequence[int] | None, dialect: str) -> int:
    """Put failed events (all, or those of ``seqs``) back in the queue; returns how many."""
    if seqs is None:
        chosen = [int(r[0]) for r in tx.execute("SELECT seq FROM failed_events")]
    else:
        chosen = [int(r[0]) for r in select_in(
            tx, "SELECT seq FROM failed_events WHERE seq IN (?...)", list(seqs), "bigint")]
    for chunk in chunks(chosen):
        marks = ",".join("?" * len(chunk))
        if dialect == "postgres":
            tx.execute(
                "INSERT INTO event_queue (seq, part, received_at) SELECT f.seq, f.part, "
                f"e.received_at FROM failed_events f JOIN events e ON e.seq = f.seq "
                f"WHERE f.seq IN ({marks}) ON CONFLICT (seq) DO NOTHING",
                chunk,
            )
        else:
            tx.execute(
                "INSERT OR IGNORE INTO event_queue (seq, part) SELECT seq, part "
                f"FROM failed_events WHERE seq IN ({marks})",
                chunk,
            )
    forget(tx, chosen)
    return len(chosen)


def bodies(tx: Tx) -> list[tuple[int, dict[str, Any]]]:
    """(seq, message) of every failed event still in the log (they are few by nature)."""
    out = []
    for seq, body in tx.execute(
        "SELECT e.seq, e.body FROM failed_events f JOIN events e ON e.seq = f.seq"
    ):
        try:
            message = _DEC.decode(body)
        except msgspec.DecodeError:
            continue
        if isinstance(message, dict):
            out.append((int(seq), message))
    return out


def forget(tx: Tx, seqs: Sequence[int]) -> None:
    for chunk in chunks(list(seqs)):
        tx.execute(f"DELETE FROM failed_events WHERE seq IN ({','.join('?' * len(chunk))})", chunk)
