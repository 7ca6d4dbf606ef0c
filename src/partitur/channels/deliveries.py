"""The delivery log as the API shows it: listing, one delivery, and replay.

The dead-letter list is ``status=failed``: every message that was not delivered, whether the
provider refused it for good or its retries ran out (those have the status ``dead``, and
``status=dead`` lists only them)."""

from __future__ import annotations

from typing import Any

from partitur.channels.outbox import (
    STATUS_COLUMNS,
    STATUS_FROM,
    STATUSES,
    status_json,
    wake_after_commit,
)
from partitur.errors import Conflict, InvalidInput, NotFound
from partitur.store.db import Tx
from partitur.templates.document import CHANNELS

REPLAYABLE = ("failed", "dead", "suppressed")


def _cursor(cursor: str | None) -> tuple[int, str] | None:
    if not cursor:
        return None
    at, sep, key = cursor.partition("~")
    if not sep or not at.isdigit():
        raise InvalidInput("'cursor' is not one this API returned")
    return int(at), key


def list_deliveries(
    tx: Tx,
    *,
    statuses: list[str],
    channel: str | None = None,
    journey: str | None = None,
    profile_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first; ``next_cursor`` pages on."""
    for status in statuses:
        if status not in STATUSES:
            raise InvalidInput(
                f"unknown status '{status}' (expected {', '.join(STATUSES)})",
                details=[{"field": "status"}],
            )
    if channel is not None and channel not in CHANNELS:
        raise InvalidInput(f"unknown channel '{channel}'", details=[{"field": "channel"}])
    where: list[str] = []
    params: list[Any] = []
    if statuses:
        wanted = sorted({*statuses, *(["dead"] if "failed" in statuses else [])})
        where.append(f"o.status IN ({','.join('?' * len(wanted))})")
        params += wanted
    for column, value in (
        ("o.channel", channel),
        ("o.journey", journey),
        ("o.profile_id", profile_id),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    after = _cursor(cursor)
    if after is not None:
        where.append("(o.created_at < ? OR (o.created_at = ? AND o.key < ?))")
        params += [after[0], after[0], after[1]]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = tx.execute(
        f"SELECT {STATUS_COLUMNS} FROM {STATUS_FROM}{clause} "
        "ORDER BY o.created_at DESC, o.key DESC LIMIT ?",
        (*params, limit + 1),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = f"{rows[-1][10]}~{rows[-1][0]}" if more and rows else None
    return {"deliveries": [status_json(r) for r in rows], "next_cursor": next_cursor}


def get_delivery(tx: Tx, key: str) -> dict[str, Any]:
    row = tx.one(f"SELECT {STATUS_COLUMNS} FROM {STATUS_FROM} WHERE o.key = ?", (key,))
    if row is None:
        raise NotFound(f"no delivery '{key}'")
    return status_json(row)


def replay(tx: Tx, key: str, now_us: int) -> dict[str, Any]:
    """Queue a failed, dead or suppressed message again, with the same key and fresh
    attempts; the send-time policies are applied again."""
    row = tx.one("SELECT status FROM outbox WHERE key = ?", (key,))
    if row is None:
        raise NotFound(f"no delivery '{key}'")
    if row[0] not in REPLAYABLE:
        raise Conflict(
            f"delivery '{key}' is {row[0]}; only {', '.join(REPLAYABLE)} deliveries are replayed"
        )
    tx.execute(
        "UPDATE outbox SET status = 'queued', attempts = 0, due_at = ?, updated_at = ?, "
        "reason = ? WHERE key = ?",
        (now_us, now_us, f"replayed (was {row[0]})", key),
    )
    wake_after_commit(tx)
    return get_delivery(tx, key)
