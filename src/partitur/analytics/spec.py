"""Pieces every analytics request shares: times, durations, event matches with property
filters, property paths — parsed from JSON into frozen values, errors naming the field."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from partitur.clock import to_us
from partitur.errors import InvalidInput

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_US = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000,
            "w": 7 * 86_400_000_000}
CALL_TYPES = ("track", "page", "screen", "identify", "group", "alias")
ACTION_TYPES = ("track", "page", "screen")  # what a person did (not who they are)
OPERATORS = ("eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "exists")


def bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", details=[{"field": field, "message": message}])


def duration_us(value: Any, field: str) -> int:
    """``"14d"``, ``"36h"``, ``"90m"``, ``"30s"``, ``"2w"`` or a number of seconds."""
    if isinstance(value, bool):
        raise bad(field, "expected a duration such as '14d', '12h' or a number of seconds")
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return int(value * 1_000_000)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            us = int(float(match.group(1)) * _UNIT_US[match.group(2)])
            if us > 0:
                return us
    raise bad(field, "expected a duration such as '14d', '12h', '30m' or a number of seconds")


def time_us(value: Any, field: str) -> int:
    """An ISO 8601 time (``2026-01-01T00:00:00Z``; a date alone means its midnight UTC)."""
    if not isinstance(value, str) or not value.strip():
        raise bad(field, "expected an ISO 8601 time such as '2026-01-01T00:00:00Z'")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise bad(field, "expected an ISO 8601 time such as '2026-01-01T00:00:00Z'") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return to_us(when)


def time_range(doc: dict[str, Any], now_us: int, default_days: int = 30) -> tuple[int, int]:
    """``from`` (inclusive) and ``to`` (exclusive); by default the last ``default_days``."""
    hi = time_us(doc["to"], "to") if doc.get("to") is not None else now_us
    lo = (time_us(doc["from"], "from") if doc.get("from") is not None
          else hi - default_days * 86_400_000_000)
    if lo >= hi:
        raise bad("from", "must be before 'to'")
    return lo, hi


@dataclass(frozen=True)
class Condition:
    path: str
    op: str
    value: Any


@dataclass(frozen=True)
class Match:
    """Which events count: a name (track event, page/screen name), a call type, filters."""

    event: str | None
    type: str | None
    where: tuple[Condition, ...]

    @property
    def label(self) -> str:
        base = self.event or (f"any {self.type}" if self.type else "any event")
        if self.where:
            base += " where " + ", ".join(f"{c.path} {c.op} {c.value!r}" for c in self.where)
        return base


def parse_match(doc: Any, field: str) -> Match:
    if isinstance(doc, str):
        doc = {"event": doc}
    if not isinstance(doc, dict):
        raise bad(field, "expected an object such as {\"event\": \"Signed Up\"}")
    unknown = set(doc) - {"event", "type", "where", "name"}
    if unknown:
        raise bad(f"{field}.{sorted(unknown)[0]}", "unknown key")
    event = doc.get("event")
    if event is not None and (not isinstance(event, str) or not event):
        raise bad(f"{field}.event", "expected an event name")
    kind = doc.get("type")
    if kind is not None and kind not in CALL_TYPES:
        raise bad(f"{field}.type", f"expected one of {', '.join(CALL_TYPES)}")
    if event is None and kind is None:
        raise bad(field, "needs 'event' (a name) or 'type' (track, page, screen, ...)")
    return Match(event=event, type=kind, where=parse_where(doc.get("where"), f"{field}.where"))


def parse_where(doc: Any, field: str) -> tuple[Condition, ...]:
    if doc is None:
        return ()
    if not isinstance(doc, dict):
        raise bad(field, "expected an object of property filters, e.g. {\"url\": \"/pricing\"}")
    out = []
    for path, spec in doc.items():
        here = f"{field}.{path}"
        check_path(path, here)
        if isinstance(spec, dict):
            if len(spec) != 1:
                raise bad(here, f"expected one operator of {', '.join(OPERATORS)}")
            ((op, value),) = spec.items()
            if op not in OPERATORS:
                raise bad(here, f"unknown operator '{op}'; expected one of {', '.join(OPERATORS)}")
        elif isinstance(spec, list):
            op, value = "in", spec
        else:
            op, value = "eq", spec
        _check_value(op, value, here)
        out.append(Condition(path, op, tuple(value) if isinstance(value, list) else value))
    return tuple(out)


def _check_value(op: str, value: Any, field: str) -> None:
    scalar = (str, int, float, bool)
    if op in ("in", "not_in"):
        if not isinstance(value, list | tuple) or not value or not all(
                isinstance(v, scalar) for v in value):
            raise bad(field, f"'{op}' needs a non-empty list of values")
    elif op in ("gt", "gte", "lt", "lte"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad(field, f"'{op}' needs a number")
    elif op == "exists":
        if not isinstance(value, bool):
            raise bad(field, "'exists' needs true or false")
    elif op == "contains":
        if not isinstance(value, str):
            raise bad(field, "'contains' needs a string")
    elif value is not None and not isinstance(value, scalar):
        raise bad(field, "expected a string, number, boolean or null")


def check_path(path: Any, field: str) -> str:
    if not isinstance(path, str) or not path.strip() or len(path) > 200:
        raise bad(field, "expected a property path such as 'url' or 'context.campaign.source'")
    if any(not part for part in path.split(".")):
        raise bad(field, f"'{path}' has an empty part")
    return path
