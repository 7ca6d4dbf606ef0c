"""Evaluate segments for a set of people inside one transaction and write what changed.

Used the same way by the real-time hook (after an event), the due scheduler (time passing),
the backfill (a new or changed segment) and static list changes. For each person, the
segments asked for are evaluated in dependency order; a segment that refers to another one
is evaluated again whenever that one changed for the person in the same pass, so a chain of
segments settles in one step. Writes: membership rows, one history row per entry or exit
(with the values the condition saw), and the due index (the next moment time alone could
change the answer).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from partitur.conditions import Assessment, Subject, assess, evaluate
from partitur.profiles.state import ProfileState
from partitur.segments.definitions import Definitions
from partitur.segments.eventcounts import EventCounts
from partitur.segments.sql import delete_pairs, id_chunks, insert_rows
from partitur.store.db import Tx

Cause = Literal["event", "time", "backfill", "static", "merge", "deleted", "unmerge"]
_ENC = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Change:
    profile_id: str
    segment: str
    entered: bool
    at: int
    cause: Cause
    seen: dict[str, Any] | None


@dataclass
class Outcome:
    changes: list[Change]
    evaluated: int = 0
    event_rows: int = 0


def memberships(
    tx: Tx, profile_ids: Collection[str], dialect: str = "sqlite"
) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {p: set() for p in profile_ids}
    for where, params in id_chunks(dialect, "profile_id", sorted(profile_ids)):
        for segment, profile_id in tx.execute(
            f"SELECT segment, profile_id FROM segment_members WHERE {where}", params
        ):
            out[profile_id].add(segment)
    return out


def _due(tx: Tx, profile_ids: Collection[str], dialect: str) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for where, params in id_chunks(dialect, "profile_id", sorted(profile_ids)):
        for profile_id, segment, due_at in tx.execute(
            f"SELECT profile_id, segment, due_at FROM segment_due WHERE {where}", params
        ):
            out[(profile_id, segment)] = int(due_at)
    return out


def evaluate_people(
    tx: Tx,
    defs: Definitions,
    people: Mapping[str, ProfileState],
    wanted: Mapping[str, Collection[str]],
    now_us: int,
    cause: Cause,
    dialect: str = "sqlite",
    *,
    keep_totals: bool = False,
) -> Outcome:
    """Evaluate ``wanted[profile]`` (and whatever depends on a segment that changes) for
    each person in ``people``; write and return the changes. ``keep_totals``: store the
    all-time event totals built on the way (see :meth:`EventCounts.load`)."""
    wanted = {p: keys for p, keys in wanted.items() if keys and p in people}
    outcome = Outcome([])
    if not wanted or not defs.order:
        return outcome
    ids = sorted(wanted)
    member = memberships(tx, ids, dialect)
    due = _due(tx, ids, dialect)
    memo: dict[frozenset[str], set[str]] = {}
    closures: dict[str, set[str]] = {}
    for p, keys in wanted.items():
        frozen = frozenset(keys)
        found = memo.get(frozen)
        if found is None:
            found = memo[frozen] = defs.closure(frozen)
        closures[p] = found
    need_keys: set[str] = set().union(*closures.values())
    need = defs.need(need_keys, now_us)
    counts = EventCounts.load(
        tx, [p for p in ids if closures[p] & set(defs.needs)] if need.names else [], need,
        dialect, keep_totals=keep_totals,
    )
    outcome.event_rows = counts.loaded_rows + counts.counted_rows
    entered: list[tuple[Any, ...]] = []
    exited: list[tuple[Any, ...]] = []
    history: list[tuple[Any, ...]] = []
    due_set: list[tuple[Any, ...]] = []
    due_clear: list[tuple[Any, ...]] = []
    for profile_id in ids:
        state = people[profile_id]
        asked = wanted[profile_id]
        current = member[profile_id]
        changed: set[str] = set()
        count, times = counts.for_profile(profile_id)
        subject: Subject | None = None
        for seg in defs.order:
            refs = seg.refs
            if seg.key not in asked and not (refs and refs.segments & changed):
                continue
            assert seg.condition is not None and refs is not None
            if subject is None:
                subject = Subject(
                    profile_id=profile_id, traits=state.traits, consent=state.consent,
                    now_us=now_us, segments=frozenset(current), count_events=count,
                    event_times=times,
                )
            if refs.time_dependent:
                result = assess(seg.condition, subject)
            else:  # time cannot change it: the quicker evaluation, no due time
                quick = evaluate(seg.condition, subject)
                result = Assessment(quick.result, quick.seen, None)
            outcome.evaluated += 1
            was = seg.key in current
            if result.result != was:
                subject = None  # memberships changed: the next segment sees the new ones
                changed.add(seg.key)
                if result.result:
                    current.add(seg.key)
                    entered.append((seg.key, profile_id, now_us))
                else:
                    current.discard(seg.key)
                    exited.append((seg.key, profile_id))
                history.append((profile_id, seg.key, int(result.result), now_us, cause,
                                _ENC.encode(result.seen).decode()))
                outcome.changes.append(
                    Change(profile_id, seg.key, result.result, now_us, cause, result.seen)
                )
            old_due = due.get((profile_id, seg.key))
            if result.next_change_us != old_due:
                if result.next_change_us is None:
                    due_clear.append((profile_id, seg.key))
                else:
                    due_set.append((profile_id, seg.key, result.next_change_us))
    write(tx, entered, exited, history, due_set, due_clear, dialect=dialect)
    return outcome


def write(
    tx: Tx,
    entered: Sequence[tuple[Any, ...]],
    exited: Sequence[tuple[Any, ...]],
    history: Sequence[tuple[Any, ...]],
    due_set: Sequence[tuple[Any, ...]] = (),
    due_clear: Sequence[tuple[Any, ...]] = (),
    *,
    dialect: str = "sqlite",
) -> None:
    """Entries ``(segment, profile, since)``, exits ``(segment, profile)``, history rows,
    due times ``(profile, segment, due_at)`` to set and ``(profile, segment)`` to clear."""
    insert_rows(tx, dialect, "segment_members",
                [("segment", "text"), ("profile_id", "text"), ("since", "bigint")],
                entered, "ON CONFLICT DO NOTHING")
    delete_pairs(tx, dialect, "segment_members", "segment", "profile_id", exited)
    insert_rows(tx, dialect, "segment_history",
                [("profile_id", "text"), ("segment", "text"), ("entered", "bigint"),
                 ("at", "bigint"), ("cause", "text"), ("seen", "text")],
                history)
    insert_rows(tx, dialect, "segment_due",
                [("profile_id", "text"), ("segment", "text"), ("due_at", "bigint")],
                due_set,
                "ON CONFLICT (profile_id, segment) DO UPDATE SET due_at = excluded.due_at")
    delete_pairs(tx, dialect, "segment_due", "profile_id", "segment", due_clear)
