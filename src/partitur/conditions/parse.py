"""A condition document to a :class:`~partitur.conditions.model.Condition`, every problem
named by its JSON path (``condition.all[1].where.price``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from partitur.conditions.model import (
    NO_FILTER,
    AllOf,
    AnyOf,
    Condition,
    ConsentCondition,
    ConsentState,
    EventCondition,
    EventPropertyCondition,
    NotOf,
    PropertyTest,
    SegmentCondition,
    TraitCondition,
    Where,
)
from partitur.conditions.operators import OPERATORS, TestError, build_test
from partitur.conditions.times import parse_duration
from partitur.errors import InvalidInput

MAX_DEPTH = 32
MAX_NODES = 1000
KINDS = ("trait", "event", "event_property", "consent", "segment", "all", "any", "not")
_CONSENT_STATES: dict[Any, ConsentState] = {
    True: "granted", False: "withdrawn", "granted": "granted", "withdrawn": "withdrawn",
    "unknown": "unknown",
}


def _fail(path: str, message: str) -> InvalidInput:
    return InvalidInput(f"{path}: {message}", details=[{"path": path, "message": message}])


class _Parser:
    def __init__(self) -> None:
        self.nodes = 0

    def condition(self, doc: Any, path: str, depth: int) -> Condition:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _fail(path, f"a condition may have at most {MAX_NODES} parts")
        if depth > MAX_DEPTH:
            raise _fail(path, f"conditions nest at most {MAX_DEPTH} deep")
        if not isinstance(doc, Mapping):
            raise _fail(path, f"a condition is an object with one of: {', '.join(KINDS)}")
        kinds = [k for k in KINDS if k in doc]
        if len(kinds) != 1:
            found = f"found {', '.join(kinds)}" if kinds else "found none"
            raise _fail(path, f"a condition has exactly one of {', '.join(KINDS)} ({found})")
        kind = kinds[0]
        if kind in ("all", "any"):
            self._only(doc, path, {kind})
            items = doc[kind]
            if not isinstance(items, list) or not items:
                raise _fail(f"{path}.{kind}", "a non-empty list of conditions")
            parsed = tuple(
                self.condition(item, f"{path}.{kind}[{i}]", depth + 1)
                for i, item in enumerate(items)
            )
            return AllOf(parsed) if kind == "all" else AnyOf(parsed)
        if kind == "not":
            self._only(doc, path, {"not"})
            return NotOf(self.condition(doc["not"], f"{path}.not", depth + 1))
        if kind == "trait":
            name = self._name(doc, "trait", path)
            return TraitCondition(name, tuple(name.split(".")), self._test(doc, path, {"trait"}))
        if kind == "event_property":
            name = self._name(doc, "event_property", path)
            test = self._test(doc, path, {"event_property"})
            return EventPropertyCondition(name, tuple(name.split(".")), test)
        if kind == "event":
            return self._event(doc, path)
        if kind == "consent":
            self._only(doc, path, {"consent", "is"})
            purpose = self._name(doc, "consent", path)
            state = doc.get("is", True)
            if isinstance(state, bool) or state in _CONSENT_STATES:
                return ConsentCondition(purpose, _CONSENT_STATES[state])
            raise _fail(f"{path}.is", 'true (granted), false (withdrawn) or "unknown"')
        self._only(doc, path, {"segment", "member"})
        key = self._name(doc, "segment", path)
        member = doc.get("member", True)
        if not isinstance(member, bool):
            raise _fail(f"{path}.member", "true or false")
        return SegmentCondition(key, member)

    @staticmethod
    def _only(doc: Mapping[str, Any], path: str, allowed: set[str]) -> None:
        for key in doc:
            if key not in allowed:
                allowed_text = ", ".join(sorted(allowed))
                raise _fail(f"{path}.{key}", f"unexpected field; allowed: {allowed_text}")

    @staticmethod
    def _name(doc: Mapping[str, Any], field: str, path: str) -> str:
        value = doc[field]
        if not isinstance(value, str) or not value.strip():
            raise _fail(f"{path}.{field}", "a non-empty string")
        if len(value) > 200:
            raise _fail(f"{path}.{field}", "at most 200 characters")
        return value

    def _test(self, doc: Mapping[str, Any], path: str, fixed: set[str]) -> Any:
        ops = [k for k in doc if k in OPERATORS]
        for key in doc:
            if key not in fixed and key not in OPERATORS and key != "ignore_case":
                raise _fail(
                    f"{path}.{key}",
                    f"unknown operator; one of: {', '.join(OPERATORS)}",
                )
        if len(ops) != 1:
            raise _fail(path, f"exactly one operator ({', '.join(OPERATORS)}); found {len(ops)}")
        ignore_case = doc.get("ignore_case", False)
        if not isinstance(ignore_case, bool):
            raise _fail(f"{path}.ignore_case", "true or false")
        try:
            return build_test(ops[0], doc[ops[0]], ignore_case=ignore_case)
        except TestError as exc:
            raise _fail(f"{path}.{ops[0]}", str(exc)) from None

    def _event(self, doc: Mapping[str, Any], path: str) -> EventCondition:
        self._only(doc, path, {"event", "performed", "at_least", "at_most", "within", "where"})
        name = self._name(doc, "event", path)
        performed = doc.get("performed", True)
        if not isinstance(performed, bool):
            raise _fail(f"{path}.performed", "true or false")
        at_least = self._count(doc, "at_least", path, default=1)
        at_most = self._count(doc, "at_most", path, default=None)
        if at_least is None:
            at_least = 1
        if at_most is not None and at_most < at_least:
            raise _fail(f"{path}.at_most", f"must be at least at_least ({at_least})")
        within = doc.get("within")
        within_us = None
        if within is not None:
            within_us = parse_duration(within)
            if within_us is None:
                raise _fail(f"{path}.within", "a duration such as 30s, 10m, 24h, 14d or 2w")
        where = self._where(doc.get("where"), f"{path}.where")
        return EventCondition(name, performed, at_least, at_most, within, within_us, where)

    @staticmethod
    def _count(doc: Mapping[str, Any], field: str, path: str, default: int | None) -> int | None:
        value = doc.get(field, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _fail(f"{path}.{field}", "a whole number, 0 or more")
        return value

    def _where(self, doc: Any, path: str) -> Where:
        if doc is None:
            return NO_FILTER
        if not isinstance(doc, Mapping):
            raise _fail(path, "an object of property: value or property: {operator: value}")
        tests = []
        canonical: dict[str, Any] = {}
        for name, spec in doc.items():
            at = f"{path}.{name}"
            if not isinstance(name, str) or not name:
                raise _fail(path, "property names are non-empty strings")
            if isinstance(spec, Mapping) and any(k in OPERATORS for k in spec):
                test = self._test(spec, at, set())
            elif isinstance(spec, Mapping):
                raise _fail(at, f"an operator object needs one of: {', '.join(OPERATORS)}")
            else:
                try:
                    test = build_test("equals", spec)
                except TestError as exc:
                    raise _fail(at, str(exc)) from None
            tests.append(PropertyTest(name, tuple(name.split(".")), test))
            canonical[name] = test.document()
        if not tests:
            return NO_FILTER
        key = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
        return Where(key, tuple(tests))


def parse_condition(doc: Any, *, path: str = "condition") -> Condition:
    """Parse a condition document; :class:`InvalidInput` names the JSON path of a problem."""
    return _Parser().condition(doc, path, 0)
