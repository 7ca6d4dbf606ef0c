"""A subject over an in-memory list of events, for testing the pure condition language."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from partitur.clock import to_us
from partitur.conditions import EventQuery, Subject

DAY = 86_400_000_000
NOW = to_us(datetime(2026, 1, 31, 12, 0, tzinfo=UTC))


@dataclass
class Events:
    rows: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    queries: list[EventQuery] = field(default_factory=list)

    def add(self, name: str, ts: int, **props: Any) -> None:
        self.rows.append((name, ts, props))

    def times(self, query: EventQuery) -> Sequence[int]:
        self.queries.append(query)
        return sorted(ts for name, ts, props in self.rows if query.matches(name, ts, props))

    def count(self, query: EventQuery) -> int:
        self.queries.append(query)
        return sum(1 for name, ts, props in self.rows if query.matches(name, ts, props))


def subject(
    traits: Mapping[str, Any] | None = None,
    *,
    now: int = NOW,
    events: Events | None = None,
    consent: Mapping[str, Any] | None = None,
    segments: frozenset[str] = frozenset(),
    event: Mapping[str, Any] | None = None,
    with_times: bool = True,
) -> Subject:
    events = events or Events()
    return Subject(
        profile_id="p1",
        traits=traits or {},
        consent=consent or {},
        now_us=now,
        segments=segments,
        count_events=events.count,
        event=event,
        event_times=events.times if with_times else None,
    )
