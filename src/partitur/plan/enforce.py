"""Enforcing a tracking plan on one message: the pure core of the ingest check.

A plan version is compiled once into :class:`CompiledPlan` (one JSON Schema validator and the
set of planned property names per event). :func:`inspect` then costs, for a valid event, a dict
lookup, a set difference and one ``is_valid`` call in Rust; only an event with a problem pays
for collecting error messages and encoding a record for the rejected store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
import msgspec

from partitur.clock import to_us
from partitur.ingest.message import obj
from partitur.plan.model import VALIDATOR_OPTIONS, Planned, TrackingPlan
from partitur.plan.policy import DONE

MAX_RECORDED = 20  # violations of one rule per event: enough to act on, bounded when pathological
_ENCODER = msgspec.json.Encoder()
# Which field of the message each planned call describes.
FIELD = {"track": "properties", "page": "properties", "screen": "properties",
         "identify": "traits", "group": "traits"}


@dataclass(frozen=True, slots=True)
class Check:
    validator: Any
    declared: frozenset[str] | None  # None: every property name is planned
    patterns: tuple[re.Pattern[str], ...] = ()

    def unplanned(self, data: Mapping[str, Any]) -> list[str]:
        if self.declared is None:
            return []
        extra = data.keys() - self.declared
        if extra and self.patterns:
            extra = {k for k in extra if not any(p.search(k) for p in self.patterns)}
        return sorted(extra)


@dataclass(frozen=True)
class CompiledPlan:
    version: int
    events: dict[str, Check]
    calls: dict[str, Check]  # identify, page, screen, group
    policy: dict[str, str]  # the plan's own defaults


def compile_check(section: Planned) -> Check:
    schema = section.json_schema()
    patterns: list[re.Pattern[str]] = []
    for pattern in (schema.get("patternProperties") or {}):
        try:
            patterns.append(re.compile(pattern))
        except re.error:  # an ECMA-only construct: names it would match count as unplanned
            continue
    return Check(jsonschema_rs.validator_for(schema, **VALIDATOR_OPTIONS), section.declared(),
                 tuple(patterns))


def compile_plan(version: int, plan: TrackingPlan) -> CompiledPlan:
    events: dict[str, Check] = {}
    calls: dict[str, Check] = {}
    for call, name, section in plan.sections():
        if name is not None:
            events[name] = compile_check(section)
        else:
            calls[call] = compile_check(section)
    return CompiledPlan(version, events, calls, dict(plan.policy))


Record = tuple[tuple[Any, ...], list[tuple[Any, ...]]]  # (rejected row, violation rows)


def inspect(
    plan: CompiledPlan, policy: Mapping[str, str], source_id: str, msg: Any
) -> tuple[bool, Record | None, bool]:
    """``(keep, record, changed)`` for one normalised message (see ``ingest.rows.to_rows``).

    ``policy`` is the source's effective policy. A flagged event is kept with its violations in
    ``_partitur.violations``; an omitted property is removed from the stored event; a blocked
    event is not kept. Every event with a recorded violation yields a record for the rejected
    store, holding the event as received (before any property was omitted).
    """
    kind = msg.type
    if kind == "track":
        event: str | None = msg.event
        check = plan.events.get(event or "")
        field = "properties"
    else:
        event = None
        check = plan.calls.get(kind)
        if check is None:
            return _KEEP
        field = FIELD[kind]
    if check is None:
        action = policy["unplanned_events"]
        if action == "allow":
            return _KEEP
        found = [_violation("unplanned_event", "event",
                            f"event '{event}' is not in the tracking plan", action)]
        return _outcome(plan, source_id, msg, field, found, [])
    data = obj(msg, field) or {}
    declared = check.declared
    if (declared is None or declared.issuperset(data)) and check.validator.is_valid(data):
        return _KEEP  # the common case: one set check and one validation in Rust
    found = []
    omit: list[str] = []
    extra = check.unplanned(data)
    action = policy["unplanned_properties"]
    if extra and action != "allow":
        what = f"event '{event}'" if event is not None else kind
        found += [_violation("unplanned_property", f"{field}.{name}",
                             f"'{name}' is not a planned property of {what}", action)
                  for name in extra[:MAX_RECORDED]]
        if len(extra) > MAX_RECORDED:
            found.append(_violation("unplanned_property", field, (
                f"{len(extra) - MAX_RECORDED} more properties are not planned for {what}"),
                action))
        if action == "omit":
            omit = extra
            data = {k: v for k, v in data.items() if k not in extra}
    action = policy["violations"]
    if action != "allow" and not check.validator.is_valid(data):
        for n, error in enumerate(check.validator.iter_errors(data)):
            if n == MAX_RECORDED:
                break
            found.append(_violation("schema", _path(field, error), error.message, action))
    if not found:
        return _KEEP
    return _outcome(plan, source_id, msg, field, found, omit)


_KEEP: tuple[bool, Record | None, bool] = (True, None, False)


def _outcome(
    plan: CompiledPlan, source_id: str, msg: Any, field: str, found: list[dict[str, Any]],
    omit: list[str],
) -> tuple[bool, Record | None, bool]:
    """Stamp the violations, build the record, omit what is to be omitted."""
    kind = msg.type
    event = msg.event if kind == "track" else None
    blocked = any(v["action"] == "block" for v in found)
    for v in found:
        v["action"] = "blocked" if blocked else DONE[v["action"]]
    meta = dict(msg.partitur or {})
    meta["violations"] = found
    msg.partitur = meta
    body = _ENCODER.encode(msg).decode()  # as received, with what was found
    if omit and not blocked:
        setattr(msg, field, {k: v for k, v in (obj(msg, field) or {}).items() if k not in omit})
    outcome = "blocked" if blocked else (
        "flagged" if any(v["action"] == "flagged" for v in found) else "omitted")
    received = to_us(msg.received_at) if msg.received_at is not None else 0
    message_id = str(msg.message_id)
    row = (received, source_id, kind, event, message_id, plan.version, outcome,
           json.dumps(found), body)
    rows = [(message_id, n, received, source_id, kind, event or "", v["rule"], v["path"],
             v["action"]) for n, v in enumerate(found)]
    return not blocked, (row, rows), not blocked


def _violation(rule: str, path: str, message: str, action: str) -> dict[str, Any]:
    return {"rule": rule, "path": path, "message": message, "action": action}


def _path(field: str, error: Any) -> str:
    parts = [field, *map(str, error.instance_path)]
    if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Required):
        parts.append(str(error.kind.property))
    return ".".join(parts)
