"""Consent history per purpose, derived from a person's events (nothing extra is stored).

Consent arrives in ``context.consent.categoryPreferences`` on any event (Segment's
convention): the purposes are the keys, ``true`` or ``false`` the answers. The history of a
purpose lists each change of answer in event-time order (``timestamp``, then ``seq``, the same
order the profile uses to decide which statement is newest), with the source and the event
that carried it. Repeating the current answer is not a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from partitur.clock import iso
from partitur.store.db import Tx

_DEC = msgspec.json.Decoder()


@dataclass(frozen=True)
class Statement:
    """One event's consent preferences."""

    ts: int
    seq: int
    source_id: str
    message_id: str
    type: str
    event: str | None
    preferences: Mapping[str, bool]


def preferences(message: Mapping[str, Any]) -> dict[str, bool]:
    """The purposes an event states consent for, read as ``profiles.state`` reads them."""
    context = message.get("context")
    if not isinstance(context, Mapping):
        return {}
    consent = context.get("consent")
    if not isinstance(consent, Mapping):
        return {}
    prefs = consent.get("categoryPreferences")
    if not isinstance(prefs, Mapping):
        return {}
    return {str(k): v for k, v in prefs.items() if isinstance(v, bool)}


def history(
    statements: Iterable[Statement], source_names: Mapping[str, str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Per purpose, the changes of answer, oldest first. Pure."""
    names = source_names or {}
    out: dict[str, list[dict[str, Any]]] = {}
    for s in sorted(statements, key=lambda s: (s.ts, s.seq)):
        for purpose, granted in s.preferences.items():
            changes = out.setdefault(purpose, [])
            if changes and changes[-1]["granted"] == granted:
                continue
            changes.append({
                "granted": granted,
                "at": iso(s.ts),
                "source": s.source_id,
                "source_name": names.get(s.source_id),
                "event": {"seq": s.seq, "message_id": s.message_id, "type": s.type,
                          "event": s.event},
            })
    return dict(sorted(out.items()))


def load_statements(tx: Tx, seqs: Sequence[int]) -> list[Statement]:
    """The consent statements among the events ``seqs``; bodies without consent are not
    decoded."""
    out: list[Statement] = []
    for start in range(0, len(seqs), 900):
        chunk = seqs[start : start + 900]
        marks = ",".join("?" * len(chunk))
        rows = tx.execute(
            "SELECT seq, ts, source_id, message_id, type, event, body FROM events "
            f"WHERE seq IN ({marks}) AND body LIKE '%categoryPreferences%'",
            chunk,
        )
        for seq, ts, source_id, message_id, kind, event, body in rows:
            try:
                message = _DEC.decode(body)
            except msgspec.DecodeError:
                continue
            prefs = preferences(message) if isinstance(message, dict) else {}
            if prefs:
                out.append(Statement(int(ts), int(seq), source_id, message_id, kind, event,
                                     prefs))
    return out


def source_names(tx: Tx) -> dict[str, str]:
    return {r[0]: r[1] for r in tx.execute("SELECT id, name FROM sources")}
