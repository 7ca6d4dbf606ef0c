"""What a parsed condition is, and what it is evaluated against.

A condition is a tree of frozen dataclasses: leaves test a trait, the properties of the
current event, a person's events in a window, consent, or membership of another segment;
:class:`AllOf`, :class:`AnyOf` and :class:`NotOf` combine them. A :class:`Subject` is one
person at one moment, with a callback that counts their stored events, so the same
condition runs in the segment engine (backed by the store) and in journeys.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from partitur.conditions.operators import MISSING, Test


def lookup(data: Mapping[str, Any] | None, path: str, parts: tuple[str, ...]) -> Any:
    """``data[path]`` if that key exists, else the dotted ``path`` walked through nested
    objects; :data:`MISSING` when absent (``null`` counts as absent)."""
    if data is None:
        return MISSING
    if path in data:
        return data[path]
    value: Any = data
    for part in parts:
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


@dataclass(frozen=True, slots=True)
class PropertyTest:
    path: str
    parts: tuple[str, ...]
    test: Test


@dataclass(frozen=True, slots=True)
class Where:
    """Property filters on events, all of which must hold. Hashed and compared by ``key``,
    its canonical JSON, so that equal filters share cached counts."""

    key: str
    tests: tuple[PropertyTest, ...] = field(compare=False, hash=False)

    def matches(self, properties: Mapping[str, Any] | None, now_us: int) -> bool:
        return all(
            t.test.check(lookup(properties, t.path, t.parts), now_us) for t in self.tests
        )

    def __bool__(self) -> bool:
        return bool(self.tests)

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.key)
        return doc


NO_FILTER = Where("{}", ())


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Count a person's events named ``name`` whose properties match ``where`` and whose
    time is in ``[since_us, until_us]`` (either bound may be None: open)."""

    name: str
    where: Where
    since_us: int | None
    until_us: int | None
    now_us: int = 0  # for relative times inside ``where``

    def matches(self, name: str, ts: int, properties: Mapping[str, Any] | None) -> bool:
        if name != self.name:
            return False
        if self.since_us is not None and ts < self.since_us:
            return False
        if self.until_us is not None and ts > self.until_us:
            return False
        return not self.where or self.where.matches(properties, self.now_us)


@dataclass(frozen=True, slots=True)
class TraitCondition:
    trait: str
    parts: tuple[str, ...]
    test: Test


@dataclass(frozen=True, slots=True)
class EventPropertyCondition:
    """A test on a property of the current (trigger) event, ``subject.event``."""

    property: str
    parts: tuple[str, ...]
    test: Test


@dataclass(frozen=True, slots=True)
class EventCondition:
    event: str
    performed: bool
    at_least: int
    at_most: int | None
    within: str | None
    within_us: int | None
    where: Where
    label: str = field(default="", compare=False)  # the key of its count in ``seen``

    def __post_init__(self) -> None:
        text = f"event:{self.event}"
        if self.within:
            text += f" within {self.within}"
        if self.where:
            text += f" where {self.where.key}"
        object.__setattr__(self, "label", text)

    def holds(self, count: int) -> bool:
        inside = count >= self.at_least and (self.at_most is None or count <= self.at_most)
        return inside if self.performed else not inside


ConsentState = Literal["granted", "withdrawn", "unknown"]


@dataclass(frozen=True, slots=True)
class ConsentCondition:
    purpose: str
    state: ConsentState


@dataclass(frozen=True, slots=True)
class SegmentCondition:
    segment: str
    member: bool


def _cost(cond: Condition) -> int:
    if isinstance(cond, EventCondition):
        return 1
    if isinstance(cond, NotOf):
        return _cost(cond.item)
    if isinstance(cond, AllOf | AnyOf):
        return max(_cost(item) for item in cond.items)
    return 0


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Condition, ...]
    # the same items, those that read no stored events first (what evaluation tries first)
    cheap_first: tuple[Condition, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cheap_first", tuple(sorted(self.items, key=_cost)))


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Condition, ...]
    cheap_first: tuple[Condition, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cheap_first", tuple(sorted(self.items, key=_cost)))


@dataclass(frozen=True, slots=True)
class NotOf:
    item: Condition


Condition = (
    TraitCondition
    | EventPropertyCondition
    | EventCondition
    | ConsentCondition
    | SegmentCondition
    | AllOf
    | AnyOf
    | NotOf
)


@dataclass(frozen=True)
class Subject:
    """One person at one moment."""

    profile_id: str
    traits: Mapping[str, Any]
    consent: Mapping[str, Any]  # purpose -> bool, or -> {"granted": bool, ...}
    now_us: int
    segments: frozenset[str]  # current memberships
    count_events: Callable[[EventQuery], int]
    event: Mapping[str, Any] | None = None  # the current/trigger event, if any
    # The times (µs, ascending) of the events a query matches. Optional; when given,
    # next_change_us can say when an event leaves a window.
    event_times: Callable[[EventQuery], Sequence[int]] | None = None


@dataclass(frozen=True)
class Evaluation:
    result: bool
    seen: dict[str, Any]  # what the condition looked at, e.g. {"trait:plan": "pro"}


@dataclass(frozen=True)
class Assessment:
    """A full evaluation: the result, everything looked at, and when it could next flip."""

    result: bool
    seen: dict[str, Any]
    next_change_us: int | None


@dataclass(frozen=True)
class References:
    """What a condition depends on: which changes can change its answer."""

    traits: frozenset[str]  # trait names (the first part of a dotted path, and the whole)
    events: frozenset[str]
    consents: frozenset[str]
    segments: frozenset[str]
    uses_current_event: bool
    time_dependent: bool
