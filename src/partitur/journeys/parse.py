"""A journey document (YAML or JSON, already decoded) to a :class:`~.model.Journey`.

Every problem raises :class:`InvalidJourney`, naming the step id (when there is one), the
document path and the reason. The graph (unknown or unreachable steps, cycles without a
wait) is checked afterwards by :mod:`.validate`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from croniter import croniter

from partitur.conditions import Condition, Where, parse_condition, parse_duration
from partitur.conditions.model import EventCondition
from partitur.errors import InvalidInput
from partitur.journeys.model import (
    STEP_TYPES,
    AnyStep,
    Branch,
    BranchStep,
    EmitStep,
    Entry,
    ExitRule,
    ExitStep,
    Goal,
    Journey,
    SendStep,
    SplitStep,
    Trigger,
    UpdateProfileStep,
    Variant,
    WaitForEventStep,
    WaitStep,
    WebhookStep,
)

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
_KEY = re.compile(KEY_PATTERN)
_TIME = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")
_REF = re.compile(r"^\s*(?:\{\{\s*)?((?:trigger|event|profile|journey)(?:\.[A-Za-z0-9_$-]+)+)"
                  r"(?:\s*\}\})?\s*$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CHANNELS = ("email", "sms", "webhook", "web")
CATEGORIES = ("marketing", "transactional")
METHODS = ("POST", "PUT", "PATCH")
MAX_STEPS = 500
MAX_WAIT_US = 2 * 366 * 86_400_000_000  # two years
TRIGGER_KINDS = ("event", "page", "screen", "identify", "segment_entered", "segment_exited",
                 "schedule")
TOP_FIELDS = {"key", "name", "description", "trigger", "entry", "goal", "exit_when", "steps"}
COMMON = {"id", "type", "name", "description"}


class InvalidJourney(InvalidInput):
    """A journey document that cannot be accepted; ``step_id`` names the step at fault."""

    code = "invalid_journey"

    def __init__(self, message: str, *, step_id: str | None = None, path: str = "") -> None:
        where = f"step '{step_id}': " if step_id else ""
        detail: dict[str, Any] = {"path": path, "message": message}
        if step_id:
            detail["step"] = step_id
        super().__init__(f"{where}{path + ': ' if path else ''}{message}", details=[detail])
        self.step_id = step_id
        self.path = path
        self.reason = message


class _Ctx:
    def __init__(self, step_id: str | None, path: str) -> None:
        self.step_id = step_id
        self.path = path

    def fail(self, field: str, message: str) -> InvalidJourney:
        path = f"{self.path}.{field}" if field else self.path
        return InvalidJourney(message, step_id=self.step_id, path=path)

    def only(self, doc: Mapping[str, Any], allowed: set[str]) -> None:
        extra = sorted(str(k) for k in doc if k not in allowed)
        if extra:
            raise self.fail(extra[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def text(self, doc: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
        value = doc.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, "a non-empty string is required")
        return value

    def duration(self, doc: Mapping[str, Any], name: str, *, signed: bool = False) -> int:
        raw = doc.get(name)
        negative = signed and isinstance(raw, str) and raw.startswith("-")
        text = raw[1:] if negative and isinstance(raw, str) else raw
        if isinstance(text, str) and text.startswith("+") and signed:
            text = text[1:]
        value = parse_duration(text)
        if value is None:
            raise self.fail(name, f"bad duration {raw!r}: a whole number and a unit, such as "
                                  "30s, 10m, 24h, 14d or 2w")
        if value > MAX_WAIT_US:
            raise self.fail(name, f"duration {raw!r} is longer than two years")
        return -value if negative else value

    def condition(self, doc: Any, field: str) -> Condition:
        try:
            return parse_condition(doc, path=f"{self.path}.{field}")
        except InvalidInput as exc:
            raise InvalidJourney(exc.message, step_id=self.step_id) from None

    def where(self, doc: Mapping[str, Any], field: str = "where") -> Where | None:
        if doc.get(field) is None:
            return None
        try:
            cond = parse_condition({"event": "_", "where": doc[field]}, path=self.path)
        except InvalidInput as exc:
            raise InvalidJourney(exc.message, step_id=self.step_id) from None
        assert isinstance(cond, EventCondition)
        return cond.where or None

    def next(self, doc: Mapping[str, Any], name: str = "next", *, required: bool = False
             ) -> str | None:
        value = doc.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not _KEY.match(value):
            raise self.fail(name, "the id of a step is required")
        return value


def _mapping(value: Any, ctx: _Ctx, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ctx.fail(field, "an object is required")
    return value


def parse_trigger(doc: Any) -> Trigger:
    ctx = _Ctx(None, "trigger")
    doc = _mapping(doc, _Ctx(None, ""), "trigger")
    kinds = [k for k in TRIGGER_KINDS if k in doc]
    if len(kinds) != 1:
        raise ctx.fail("", f"a trigger has exactly one of {', '.join(TRIGGER_KINDS)}")
    kind = kinds[0]
    if kind in ("event", "page", "screen"):
        ctx.only(doc, {kind, "where"})
        return Trigger(kind, event=ctx.text(doc, kind),  # type: ignore[arg-type]
                       where=ctx.where(doc))
    if kind == "identify":
        ctx.only(doc, {"identify", "where"})
        if doc["identify"] is not True:
            raise ctx.fail("identify", "true is required: {identify: true, where: {...}}")
        return Trigger("identify", where=ctx.where(doc))
    if kind == "schedule":
        ctx.only(doc, {"schedule", "segment", "timezone"})
        cron = ctx.text(doc, "schedule")
        assert cron is not None
        if not croniter.is_valid(cron):
            raise ctx.fail("schedule", f"{cron!r} is not a cron expression like '0 9 * * MON'")
        segment = ctx.text(doc, "segment")
        zone = ctx.text(doc, "timezone", required=False) or "UTC"
        _check_zone(zone, ctx)
        return Trigger("schedule", segment=segment, schedule=cron, timezone=zone)
    ctx.only(doc, {kind})
    return Trigger(kind, segment=ctx.text(doc, kind))  # type: ignore[arg-type]


def _check_zone(name: str, ctx: _Ctx) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ctx.fail("timezone", f"unknown time zone {name!r}") from None


def parse_entry(doc: Any) -> Entry:
    if doc is None:
        return Entry()
    ctx = _Ctx(None, "entry")
    doc = _mapping(doc, _Ctx(None, ""), "entry")
    ctx.only(doc, {"reentry", "after", "audience"})
    reentry = doc.get("reentry", "never")
    after_us = None
    if isinstance(reentry, Mapping):
        if set(reentry) != {"after"}:
            raise ctx.fail("reentry", "never, always, or {after: <duration>}")
        after_us = _Ctx(None, "entry.reentry").duration(reentry, "after")
        reentry = "after"
    elif reentry == "after":
        after_us = ctx.duration(doc, "after")
    elif reentry not in ("never", "always"):
        raise ctx.fail("reentry", "never, always, or {after: <duration>}")
    elif "after" in doc:
        raise ctx.fail("after", "only with reentry: after")
    audience = ctx.condition(doc["audience"], "audience") if "audience" in doc else None
    return Entry(reentry, after_us, audience)


def parse_goal(doc: Any) -> Goal | None:
    if doc is None:
        return None
    ctx = _Ctx(None, "goal")
    doc = _mapping(doc, _Ctx(None, ""), "goal")
    ctx.only(doc, {"event", "within", "where"})
    within = ctx.duration(doc, "within") if doc.get("within") is not None else None
    event = ctx.text(doc, "event")
    assert event is not None
    return Goal(event, within, ctx.where(doc))


def parse_exits(doc: Any) -> tuple[ExitRule, ...]:
    if doc is None:
        return ()
    if not isinstance(doc, list):
        raise InvalidJourney("a list of exit rules is required", path="exit_when")
    rules = []
    for i, item in enumerate(doc):
        ctx = _Ctx(None, f"exit_when[{i}]")
        item = _mapping(item, ctx, "")
        kinds = [k for k in ("event", "segment_entered", "segment_exited", "condition")
                 if k in item]
        if len(kinds) != 1:
            raise ctx.fail("", "an exit rule has exactly one of event, segment_entered, "
                               "segment_exited, condition")
        kind = kinds[0]
        if kind == "event":
            ctx.only(item, {"event", "where"})
            rules.append(ExitRule(i, event=ctx.text(item, "event"), where=ctx.where(item)))
        elif kind == "condition":
            ctx.only(item, {"condition"})
            rules.append(ExitRule(i, condition=ctx.condition(item["condition"], "condition")))
        else:
            ctx.only(item, {kind})
            seg = ctx.text(item, kind)
            if kind == "segment_entered":
                rules.append(ExitRule(i, segment_entered=seg))
            else:
                rules.append(ExitRule(i, segment_exited=seg))
    return tuple(rules)


def parse_journey(doc: Any, *, key: str | None = None) -> Journey:
    """Parse a journey document; ``key`` (from the URL) must match the document's if both
    are given."""
    if not isinstance(doc, Mapping):
        raise InvalidJourney("a journey document is an object", path="")
    top = _Ctx(None, "")
    extra = sorted(str(k) for k in doc if k not in TOP_FIELDS)
    if extra:
        raise InvalidJourney(f"unknown field (allowed: {', '.join(sorted(TOP_FIELDS))})",
                             path=extra[0])
    doc_key = doc.get("key", key)
    if key is not None and doc.get("key") not in (None, key):
        raise InvalidJourney(f"the document's key {doc.get('key')!r} is not {key!r} of the "
                             "URL", path="key")
    if not isinstance(doc_key, str) or not _KEY.match(doc_key):
        raise InvalidJourney("1-100 letters, digits, '-', '_' or '.', starting with a letter "
                             "or digit", path="key")
    name = doc.get("name", doc_key)
    if not isinstance(name, str) or not name.strip():
        raise top.fail("name", "a non-empty string is required")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise top.fail("description", "a string is required")
    if "trigger" not in doc:
        raise InvalidJourney("a journey needs a trigger", path="trigger")
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise InvalidJourney("a non-empty list of steps is required", path="steps")
    if len(raw_steps) > MAX_STEPS:
        raise InvalidJourney(f"at most {MAX_STEPS} steps", path="steps")
    steps = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_steps):
        step = parse_step(raw, f"steps[{i}]")
        if step.id in seen:
            raise InvalidJourney("two steps have this id", step_id=step.id,
                                 path=f"steps[{i}].id")
        seen.add(step.id)
        steps.append(step)
    normalized = {**doc, "key": doc_key}
    return Journey(
        key=doc_key,
        name=name,
        description=description,
        trigger=parse_trigger(doc["trigger"]),
        entry=parse_entry(doc.get("entry")),
        goal=parse_goal(doc.get("goal")),
        exit_when=parse_exits(doc.get("exit_when")),
        steps=tuple(steps),
        document=dict(normalized),
    )


def parse_step(raw: Any, path: str) -> AnyStep:
    if not isinstance(raw, Mapping):
        raise InvalidJourney("a step is an object with id and type", path=path)
    step_id = raw.get("id")
    if not isinstance(step_id, str) or not _KEY.match(step_id):
        raise InvalidJourney("a step id of 1-100 letters, digits, '-', '_' or '.' is required",
                             path=f"{path}.id")
    ctx = _Ctx(step_id, path)
    kind = raw.get("type")
    if kind not in STEP_TYPES:
        raise ctx.fail("type", f"unknown step type {kind!r} (expected {', '.join(STEP_TYPES)})")
    parser = _PARSERS[kind]
    ctx.only(raw, COMMON | _FIELDS[kind])
    return parser(raw, ctx)


def _send(raw: Mapping[str, Any], ctx: _Ctx) -> AnyStep:
    channel = raw.get("channel")
    if channel not in CHANNELS:
        raise ctx.fail("channel", f"one of {', '.join(CHANNELS)} is required")
    category = raw.get("category", "marketing")
    if category not in CATEGORIES:
        raise ctx.fail("category", "marketing or transactional")
    template = raw.get("template")
    webhook = raw.get("webhook")
    if template is not None and not isinstance(template, str | Mapping):
        raise ctx.fail("template", "a template key or an inline template object")
    if webhook is not None:
        if channel != "webhook":
            raise ctx.fail("webhook", "only for channel webhook")
        webhook = _webhook_request(_mapping(webhook, ctx, "webhook"), ctx, "webhook.")
    if template is None and webhook is None:
        raise ctx.fail("template", "a template key or an inline template is required")
    return SendStep(step_id(ctx), channel, dict(template) if isinstance(template, Mapping)
                    else template, category, webhook, ctx.next(raw))


def _webhook_request(doc: Mapping[str, Any], ctx: _Ctx, prefix: str = "") -> dict[str, Any]:
    url = doc.get("url")
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
        raise ctx.fail(f"{prefix}url", "an http:// or https:// URL is required")
    method = str(doc.get("method", "POST")).upper()
    if method not in METHODS:
        raise ctx.fail(f"{prefix}method", f"one of {', '.join(METHODS)}")
    headers = doc.get("headers", {})
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ctx.fail(f"{prefix}headers", "an object of header names to strings")
    out: dict[str, Any] = {"url": url, "method": method, "headers": dict(headers)}
    if doc.get("body") is not None:
        out["body"] = doc["body"]
    return out


def step_id(ctx: _Ctx) -> str:
    assert ctx.step_id is not None
    return ctx.step_id


def _wait(raw: Mapping[str, Any], ctx: _Ctx) -> AnyStep:
    has_duration = raw.get("duration") is not None
    until = raw.get("until")
    if has_duration == (until is not None):
        raise ctx.fail("duration", "a wait has exactly one of duration and until")
    nxt = ctx.next(raw)
    if has_duration:
        value = ctx.duration(raw, "duration")
        if value < 1_000_000:
            raise ctx.fail("duration", "at least 1s")
        return WaitStep(step_id(ctx), duration_us=value, next=nxt)
    until = _mapping(until, ctx, "until")
    sub = _Ctx(ctx.step_id, f"{ctx.path}.until")
    if "time" in until:
        sub.only(until, {"time", "days"})
        match = _TIME.match(str(until["time"]))
        if not isinstance(until["time"], str) or not match:
            raise sub.fail("time", "a local time of day HH:MM, such as 09:00")
        days = until.get("days", [])
        if not isinstance(days, list) or any(str(d).lower()[:3] not in DAYS for d in days):
            raise sub.fail("days", f"a list of weekdays ({', '.join(DAYS)})")
        return WaitStep(step_id(ctx), at_time=(int(match.group(1)), int(match.group(2))),
                        days=frozenset(DAYS.index(str(d).lower()[:3]) for d in days), next=nxt)
    if "trait" in until:
        sub.only(until, {"trait", "offset"})
        trait = sub.text(until, "trait")
        offset = sub.duration(until, "offset", signed=True) if "offset" in until else 0
        return WaitStep(step_id(ctx), trait=trait, offset_us=offset, next=nxt)
    raise sub.fail("", "until needs time (HH:MM) or trait (a date trait)")


def _wait_for_event(raw: Mapping[str, Any], ctx: _Ctx) -> AnyStep:
    event = ctx.text(raw, "event")
    assert event is not None
    match_doc = raw.get("match", {})
    if not isinstance(match_doc, Mapping):
        raise ctx.fail("match", "an object: property of the awaited event -> reference such "
                                "as trigger.properties.cart_id")
    match = []
    for prop, ref in match_doc.items():
        found = _REF.match(ref) if isinstance(ref, str) else None
        if not found:
            raise ctx.fail(f"match.{prop}", "a reference such as trigger.properties.cart_id "
                                            "or profile.traits.email")
        match.append((str(prop), found.group(1)))
    if raw.get("timeout") is None:
        raise ctx.fail("timeout", "a wait for an event needs a timeout such as 24h")
    timeout = ctx.duration(raw, "timeout")
    on_event = ctx.next(raw, "on_event", required=True)
    on_timeout = ctx.next(raw, "on_timeout", required=True)
    assert on_event is not None and on_timeout is not None
    return WaitForEventStep(step_id(ctx), event, tuple(match), ctx.where(raw), timeout,
                            on_event, on_timeout)


def _branch(raw: Mapping[str, Any], ctx: _Ctx) -> AnyStep:
    items = raw.get("branches")
    if not isinstance(items, list) or not items:
        raise ctx.fail("branches", "a non-empty list of {when, next}")
    branches = []
    for i, item in enumerate(items):
        sub = _Ctx(ctx.step_id, f"{ctx.path}.branches[{i}]")
        item = _mapping(item, sub, "")
        sub.only(item, {"when", "next", "name"})
        if "when" not in item:
            raise sub.fail("when", "a condition is required")
        nxt = sub.next(item, required=True)
        assert nxt is not None
        branches.append(Branch(sub.condition(item["when"], "when"), nxt))
    default = ctx.next(raw, "default", required=True)
    assert default is not None
    return BranchStep(step_id(ctx), tuple(branches), default)


def _split(raw: Mapping[str, Any], ctx: _Ctx) -> AnyStep:
    items = raw.get("variants")
    if not isinstance(items, list) or len(items) < 1:
        raise ctx.fail("variants", "a non-empty list of {name, weight, next}")
    variants = []
    names: set[str] = set()
    for i, item in enumerate(items):
        sub = _Ctx(ctx.step_id, f"{ctx.path}.variants[{i}]")
        item = _mapping(item, sub, "")
        sub.only(item, {"name", "weight", "next", "control"})
        name = sub.text(item, "name")
        assert name is not None
        if name in names:
            raise sub.fail("name", f"two variants are named {name!r}")
        names.add(name)
        weight = item.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise sub.fail("weight", f"weights must be positive numbers, not {weight!r}")
        control = item.get("control", name.lower() in ("control", "holdout"))
        if not isinstance(control, bool):
            raise sub.fail("control", "true or false")
        nxt = sub.next(item, required=True)
        assert nxt is not None
        variants.append(Variant(name, float(weight), nxt, control))
    return SplitStep(step_id(ctx), tuple(variants))


def _update_profile(raw: Mapping[str, Any], ctx: _Ctx) -> AnyStep:
    values = raw.get("set", {})
    unset = raw.get("unset", [])
    if not isinstance(values, Mapping):
        raise ctx.fail("set", "an object of trait names to values")
    if not isinstance(unset, list) or not all(isinstance(u, str) and u for u in unset):
        raise ctx.fail("unset", "a list of trait names")
    if not values and not unset:
        raise ctx.fail("set", "set or unset at least one trait")
    return UpdateProfileStep(step_id(ctx), dict(values), tuple(unset), ctx.next(raw))


def _webhook(raw: Mapping[str, Any], ctx: _Ctx) -> AnyStep:
    req = _webhook_request(raw, ctx)
    return WebhookStep(step_id(ctx), req["url"], req["method"], req["headers"],
                       req.get("body"), ctx.next(raw))


def _emit(raw: Mapping[str, Any], ctx: _Ctx) -> AnyStep:
    event = ctx.text(raw, "event")
    assert event is not None
    props = raw.get("properties", {})
    if not isinstance(props, Mapping):
        raise ctx.fail("properties", "an object")
    return EmitStep(step_id(ctx), event, dict(props), ctx.next(raw))


def _exit(raw: Mapping[str, Any], ctx: _Ctx) -> AnyStep:
    return ExitStep(step_id(ctx))


_PARSERS = {
    "send": _send, "wait": _wait, "wait_for_event": _wait_for_event, "branch": _branch,
    "split": _split, "update_profile": _update_profile, "webhook": _webhook,
    "emit_event": _emit, "exit": _exit,
}
_FIELDS: dict[str, set[str]] = {
    "send": {"channel", "template", "category", "webhook", "next"},
    "wait": {"duration", "until", "next"},
    "wait_for_event": {"event", "match", "where", "timeout", "on_event", "on_timeout"},
    "branch": {"branches", "default"},
    "split": {"variants"},
    "update_profile": {"set", "unset", "next"},
    "webhook": {"url", "method", "headers", "body", "next"},
    "emit_event": {"event", "properties", "next"},
    "exit": set(),
}
