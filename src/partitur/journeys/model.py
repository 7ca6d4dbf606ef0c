"""What a journey is, once parsed: frozen dataclasses, steps a union discriminated by type.

A journey is a graph of typed steps that refer to each other by id. Durations are integer
microseconds; conditions are the condition language's trees (:mod:`partitur.conditions`).
Documents become these objects in :mod:`.parse`; :mod:`.validate` checks the graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from partitur.conditions import Condition, Where

Reentry = Literal["never", "always", "after"]
TriggerKind = Literal["event", "page", "screen", "identify", "segment_entered",
                      "segment_exited", "schedule"]
WAITING_TYPES = frozenset({"wait", "wait_for_event"})
# trigger kind -> the Segment call it enters on
CALL_TRIGGERS = {"event": "track", "page": "page", "screen": "screen", "identify": "identify"}
ANY = "*"  # a page or screen trigger on every name
JOURNEY_SOURCE = "partitur-journeys"  # the library of the events journeys write


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: TriggerKind
    event: str | None = None  # the track event's, page's or screen's name ("*": any)
    where: Where | None = None  # filter on the call's properties (identify: its traits)
    segment: str | None = None  # segment_entered / segment_exited / schedule's audience
    schedule: str | None = None  # cron expression, in ``timezone``
    timezone: str = "UTC"

    @property
    def call(self) -> tuple[str, str] | None:
        """``(call type, name)`` of the calls that enter people, None for other kinds."""
        call = CALL_TRIGGERS.get(self.kind)
        if call is None:
            return None
        return (call, ANY if call == "identify" else self.event or ANY)


def call_keys(message: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The trigger keys (:attr:`Trigger.call`) a stored Segment message matches. Identify
    calls that journeys write themselves (``update_profile``) match none, so a journey cannot
    trigger itself in a loop."""
    kind = message.get("type")
    if kind == "track":
        name = message.get("event")
        return (("track", name),) if isinstance(name, str) else ()
    if kind in ("page", "screen"):
        name = message.get("name")
        if isinstance(name, str) and name != ANY:
            return ((kind, name), (kind, ANY))
        return ((kind, ANY),)
    if kind == "identify":
        context = message.get("context")
        library = context.get("library") if isinstance(context, Mapping) else None
        if isinstance(library, Mapping) and library.get("name") == JOURNEY_SOURCE:
            return ()
        return (("identify", ANY),)
    return ()


def call_fields(message: Mapping[str, Any]) -> Mapping[str, Any]:
    """What a trigger's ``where`` filters: the traits of an identify, else the properties."""
    value = message.get("traits" if message.get("type") == "identify" else "properties")
    return value if isinstance(value, Mapping) else {}


def call_cause(key: tuple[str, str]) -> str:
    """How a path names an entry by a call (its most specific key, the first of
    :func:`call_keys`): ``event Signed Up``, ``page Pricing``, ``screen``, ``identify``."""
    call, name = key
    if name == ANY:
        return call
    return f"{'event' if call == 'track' else call} {name}"


@dataclass(frozen=True, slots=True)
class Entry:
    reentry: Reentry = "never"
    after_us: int | None = None  # reentry "after": how long since the last entry
    audience: Condition | None = None  # who may enter, checked at entry


@dataclass(frozen=True, slots=True)
class Goal:
    event: str
    within_us: int | None = None  # from entry; None: while in the journey
    where: Where | None = None


@dataclass(frozen=True, slots=True)
class ExitRule:
    """Leave the journey when one of these happens (checked on every event)."""

    index: int
    event: str | None = None
    where: Where | None = None
    segment_entered: str | None = None
    segment_exited: str | None = None
    condition: Condition | None = None  # checked on each of the person's events

    def label(self) -> str:
        if self.event is not None:
            return f"event {self.event}" + (f" where {self.where.key}" if self.where else "")
        if self.segment_entered is not None:
            return f"entered segment {self.segment_entered}"
        if self.segment_exited is not None:
            return f"left segment {self.segment_exited}"
        return "condition"


@dataclass(frozen=True, slots=True)
class SendStep:
    id: str
    channel: str  # email | sms | webhook | web
    template: str | dict[str, Any] | None
    category: str = "marketing"
    webhook: dict[str, Any] | None = None  # channel webhook: {url, method, headers, body}
    next: str | None = None
    type: Literal["send"] = "send"


@dataclass(frozen=True, slots=True)
class WaitStep:
    """Wait a duration, until a time of day in the person's zone, or until a trait's date."""

    id: str
    duration_us: int | None = None
    at_time: tuple[int, int] | None = None  # (hour, minute) local time
    days: frozenset[int] = frozenset()  # weekdays allowed with at_time (0 = Monday)
    trait: str | None = None  # a date/date-time trait
    offset_us: int = 0  # added to the trait's date (negative: before it)
    next: str | None = None
    type: Literal["wait"] = "wait"


@dataclass(frozen=True, slots=True)
class WaitForEventStep:
    id: str
    event: str
    match: tuple[tuple[str, str], ...]  # (property path in the awaited event, reference)
    where: Where | None
    timeout_us: int
    on_event: str
    on_timeout: str
    type: Literal["wait_for_event"] = "wait_for_event"


@dataclass(frozen=True, slots=True)
class Branch:
    when: Condition
    next: str


@dataclass(frozen=True, slots=True)
class BranchStep:
    id: str
    branches: tuple[Branch, ...]
    default: str
    type: Literal["branch"] = "branch"


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    weight: float
    next: str
    control: bool = False  # a control/holdout arm: counted, nothing sent on its behalf


@dataclass(frozen=True, slots=True)
class SplitStep:
    id: str
    variants: tuple[Variant, ...]
    type: Literal["split"] = "split"


@dataclass(frozen=True, slots=True)
class UpdateProfileStep:
    id: str
    set: dict[str, Any] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    next: str | None = None
    type: Literal["update_profile"] = "update_profile"


@dataclass(frozen=True, slots=True)
class WebhookStep:
    """Call a company system (CRM, billing, support): a signed POST through the outbox."""

    id: str
    url: str
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # JSON; strings may be templates; None: the standard payload
    next: str | None = None
    type: Literal["webhook"] = "webhook"


@dataclass(frozen=True, slots=True)
class EmitStep:
    id: str
    event: str
    properties: dict[str, Any] = field(default_factory=dict)
    next: str | None = None
    type: Literal["emit_event"] = "emit_event"


@dataclass(frozen=True, slots=True)
class ExitStep:
    id: str
    type: Literal["exit"] = "exit"


AnyStep = (
    SendStep
    | WaitStep
    | WaitForEventStep
    | BranchStep
    | SplitStep
    | UpdateProfileStep
    | WebhookStep
    | EmitStep
    | ExitStep
)
STEP_TYPES = (
    "send", "wait", "wait_for_event", "branch", "split", "update_profile", "webhook",
    "emit_event", "exit",
)


def successors(step: AnyStep) -> list[tuple[str, str]]:
    """``(field, next step id)`` for every way out of ``step``."""
    if isinstance(step, ExitStep):
        return []
    if isinstance(step, WaitForEventStep):
        return [("on_event", step.on_event), ("on_timeout", step.on_timeout)]
    if isinstance(step, BranchStep):
        out = [(f"branches[{i}].next", b.next) for i, b in enumerate(step.branches)]
        return [*out, ("default", step.default)]
    if isinstance(step, SplitStep):
        return [(f"variants[{i}].next", v.next) for i, v in enumerate(step.variants)]
    return [] if step.next is None else [("next", step.next)]


@dataclass(frozen=True)
class Journey:
    key: str
    name: str
    description: str
    trigger: Trigger
    entry: Entry
    goal: Goal | None
    exit_when: tuple[ExitRule, ...]
    steps: tuple[AnyStep, ...]
    document: dict[str, Any] = field(compare=False, repr=False)
    by_id: dict[str, AnyStep] = field(compare=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not self.by_id:
            object.__setattr__(self, "by_id", {s.id: s for s in self.steps})

    @property
    def start(self) -> str:
        return self.steps[0].id

    def step(self, step_id: str) -> AnyStep | None:
        return self.by_id.get(step_id)
