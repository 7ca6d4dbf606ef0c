"""What the engine knows of a person: traits, consent, segments, events, time zone.

Built from the profiles a batch already holds (or loads), with segment memberships read once
per transaction for the people that need them and events counted from the store on demand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from partitur.journeys.engine import Person
from partitur.segments.eventcounts import event_counter
from partitur.store.db import Tx, select_in

if TYPE_CHECKING:
    from partitur.profiles.state import ProfileState


def timezone_of(traits: Mapping[str, Any], default: str) -> str:
    for name in ("timezone", "time_zone"):
        value = traits.get(name)
        if isinstance(value, str) and value:
            return value
    return default


class People:
    """Persons for one transaction, memoised."""

    def __init__(self, tx: Tx, states: Mapping[str, ProfileState], default_zone: str) -> None:
        self.tx = tx
        self.states = dict(states)
        self.default_zone = default_zone
        self._segments: dict[str, frozenset[str]] = {}
        self._people: dict[str, Person] = {}

    def preload_segments(self, profile_ids: Iterable[str]) -> None:
        wanted = sorted(p for p in set(profile_ids) if p not in self._segments)
        found: dict[str, set[str]] = {p: set() for p in wanted}
        for pid, seg in select_in(
            self.tx, "SELECT profile_id, segment FROM segment_members WHERE profile_id "
            "IN (?...)", wanted, "text",
        ):
            found[pid].add(seg)
        for pid, segs in found.items():
            self._segments[pid] = frozenset(segs)

    def load_states(self, profile_ids: Iterable[str]) -> None:
        from partitur.profiles import store as profile_store

        missing = sorted(p for p in set(profile_ids) if p not in self.states)
        if missing:
            self.states.update(profile_store.load(self.tx, missing))

    def get(self, profile_id: str) -> Person:
        person = self._people.get(profile_id)
        if person is not None:
            return person
        if profile_id not in self._segments:
            self.preload_segments([profile_id])
        state = self.states.get(profile_id)
        traits: Mapping[str, Any] = state.traits if state is not None else {}
        consent: Mapping[str, Any] = state.consent if state is not None else {}
        person = Person(
            profile_id=profile_id,
            traits=traits,
            consent=consent,
            segments=self._segments.get(profile_id, frozenset()),
            count_events=event_counter(self.tx, profile_id),
            timezone=timezone_of(traits, self.default_zone),
        )
        self._people[profile_id] = person
        return person

    def forget(self, profile_id: str) -> None:
        """After a change to the person (segments moved in this batch)."""
        self._people.pop(profile_id, None)
        self._segments.pop(profile_id, None)
