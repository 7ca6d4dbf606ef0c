"""Evaluating a condition for a :class:`Subject`, and knowing when time alone could change it.

Pure: the subject brings ``now`` and the callbacks that read stored events. :func:`evaluate`
stops at the first part that decides the answer (cheap tests before event counts);
:func:`assess` looks at everything and also returns :func:`next_change_us`, the moment the
answer could next flip without any new event: a trait date crossing "30 days ago", an event
leaving its window. Segments store that moment in their due index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from partitur.conditions.model import (
    AllOf,
    AnyOf,
    Assessment,
    Condition,
    ConsentCondition,
    ConsentState,
    Evaluation,
    EventCondition,
    EventPropertyCondition,
    EventQuery,
    NotOf,
    SegmentCondition,
    Subject,
    TraitCondition,
    lookup,
)


def consent_state(value: Any) -> ConsentState:
    """A profile's consent entry (a bool, or an object with ``granted``) as a state."""
    if isinstance(value, dict):
        value = value.get("granted")
    if value is True:
        return "granted"
    if value is False:
        return "withdrawn"
    return "unknown"


class _Run:
    def __init__(self, subject: Subject, full: bool) -> None:
        self.subject = subject
        self.full = full
        self.seen: dict[str, Any] = {}
        self._counts: dict[EventQuery, int] = {}
        self._times: dict[EventQuery, Sequence[int]] = {}

    def run(self, cond: Condition) -> tuple[bool, int | None]:
        """(result, next change); the next change is only computed when ``full``."""
        s = self.subject
        if isinstance(cond, TraitCondition):
            value = lookup(s.traits, cond.trait, cond.parts)
            self.seen[f"trait:{cond.trait}"] = value
            result = cond.test.check(value, s.now_us)
            return result, cond.test.change_at(value, s.now_us) if self.full else None
        if isinstance(cond, EventPropertyCondition):
            props = s.event.get("properties") if s.event is not None else None
            value = lookup(props if isinstance(props, dict) else None, cond.property, cond.parts)
            self.seen[f"event_property:{cond.property}"] = value
            result = cond.test.check(value, s.now_us)
            return result, cond.test.change_at(value, s.now_us) if self.full else None
        if isinstance(cond, ConsentCondition):
            state = consent_state(s.consent.get(cond.purpose))
            self.seen[f"consent:{cond.purpose}"] = state
            return state == cond.state, None
        if isinstance(cond, SegmentCondition):
            member = cond.segment in s.segments
            self.seen[f"segment:{cond.segment}"] = member
            return member == cond.member, None
        if isinstance(cond, EventCondition):
            return self._event(cond)
        if isinstance(cond, NotOf):
            result, change = self.run(cond.item)
            return not result, change
        return self._group(cond)

    def _group(self, cond: AllOf | AnyOf) -> tuple[bool, int | None]:
        want = isinstance(cond, AnyOf)  # the child result that decides the group
        if not self.full:
            for item in cond.cheap_first:
                if self.run(item)[0] == want:
                    return want, None
            return not want, None
        results = [self.run(item) for item in cond.items]
        result = any(r for r, _ in results) if want else all(r for r, _ in results)
        if result == want and any(r == want and c is None for r, c in results):
            return result, None  # a deciding part that time never changes
        changes = [c for _, c in results if c is not None]
        return result, min(changes) if changes else None

    def _event(self, cond: EventCondition) -> tuple[bool, int | None]:
        s = self.subject
        now = s.now_us
        since = None if cond.within_us is None else now - cond.within_us
        if self.full and s.event_times is not None:
            if since is None:
                # All time: the count so far, and only the times of events dated in the
                # future (nothing leaves an endless window), so a long history is not listed.
                count = self._count(EventQuery(cond.event, cond.where, None, now, now))
                times = self._list(EventQuery(cond.event, cond.where, now + 1, None, now))
            else:
                times = self._list(EventQuery(cond.event, cond.where, since, None, now))
                count = sum(1 for t in times if t <= now)
            result = cond.holds(count)
            self.seen[cond.label] = count
            return result, _event_change(cond, times, now, count, result)
        count = self._count(EventQuery(cond.event, cond.where, since, now, now))
        self.seen[cond.label] = count
        return cond.holds(count), None

    def _count(self, query: EventQuery) -> int:
        found = self._counts.get(query)
        if found is None:
            found = self._counts[query] = self.subject.count_events(query)
        return found

    def _list(self, query: EventQuery) -> Sequence[int]:
        found = self._times.get(query)
        if found is None:
            assert self.subject.event_times is not None
            found = self._times[query] = self.subject.event_times(query)
        return found


def _event_change(
    cond: EventCondition, times: Sequence[int], now: int, count: int, result: bool
) -> int | None:
    """When the count of events in the window, moving with time, first makes ``cond`` give
    another answer: events in the window leave it, events dated in the future arrive."""
    points: list[tuple[int, int]] = []
    for t in times:
        if t > now:
            points.append((t, 1))
            if cond.within_us is not None:
                points.append((t + cond.within_us + 1, -1))
        elif cond.within_us is not None:
            points.append((t + cond.within_us + 1, -1))
    points.sort()
    for at, delta in points:
        count += delta
        if cond.holds(count) != result:
            return at
    return None


def evaluate(cond: Condition, subject: Subject) -> Evaluation:
    """Whether ``subject`` meets ``cond`` now, and the values that decided it."""
    run = _Run(subject, full=False)
    result, _ = run.run(cond)
    return Evaluation(result, run.seen)


def assess(cond: Condition, subject: Subject) -> Assessment:
    """:func:`evaluate` without shortcuts, plus :func:`next_change_us`, in one pass."""
    run = _Run(subject, full=True)
    result, change = run.run(cond)
    return Assessment(result, run.seen, change)


def next_change_us(cond: Condition, subject: Subject) -> int | None:
    """The first moment after ``subject.now_us`` at which the result could flip by time
    passing alone (an event leaving a window needs ``subject.event_times``); None if never."""
    return assess(cond, subject).next_change_us
