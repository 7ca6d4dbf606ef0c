"""The journey engine: one pure function from (journey, instance, trigger, now) to a step.

:func:`advance` reads no clock and no randomness: ``now`` is passed in, splits hash the
journey key, the person and the step id, and everything it knows of the person comes in the
trigger (:class:`Person`). It moves the instance through steps until one waits (``wait``,
``wait_for_event``) or the journey ends, and returns the new instance with the commands for
the runner to carry out in the same transaction: messages (:class:`Send`,
:class:`CallWebhook`), events (:class:`Emit`), trait updates (:class:`UpdateProfile`), the next
timer (:class:`ScheduleWake`), the end (:class:`Exit`) and the path entries (:class:`Record`)
that explain every decision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from operator import attrgetter
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec.structs import astuple

from partitur.clock import from_us, to_us
from partitur.conditions import EventQuery, Subject, evaluate, parse_instant
from partitur.conditions.model import lookup
from partitur.journeys.model import (
    BranchStep,
    EmitStep,
    ExitStep,
    Journey,
    SendStep,
    SplitStep,
    UpdateProfileStep,
    WaitForEventStep,
    WaitStep,
    WebhookStep,
)
from partitur.journeys.parse import _REF

MAX_TRANSITIONS = 200  # steps one advance may take before the runaway guard ends the journey
Status = Literal["active", "completed", "exited"]


# -- what the engine is given ----------------------------------------------------------------
@dataclass(frozen=True)
class Person:
    profile_id: str
    traits: Mapping[str, Any] = field(default_factory=dict)
    consent: Mapping[str, Any] = field(default_factory=dict)
    segments: frozenset[str] = frozenset()
    count_events: Callable[[EventQuery], int] = lambda q: 0
    timezone: str = "UTC"


class Instance(msgspec.Struct, frozen=True):
    """One person in one journey (one row). A struct rather than a dataclass: one is made
    for every step of every person, so construction cost counts."""

    id: str  # journey:profile:entry
    journey: str
    version: int
    profile_id: str
    entry: int
    entered_at: int
    status: Status = "active"
    step: str | None = None
    wake_at: int | None = None
    waiting_for: str | None = None
    state_version: int = 0
    goal_until: int | None = None  # conversions count until then (µs), also after the end
    converted_at: int | None = None
    ended_at: int | None = None
    exit_reason: str | None = None
    # {"event": trigger event, "visits": {step: n}, "arms": {split: arm}, "decision": ...}
    context: Mapping[str, Any] = {}


@dataclass(slots=True)
class _Draft:
    """An instance being changed by one :func:`advance` (mutable, cheap to update)."""

    id: str
    journey: str
    version: int
    profile_id: str
    entry: int
    entered_at: int
    status: Status
    step: str | None
    wake_at: int | None
    waiting_for: str | None
    state_version: int
    goal_until: int | None
    converted_at: int | None
    ended_at: int | None
    exit_reason: str | None
    context: Mapping[str, Any]


_FIELDS = tuple(_Draft.__dataclass_fields__)
assert Instance.__struct_fields__ == _FIELDS
_draft_values = attrgetter(*_FIELDS)


def new_instance(journey: Journey, version: int, profile_id: str, entry: int,
                 now: int) -> Instance:
    return Instance(id=f"{journey.key}:{profile_id}:{entry}", journey=journey.key,
                    version=version, profile_id=profile_id, entry=entry, entered_at=now)


@dataclass(frozen=True)
class Enter:
    person: Person
    event: Mapping[str, Any] | None  # the triggering event (or a segment change as one)
    cause: str  # "event Order Completed", "entered segment trial-users", "schedule"


@dataclass(frozen=True)
class Event:
    """One of the person's events, in order: goal, exit rules, awaited events.

    ``held``: the journey is paused, so the event may end the instance (goal, exit rules) but
    does not move it on (an awaited event is recorded as held, not matched). ``received_at``
    (µs, default ``now``) decides between an awaited event and a timeout that is due but has
    not fired yet: the one that came first wins.
    """

    person: Person
    name: str
    message: Mapping[str, Any]
    ts: int
    held: bool = False
    received_at: int | None = None


@dataclass(frozen=True)
class SegmentChanged:
    person: Person
    segment: str
    entered: bool


@dataclass(frozen=True)
class Timer:
    person: Person
    state_version: int  # the instance version the timer was set for; stale if it moved


@dataclass(frozen=True)
class Halt:
    """Leave the journey for a reason from outside (archived, erased, merged, test run
    ended); ``details`` go into the path entry next to the reason."""

    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)


Trigger = Enter | Event | SegmentChanged | Timer | Halt


# -- what it asks for -------------------------------------------------------------------------
@dataclass(frozen=True)
class Send:
    step_id: str
    key: str
    channel: str
    template: str | dict[str, Any] | None
    category: str
    webhook: dict[str, Any] | None
    variables: dict[str, Any]


@dataclass(frozen=True)
class CallWebhook:
    step_id: str
    key: str
    request: dict[str, Any]
    variables: dict[str, Any]


@dataclass(frozen=True)
class Emit:
    step_id: str
    key: str
    event: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class UpdateProfile:
    step_id: str
    key: str
    set: dict[str, Any]
    unset: tuple[str, ...]


class ScheduleWake(msgspec.Struct, frozen=True):
    at: int


class Exit(msgspec.Struct, frozen=True):
    reason: str
    converted: bool = False


class Convert(msgspec.Struct, frozen=True):
    """The goal was reached (the instance may have ended before; it still counts)."""

    at: int
    step_id: str | None


class Record(msgspec.Struct, frozen=True):
    """One line of the person's path: what happened at a step and why."""

    step_id: str | None
    kind: str  # enter, send, wait, wake, event, timeout, branch, split, ... exit, goal
    at: int
    reason: dict[str, Any]
    message_key: str | None = None


Command = Send | CallWebhook | Emit | UpdateProfile | ScheduleWake | Exit | Convert | Record


class Step(msgspec.Struct, frozen=True):
    instance: Instance
    commands: tuple[Command, ...]

    @property
    def changed(self) -> bool:
        return bool(self.commands)


# -- helpers ----------------------------------------------------------------------------------
def split_point(journey_key: str, profile_id: str, step_id: str) -> float:
    """A number in [0, 1) fixed for this person at this split (no randomness)."""
    digest = hashlib.sha256(f"{journey_key}\n{profile_id}\n{step_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose_variant(step: SplitStep, journey_key: str, profile_id: str) -> int:
    point = split_point(journey_key, profile_id, step.id) * sum(v.weight for v in step.variants)
    for i, variant in enumerate(step.variants):
        point -= variant.weight
        if point < 0:
            return i
    return len(step.variants) - 1


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def next_local_time(now: int, hour: int, minute: int, days: frozenset[int], tz: str) -> int:
    """The next moment after ``now`` that is ``hour:minute`` in ``tz`` on one of ``days``."""
    where = zone(tz)
    local = from_us(now).astimezone(where)
    day = local.date()
    for _ in range(9):
        candidate = datetime.combine(day, time(hour, minute), tzinfo=where)
        if to_us(candidate) > now and (not days or candidate.weekday() in days):
            return to_us(candidate)
        day += timedelta(days=1)
    raise AssertionError("no matching day within a week")  # pragma: no cover


def trait_instant(value: Any) -> int | None:
    """A date trait as µs: an ISO date/date-time, or a number of seconds since the epoch."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value * 1_000_000)
    return parse_instant(value)


def resolve(ref: str, instance: Instance | _Draft, person: Person) -> Any:
    """A reference such as ``trigger.properties.cart_id`` (``event.`` is the same root),
    ``trigger.cart_id`` (the property), ``profile.traits.plan``, ``profile.id``,
    ``journey.key``; None if absent."""
    root, _, rest = ref.partition(".")
    parts = tuple(rest.split("."))
    if root in ("trigger", "event"):
        event = instance.context.get("event") or {}
        if parts[0] not in event and parts[0] != "properties":
            event = event.get("properties") or {}
        value = lookup(event, rest, parts)
    elif root == "profile":
        value = lookup({"id": person.profile_id, "traits": person.traits}, rest, parts)
    else:
        info = {"key": instance.journey, "version": instance.version, "step": instance.step,
                "entry": instance.entry}
        value = lookup(info, rest, parts)
    return value


def fill(value: Any, instance: Instance | _Draft, person: Person) -> Any:
    """Values with ``{{ reference }}`` strings replaced by what they refer to."""
    if isinstance(value, str) and "{{" in value:
        found = _REF.match(value)
        return resolve(found.group(1), instance, person) if found else value
    if isinstance(value, Mapping):
        return {k: fill(v, instance, person) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, instance, person) for v in value]
    return value


def _subject(person: Person, now: int, event: Mapping[str, Any] | None) -> Subject:
    return Subject(person.profile_id, person.traits, person.consent, now, person.segments,
                   person.count_events, event=event)


# -- the engine -------------------------------------------------------------------------------
class _Run:
    def __init__(self, journey: Journey, instance: Instance, person: Person, now: int) -> None:
        self.journey = journey
        self.inst = _Draft(*astuple(instance))
        self.person = person
        self.now = now
        self.commands: list[Command] = []
        ctx = dict(instance.context)
        self.visits: dict[str, int] = dict(ctx.get("visits") or {})
        self.arms: dict[str, str] = dict(ctx.get("arms") or {})
        self.decision: Any = ctx.get("decision")
        self.moved = False

    def record(self, step_id: str | None, kind: str, reason: dict[str, Any],
               key: str | None = None) -> None:
        self.commands.append(Record(step_id, kind, self.now, reason, key))

    def _key(self, step_id: str) -> str:
        i = self.inst
        return f"{i.journey}:{i.version}:{i.profile_id}:{i.entry}:{step_id}:{self.visits[step_id]}"

    def _variables(self, step_id: str) -> dict[str, Any]:
        last_arm = next(reversed(self.arms.values()), None) if self.arms else None
        return {
            "event": dict(self.inst.context.get("event") or {}),
            "journey": {"key": self.inst.journey, "version": self.inst.version,
                        "step": step_id, "entry": self.inst.entry, "arm": last_arm,
                        "arms": dict(self.arms), "decision": self.decision},
        }

    def finish(self) -> Step:
        draft = self.inst
        ctx = dict(draft.context)
        ctx.update(visits=self.visits, arms=self.arms, decision=self.decision)
        draft.context = ctx
        if self.moved:
            draft.state_version += 1
        return Step(Instance(*_draft_values(draft)), tuple(self.commands))

    def end(self, status: Status, reason: str, *, converted: bool = False) -> None:
        self.moved = True
        goal_until = self.inst.goal_until
        if converted or status == "exited":
            goal_until = None  # a conversion or an exit rule closes the window
        d = self.inst
        d.status, d.wake_at, d.waiting_for = status, None, None
        d.ended_at, d.exit_reason, d.goal_until = self.now, reason, goal_until
        self.commands.append(Exit(reason, converted))

    def go(self, step_id: str | None) -> None:
        """Walk from ``step_id`` until a step waits or the journey ends."""
        self.moved = True
        for _ in range(MAX_TRANSITIONS):
            if step_id is None:
                self.record(self.inst.step, "complete", {"reason": "no next step"})
                self.end("completed", "completed")
                return
            step = self.journey.step(step_id)
            if step is None:  # a migrated instance whose step is gone (validated away)
                self.record(step_id, "halt", {"reason": f"step {step_id!r} does not exist"})
                self.end("exited", f"missing step {step_id}")
                return
            self.visits[step_id] = self.visits.get(step_id, 0) + 1
            self.inst.step, self.inst.wake_at, self.inst.waiting_for = step_id, None, None
            nxt = self._step(step)
            if nxt is _STOP:
                return
            step_id = nxt  # type: ignore[assignment]
        self.record(step_id, "halt", {"reason": f"more than {MAX_TRANSITIONS} steps at once"})
        self.end("exited", "runaway guard")

    def _step(self, step: Any) -> str | object | None:
        sid = step.id
        if isinstance(step, SendStep):
            key = self._key(sid)
            self.commands.append(Send(sid, key, step.channel, step.template, step.category,
                                      step.webhook, self._variables(sid)))
            self.record(sid, "send", {"channel": step.channel, "category": step.category,
                                      "template": step.template}, key)
            return step.next
        if isinstance(step, WaitStep):
            return self._wait(step)
        if isinstance(step, WaitForEventStep):
            wake = self.now + step.timeout_us
            self.inst.wake_at, self.inst.waiting_for = wake, step.event
            self.commands.append(ScheduleWake(wake))
            self.record(sid, "wait_for_event", {"event": step.event, "timeout_at": wake,
                                                "match": self._match_values(step)})
            return _STOP
        if isinstance(step, BranchStep):
            subject = _subject(self.person, self.now, self.inst.context.get("event"))
            for i, branch in enumerate(step.branches):
                result = evaluate(branch.when, subject)
                if result.result:
                    self.decision = {"step": sid, "branch": i, "next": branch.next}
                    self.record(sid, "branch", {"branch": i, "next": branch.next,
                                                "seen": result.seen})
                    return branch.next
            seen: dict[str, Any] = {}
            for branch in step.branches:
                seen.update(evaluate(branch.when, subject).seen)
            self.decision = {"step": sid, "branch": "default", "next": step.default}
            self.record(sid, "branch", {"branch": "default", "next": step.default,
                                        "seen": seen})
            return step.default
        if isinstance(step, SplitStep):
            i = choose_variant(step, self.journey.key, self.person.profile_id)
            variant = step.variants[i]
            self.arms[sid] = variant.name
            self.record(sid, "split", {"arm": variant.name, "control": variant.control,
                                       "next": variant.next})
            return variant.next
        if isinstance(step, UpdateProfileStep):
            values = fill(step.set, self.inst, self.person)
            self.commands.append(UpdateProfile(sid, self._key(sid), values, step.unset))
            self.record(sid, "update_profile", {"set": values, "unset": list(step.unset)})
            return step.next
        if isinstance(step, WebhookStep):
            key = self._key(sid)
            request: dict[str, Any] = {"url": step.url, "method": step.method,
                                       "headers": dict(step.headers)}
            if step.body is not None:
                request["body"] = step.body  # its strings are templates, rendered at send
            else:
                me = self.inst
                request["body"] = {"profile_id": me.profile_id, "journey": me.journey,
                                   "version": me.version, "entry": me.entry, "step": sid}
            self.commands.append(CallWebhook(sid, key, request, self._variables(sid)))
            self.record(sid, "webhook", {"url": step.url, "method": step.method}, key)
            return step.next
        if isinstance(step, EmitStep):
            props = fill(step.properties, self.inst, self.person)
            self.commands.append(Emit(sid, self._key(sid), step.event, props))
            self.record(sid, "emit_event", {"event": step.event, "properties": props})
            return step.next
        assert isinstance(step, ExitStep)
        self.record(sid, "exit", {"reason": "exit step"})
        self.end("completed", "exit step")
        return _STOP

    def _wait(self, step: WaitStep) -> str | object | None:
        sid = step.id
        reason: dict[str, Any]
        if step.duration_us is not None:
            wake = self.now + step.duration_us
            reason = {"duration_us": step.duration_us}
        elif step.at_time is not None:
            tz = self.person.timezone
            wake = next_local_time(self.now, *step.at_time, step.days, tz)
            reason = {"until": f"{step.at_time[0]:02d}:{step.at_time[1]:02d}", "timezone": tz}
        else:
            assert step.trait is not None
            value = lookup(self.person.traits, step.trait, tuple(step.trait.split(".")))
            instant = trait_instant(value)
            if instant is None:
                self.record(sid, "wait", {"trait": step.trait, "skipped": "trait missing or "
                                          "not a date", "value": _plain(value)})
                return step.next
            wake = instant + step.offset_us
            reason = {"trait": step.trait, "value": _plain(value), "offset_us": step.offset_us}
        if wake <= self.now:
            self.record(sid, "wait", {**reason, "skipped": "already past", "until_at": wake})
            return step.next
        self.inst.wake_at = wake
        self.commands.append(ScheduleWake(wake))
        self.record(sid, "wait", {**reason, "until_at": wake})
        return _STOP

    def _match_values(self, step: WaitForEventStep) -> dict[str, Any]:
        return {prop: resolve(ref, self.inst, self.person) for prop, ref in step.match}

    def awaited(self, step: WaitForEventStep, name: str, message: Mapping[str, Any]) -> bool:
        if name != step.event:
            return False
        props = message.get("properties")
        props = props if isinstance(props, Mapping) else {}
        for prop, expected in self._match_values(step).items():
            got = lookup(props, prop, tuple(prop.split(".")))
            if got is None or got != expected:
                return False
        return step.where is None or step.where.matches(props, self.now)


_STOP = object()


def _plain(value: Any) -> Any:
    return value


def _props(message: Mapping[str, Any]) -> Mapping[str, Any]:
    props = message.get("properties")
    return props if isinstance(props, Mapping) else {}


def advance(journey: Journey, instance: Instance, trigger: Trigger, now: int) -> Step:
    """The instance after ``trigger`` at ``now`` (µs), and what to do about it."""
    if isinstance(trigger, Halt):
        if instance.status != "active":
            return Step(instance, ())
        run = _Run(journey, instance, Person(instance.profile_id), now)
        run.record(instance.step, "halt", {"reason": trigger.reason, **trigger.details})
        run.end("exited", trigger.reason)
        return run.finish()
    run = _Run(journey, instance, trigger.person, now)
    if isinstance(trigger, Enter):
        goal = journey.goal
        goal_until = None
        if goal is not None and goal.within_us is not None:
            goal_until = now + goal.within_us
        run.inst.goal_until = goal_until
        run.inst.context = {**instance.context,
                            "event": dict(trigger.event) if trigger.event else None}
        run.record(None, "enter", {"cause": trigger.cause, "version": instance.version})
        run.go(journey.start)
        return run.finish()
    if isinstance(trigger, Timer):
        if (instance.status != "active" or trigger.state_version != instance.state_version
                or instance.wake_at is None or instance.wake_at > now):
            return Step(instance, ())  # stale: the instance moved on since
        step = journey.step(instance.step or "")
        if isinstance(step, WaitForEventStep):
            run.record(step.id, "timeout", {"event": step.event, "next": step.on_timeout})
            run.go(step.on_timeout)
        elif isinstance(step, WaitStep):
            run.record(step.id, "wake", {"next": step.next})
            run.go(step.next)
        else:
            run.record(instance.step, "wake", {"next": None, "note": "not a waiting step"})
            run.go(step.id if step is not None else None)
        return run.finish()
    if isinstance(trigger, SegmentChanged):
        if instance.status != "active":
            return Step(instance, ())
        for rule in journey.exit_when:
            wanted = rule.segment_entered if trigger.entered else rule.segment_exited
            if wanted == trigger.segment:
                run.record(instance.step, "exit_rule", {"rule": rule.index,
                                                        "what": rule.label()})
                run.end("exited", f"exit rule {rule.index}: {rule.label()}")
                return run.finish()
        return Step(instance, ())
    return _on_event(run, journey, instance, trigger, now)


def _on_event(run: _Run, journey: Journey, instance: Instance, trigger: Event,
              now: int) -> Step:
    goal = journey.goal
    props = _props(trigger.message)
    if (goal is not None and trigger.name == goal.event and instance.converted_at is None
            and (goal.where is None or goal.where.matches(props, now))):
        open_window = instance.goal_until is not None and trigger.ts <= instance.goal_until
        if instance.status == "active" or open_window:
            run.inst.converted_at = trigger.ts
            run.commands.append(Convert(trigger.ts, instance.step))
            run.record(instance.step, "goal", {"event": goal.event})
            if instance.status == "active":
                run.end("exited", "goal reached", converted=True)
            else:
                run.inst.goal_until = None
                run.moved = True
            return run.finish()
    if instance.status != "active":
        return Step(instance, ())
    subject: Subject | None = None
    for rule in journey.exit_when:
        hit = False
        seen: dict[str, Any] = {}
        if rule.event is not None:
            hit = rule.event == trigger.name and (rule.where is None
                                                   or rule.where.matches(props, now))
        elif rule.condition is not None:
            subject = subject or _subject(trigger.person, now, trigger.message)
            result = evaluate(rule.condition, subject)
            hit, seen = result.result, result.seen
        if hit:
            reason: dict[str, Any] = {"rule": rule.index, "what": rule.label()}
            if seen:
                reason["seen"] = seen
            run.record(instance.step, "exit_rule", reason)
            run.end("exited", f"exit rule {rule.index}: {rule.label()}")
            return run.finish()
    step = journey.step(instance.step or "")
    if isinstance(step, WaitForEventStep) and run.awaited(step, trigger.name, trigger.message):
        message_id = trigger.message.get("messageId")
        if trigger.held:
            run.record(step.id, "held", {"event": trigger.name, "message_id": message_id,
                                         "reason": "journey paused"})
            return run.finish()
        received = now if trigger.received_at is None else trigger.received_at
        if instance.wake_at is not None and received >= instance.wake_at:
            run.record(step.id, "timeout", {"event": step.event, "next": step.on_timeout,
                                            "late_event": message_id})
            run.go(step.on_timeout)
            return run.finish()
        run.record(step.id, "event", {"event": trigger.name, "next": step.on_event,
                                      "message_id": message_id})
        run.go(step.on_event)
        return run.finish()
    return Step(instance, ())
