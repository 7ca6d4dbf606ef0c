"""The privacy audit trail: who exported or erased whom, when, and how much.

A record never holds personal data: the action, the time, the actor (the first characters of
the admin token, as ``partitur keys list`` shows them, or ``cli``), and a detail of counts,
profile ids, identifier types and SHA-256 hashes of identifiers (the same hash that
``suppressions`` keeps, so a record can be matched to a request without storing its value).
"""

from __future__ import annotations

import json
from typing import Any

from partitur.clock import iso
from partitur.errors import InvalidInput
from partitur.store.db import Tx

ACTIONS = ("erase", "export")


def record(tx: Tx, action: str, actor: str, detail: dict[str, Any], now_us: int) -> int:
    rows = tx.execute(
        "INSERT INTO audit_log (at, action, actor, detail) VALUES (?, ?, ?, ?) RETURNING id",
        (now_us, action, actor, json.dumps(detail, sort_keys=True)),
    )
    return int(rows[0][0])


def trail(
    tx: Tx, *, limit: int, action: str | None = None, before: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; the page and the cursor of the next one (None at the end)."""
    where = ["1 = 1"]
    params: list[Any] = []
    if action is not None:
        if action not in ACTIONS:
            raise InvalidInput(f"'action' must be one of {', '.join(ACTIONS)}")
        where.append("action = ?")
        params.append(action)
    if before is not None:
        if not before.isdigit():
            raise InvalidInput("'cursor' is not one that this API returned")
        where.append("id < ?")
        params.append(int(before))
    rows = tx.execute(
        f"SELECT id, at, action, actor, detail FROM audit_log WHERE {' AND '.join(where)} "
        "ORDER BY id DESC LIMIT ?",
        [*params, limit + 1],
    )
    more = len(rows) > limit
    rows = rows[:limit]
    page = [
        {"id": r[0], "at": iso(r[1]), "action": r[2], "actor": r[3], "detail": json.loads(r[4])}
        for r in rows
    ]
    return page, (str(rows[-1][0]) if more and rows else None)
