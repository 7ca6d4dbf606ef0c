"""Profiles as the API shows them."""

from __future__ import annotations

from typing import Any

import msgspec

from partitur.identity import store as graph_store
from partitur.profiles import store as profile_store
from partitur.profiles.state import ProfileState, public_consent
from partitur.store.db import Tx
from partitur.store.events import EventLog

_DEC = msgspec.json.Decoder()


def profile_json(tx: Tx, state: ProfileState) -> dict[str, Any]:
    out = state.as_json()
    out["consent"] = public_consent(state.consent)
    out["identifiers"] = [
        {"type": t, "value": v} for t, v, _, _ in graph_store.identifiers_of(tx, state.id)
    ]
    merged = tx.execute("SELECT id FROM profiles WHERE merged_into = ? ORDER BY id", (state.id,))
    out["merged_from"] = [r[0] for r in merged]
    return out


def events_page(
    tx: Tx, log: EventLog, profile_id: str, limit: int, cursor: str | None
) -> dict[str, Any]:
    before = _parse_cursor(cursor)
    refs = profile_store.timeline(tx, profile_id, limit + 1, before)
    more = len(refs) > limit
    refs = refs[:limit]
    rows = {r[0]: r for r in log.by_seqs(tx, [seq for _, seq in refs])}
    events = []
    for _, seq in refs:
        row = rows.get(seq)
        if row is not None:
            body = _DEC.decode(row[10])
            body["seq"] = seq
            events.append(body)
    next_cursor = f"{refs[-1][0]}_{refs[-1][1]}" if more and refs else None
    return {"events": events, "next_cursor": next_cursor}


def _parse_cursor(cursor: str | None) -> tuple[int, int] | None:
    if not cursor:
        return None
    from partitur.errors import InvalidInput

    try:
        ts, seq = cursor.split("_", 1)
        return int(ts), int(seq)
    except ValueError:
        raise InvalidInput("'cursor' is not one this API returned") from None
