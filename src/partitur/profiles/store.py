"""Profiles in the store: load and save states, the timeline, lookups and trait search."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from partitur.profiles.state import ProfileState
from partitur.store.db import BulkInsert, Tx, select_in

_COLS = (
    "id, part, created_at, updated_at, first_seen, last_seen, event_count, traits, trait_meta, "
    "consent, merged_into"
)
_DEC = msgspec.json.Decoder()


def _row_to_state(row: Sequence[Any]) -> ProfileState:
    return ProfileState(
        id=row[0],
        part=row[1],
        created_at=row[2],
        updated_at=row[3],
        first_seen=row[4],
        last_seen=row[5],
        event_count=row[6],
        traits=_DEC.decode(row[7]),
        trait_meta=_DEC.decode(row[8]),
        consent=_DEC.decode(row[9]),
        merged_into=row[10],
    )


def load(tx: Tx, ids: Sequence[str]) -> dict[str, ProfileState]:
    return {pid: _row_to_state(row) for pid, row in load_rows(tx, ids).items()}


def load_rows(tx: Tx, ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """The stored rows of ``ids`` (those that exist), for :func:`state_of` and comparison."""
    rows = select_in(tx, f"SELECT {_COLS} FROM profiles WHERE id IN (?...)", list(ids), "text")
    return {row[0]: tuple(row) for row in rows}


def state_of(row: Sequence[Any]) -> ProfileState:
    """The state a row of :func:`load_rows` holds."""
    return _row_to_state(row)


def get(tx: Tx, profile_id: str) -> ProfileState | None:
    row = tx.one(f"SELECT {_COLS} FROM profiles WHERE id = ?", (profile_id,))
    return _row_to_state(row) if row else None


def resolve_id(tx: Tx, profile_id: str) -> tuple[str | None, bool]:
    """(live id, redirected?) following merges; (None, False) if unknown."""
    seen = 0
    current = profile_id
    while seen < 50:
        row = tx.one("SELECT merged_into FROM profiles WHERE id = ?", (current,))
        if row is None:
            return None, False
        if row[0] is None:
            return current, current != profile_id
        current = row[0]
        seen += 1
    return None, False


_ENC = msgspec.json.Encoder()


_SAVE = BulkInsert(
    "profiles",
    [("id", "text"), ("part", "integer"), ("created_at", "bigint"), ("updated_at", "bigint"),
     ("first_seen", "bigint"), ("last_seen", "bigint"), ("event_count", "bigint"),
     ("traits", "text"), ("trait_meta", "text"), ("consent", "text"), ("merged_into", "text")],
    "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, "
    "first_seen = excluded.first_seen, last_seen = excluded.last_seen, "
    "event_count = excluded.event_count, traits = excluded.traits, "
    "trait_meta = excluded.trait_meta, consent = excluded.consent, "
    "merged_into = excluded.merged_into",
)
_SAVE_TRAITS = BulkInsert(
    "profile_traits",
    [("profile_id", "text"), ("name", "text"), ("value", "text")],
    "ON CONFLICT (profile_id, name) DO UPDATE SET value = excluded.value",
)
def _json(value: dict[str, Any]) -> str:
    return _ENC.encode(value).decode() if value else "{}"


def save(tx: Tx, states: Iterable[ProfileState], now_us: int) -> None:
    """Insert or update ``states`` (each profile once)."""
    rows = []
    trait_rows: list[tuple[Any, ...]] = []
    for s in states:
        s.updated_at = now_us
        rows.append(
            (
                s.id, s.part, s.created_at, s.updated_at, s.first_seen, s.last_seen,
                s.event_count, _json(s.traits), _json(s.trait_meta), _json(s.consent),
                s.merged_into,
            )
        )
        if s.changed_traits:
            for name in s.changed_traits:
                trait_rows.append((s.id, name, index_value(s.traits.get(name))))
            s.changed_traits.clear()
    _SAVE.run(tx, rows)
    _SAVE_TRAITS.run(tx, trait_rows)


def index_value(value: Any) -> str | None:
    """How a trait is kept for search: strings as they are, scalars as JSON, else nothing."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, str):
        return value[:512].replace("\x00", "")  # PostgreSQL text cannot hold NUL
    return json.dumps(value)


def replace_traits_index(tx: Tx, state: ProfileState) -> None:
    tx.execute("DELETE FROM profile_traits WHERE profile_id = ?", (state.id,))
    tx.executemany(
        "INSERT INTO profile_traits (profile_id, name, value) VALUES (?, ?, ?)",
        [(state.id, k, index_value(v)) for k, v in state.traits.items()],
    )
    state.changed_traits.clear()


_TIMELINE = BulkInsert(
    "profile_events", [("profile_id", "text"), ("ts", "bigint"), ("seq", "bigint")],
    "ON CONFLICT DO NOTHING",
)


def add_timeline(tx: Tx, rows: Sequence[tuple[str, int, int]]) -> None:
    _TIMELINE.run(tx, rows)


def move_timeline(tx: Tx, from_id: str, to_id: str) -> None:
    tx.execute("UPDATE profile_events SET profile_id = ? WHERE profile_id = ?", (to_id, from_id))
    tx.execute("DELETE FROM profile_traits WHERE profile_id = ?", (from_id,))
    tx.execute("UPDATE profiles SET merged_into = ? WHERE merged_into = ?", (to_id, from_id))


def timeline(
    tx: Tx, profile_id: str, limit: int, before: tuple[int, int] | None = None
) -> list[tuple[int, int]]:
    """(ts, seq) of a profile's events, newest first."""
    if before is None:
        rows = tx.execute(
            "SELECT ts, seq FROM profile_events WHERE profile_id = ? "
            "ORDER BY ts DESC, seq DESC LIMIT ?",
            (profile_id, limit),
        )
    else:
        rows = tx.execute(
            "SELECT ts, seq FROM profile_events WHERE profile_id = ? "
            "AND (ts < ? OR (ts = ? AND seq < ?)) ORDER BY ts DESC, seq DESC LIMIT ?",
            (profile_id, before[0], before[0], before[1], limit),
        )
    return [(int(r[0]), int(r[1])) for r in rows]


def all_timeline_seqs(tx: Tx, profile_id: str) -> list[int]:
    rows = tx.execute(
        "SELECT seq FROM profile_events WHERE profile_id = ? ORDER BY ts, seq", (profile_id,)
    )
    return [int(r[0]) for r in rows]


def search(
    tx: Tx, name: str, value: str | None, limit: int, after: str | None
) -> list[str]:
    params: list[Any] = [name]
    where = "name = ?"
    if value is not None:
        where += " AND value = ?"
        params.append(value)
    else:
        where += " AND value IS NOT NULL"
    if after:
        where += " AND profile_id > ?"
        params.append(after)
    params.append(limit)
    rows = tx.execute(
        f"SELECT profile_id FROM profile_traits WHERE {where} ORDER BY profile_id LIMIT ?",
        params,
    )
    return [r[0] for r in rows]
