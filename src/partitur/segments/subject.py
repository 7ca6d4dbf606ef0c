"""A :class:`~partitur.conditions.Subject` for one stored person, for callers outside the
segment engine (journey branches and audiences): their traits, consent and current segment
memberships, with event counts read from the store inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from partitur.conditions import EventQuery, Subject
from partitur.profiles.state import ProfileState
from partitur.segments.engine import memberships
from partitur.segments.eventcounts import EventCounts, Need, count_events
from partitur.store.db import Tx


def profile_subject(
    tx: Tx,
    state: ProfileState,
    now_us: int,
    *,
    event: Mapping[str, Any] | None = None,
    dialect: str = "sqlite",
) -> Subject:
    """Everything a condition may ask about ``state`` at ``now_us``; events are read only when
    the condition asks (one query per distinct event test)."""

    def times(query: EventQuery) -> Sequence[int]:
        need = Need(frozenset({query.name}), query.since_us, bool(query.where))
        return EventCounts.load(tx, [state.id], need, dialect).times(state.id, query)

    return Subject(
        profile_id=state.id,
        traits=state.traits,
        consent=state.consent,
        now_us=now_us,
        segments=frozenset(memberships(tx, [state.id], dialect)[state.id]),
        count_events=lambda query: count_events(tx, state.id, query),
        event=event,
        event_times=times,
    )
