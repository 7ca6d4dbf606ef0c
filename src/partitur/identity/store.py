"""The identity graph in the store: identifiers and the append-only identity log."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from partitur.store.db import BulkInsert, Tx, chunks, select_in


@dataclass(frozen=True, slots=True)
class LogEntry:
    kind: str  # create | link | merge | refuse | unmerge
    profile_id: str
    other_profile: str | None = None
    id_type: str | None = None
    id_value: str | None = None
    event_seq: int | None = None
    message_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def owners(tx: Tx, keys: Sequence[str]) -> dict[str, str]:
    """identifier key -> profile id, for the keys that exist."""
    rows = select_in(tx, "SELECT key, profile_id FROM identifiers WHERE key IN (?...)",
                     list(keys), "text")
    return {key: profile for key, profile in rows}


def members(tx: Tx, profile_ids: Sequence[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {p: set() for p in profile_ids}
    rows = select_in(tx, "SELECT key, profile_id FROM identifiers WHERE profile_id IN (?...)",
                     list(profile_ids), "text")
    for key, profile in rows:
        out.setdefault(profile, set()).add(key)
    return out


def owners_and_members(
    tx: Tx, keys: Sequence[str]
) -> tuple[dict[str, str], dict[str, set[str]]]:
    """:func:`owners` of ``keys`` and :func:`members` of those owners, in one statement."""
    rows = select_in(
        tx,
        "SELECT key, profile_id FROM identifiers WHERE profile_id IN "
        "(SELECT profile_id FROM identifiers WHERE key IN (?...))",
        list(keys),
        "text",
    )
    wanted = set(keys)
    owner: dict[str, str] = {}
    held: dict[str, set[str]] = {}
    for key, profile in rows:
        found = held.get(profile)
        if found is None:
            found = held[profile] = set()
        found.add(key)
        if key in wanted:
            owner[key] = profile
    return owner, held


def identifiers_of(tx: Tx, profile_id: str) -> list[tuple[str, str, int, int | None]]:
    """(type, value, first_seen, event_seq) of a profile's identifiers."""
    rows = tx.execute(
        "SELECT id_type, id_value, first_seen, event_seq FROM identifiers "
        "WHERE profile_id = ? ORDER BY first_seen, key",
        (profile_id,),
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


_ADD = BulkInsert(
    "identifiers",
    [("key", "text"), ("id_type", "text"), ("id_value", "text"), ("profile_id", "text"),
     ("first_seen", "bigint"), ("event_seq", "bigint")],
    "ON CONFLICT (key) DO UPDATE SET profile_id = excluded.profile_id",
)


def add(tx: Tx, rows: Sequence[tuple[str, str, str, str, int, int | None]]) -> None:
    """rows: (key, type, value, profile_id, first_seen, event_seq); keys distinct."""
    _ADD.run(tx, rows)


def move(tx: Tx, from_profile: str, to_profile: str) -> None:
    tx.execute(
        "UPDATE identifiers SET profile_id = ? WHERE profile_id = ?", (to_profile, from_profile)
    )


def move_keys(tx: Tx, keys: Sequence[str], to_profile: str) -> None:
    for chunk in chunks(list(keys)):
        marks = ",".join("?" * len(chunk))
        tx.execute(
            f"UPDATE identifiers SET profile_id = ? WHERE key IN ({marks})", [to_profile, *chunk]
        )


_LOG = BulkInsert(
    "identity_log",
    [("at", "bigint"), ("kind", "text"), ("profile_id", "text"), ("other_profile", "text"),
     ("id_type", "text"), ("id_value", "text"), ("event_seq", "bigint"),
     ("message_id", "text"), ("detail", "text")],
    ordered=True,
)


def append_log(tx: Tx, entries: Sequence[LogEntry], at: int) -> None:
    _LOG.run(
        tx,
        [
            (at, e.kind, e.profile_id, e.other_profile, e.id_type, e.id_value, e.event_seq,
             e.message_id, json.dumps(e.detail) if e.detail else "{}")
            for e in entries
        ],
    )


def unmerged_pairs(tx: Tx, profile_ids: Sequence[str]) -> set[frozenset[str]]:
    """Pairs of profiles that an operator split apart: never merge them again automatically."""
    out: set[frozenset[str]] = set()
    for chunk in chunks(list(profile_ids)):
        marks = ",".join("?" * len(chunk))
        for a, b in tx.execute(
            f"SELECT profile_id, other_profile FROM identity_log WHERE kind = 'unmerge' "
            f"AND (profile_id IN ({marks}) OR other_profile IN ({marks}))",
            [*chunk, *chunk],
        ):
            if b is not None:
                out.add(frozenset((a, b)))
    return out


def log_for(tx: Tx, profile_ids: Sequence[str], limit: int = 500) -> list[dict[str, Any]]:
    marks = ",".join("?" * len(profile_ids))
    rows = tx.execute(
        "SELECT id, at, kind, profile_id, other_profile, id_type, id_value, event_seq, "
        f"message_id, detail FROM identity_log WHERE profile_id IN ({marks}) "
        f"OR other_profile IN ({marks}) ORDER BY id DESC LIMIT ?",
        [*profile_ids, *profile_ids, limit],
    )
    return [
        {
            "id": r[0], "at": r[1], "kind": r[2], "profile_id": r[3], "other_profile": r[4],
            "type": r[5], "value": r[6], "event_seq": r[7], "message_id": r[8],
            "detail": json.loads(r[9]),
        }
        for r in rows
    ]
