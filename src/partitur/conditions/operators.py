"""The value tests a trait, an event property or an event filter applies: ``{"gte": 100}``.

A :class:`Test` is built once from the document (:func:`build_test`) and then checks values
(:meth:`Test.check`). Tests whose answer moves with time (``within_last``, ``more_than_ago``,
``before``/``after`` a relative time, comparisons with a relative time) also say when, for a
given value, the answer would next change (:meth:`Test.change_at`). A missing value is
:data:`MISSING`; ``null`` counts as missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from partitur.conditions.times import TimeRef, parse_duration, parse_instant, parse_time_ref

MISSING: Final = None

EQUALITY = ("equals", "not_equals")
MEMBERSHIP = ("in", "not_in")
TEXT = ("contains", "starts_with")
ORDER = ("gt", "gte", "lt", "lte")
TIME = ("before", "after")
AGE = ("within_last", "more_than_ago")
OPERATORS: Final = (*EQUALITY, *MEMBERSHIP, *TEXT, *ORDER, "exists", *TIME, *AGE)
CASE_OPERATORS: Final = frozenset((*EQUALITY, *MEMBERSHIP, *TEXT))


class TestError(ValueError):
    """A test's operand is not what its operator takes (the message says what is)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_number(value: Any) -> float | None:
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _same(actual: Any, expected: Any, ignore_case: bool) -> bool:
    if isinstance(actual, bool) != isinstance(expected, bool):
        return False
    if ignore_case and isinstance(actual, str) and isinstance(expected, str):
        return actual.casefold() == expected.casefold()
    return bool(actual == expected)


@dataclass(frozen=True, slots=True)
class Test:
    op: str
    value: Any  # the operand as written (the list of in/not_in as a tuple)
    ignore_case: bool = False
    number: float | None = None
    at: TimeRef | None = None
    duration_us: int = 0

    @property
    def time_dependent(self) -> bool:
        return self.op in AGE or (self.at is not None and self.at.relative)

    def document(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        doc: dict[str, Any] = {self.op: value}
        if self.ignore_case:
            doc["ignore_case"] = True
        return doc

    def check(self, actual: Any, now_us: int) -> bool:
        op = self.op
        if op == "exists":
            return (actual is not MISSING) is self.value
        if op == "equals":
            return _same(actual, self.value, self.ignore_case)
        if op == "not_equals":
            return not _same(actual, self.value, self.ignore_case)
        if op == "in":
            return any(_same(actual, v, self.ignore_case) for v in self.value)
        if op == "not_in":
            return not any(_same(actual, v, self.ignore_case) for v in self.value)
        if op == "contains":
            if isinstance(actual, str):
                if not isinstance(self.value, str):
                    return False
                if self.ignore_case:
                    return self.value.casefold() in actual.casefold()
                return self.value in actual
            if isinstance(actual, list | tuple):
                return any(_same(item, self.value, self.ignore_case) for item in actual)
            return False
        if op == "starts_with":
            if not isinstance(actual, str):
                return False
            if self.ignore_case:
                return actual.casefold().startswith(self.value.casefold())
            return actual.startswith(self.value)
        if self.at is not None:  # time comparisons: gt/gte/lt/lte with a time, before, after
            t = parse_instant(actual)
            if t is None:
                return False
            return _compare(op, t, self.at.resolve(now_us))
        if op in ORDER:
            number = _as_number(actual)
            return number is not None and _compare(op, number, self.number)
        t = parse_instant(actual)
        if t is None:
            return False
        if op == "within_last":
            return now_us - self.duration_us <= t <= now_us
        return t < now_us - self.duration_us  # more_than_ago

    def change_at(self, actual: Any, now_us: int) -> int | None:
        """The first moment after ``now_us`` at which :meth:`check` of ``actual`` would give
        another answer by time passing alone; None if it never would."""
        if not self.time_dependent:
            return None
        t = parse_instant(actual)
        if t is None:
            return None
        if self.op in AGE:
            candidates = [t + self.duration_us + 1]
            if self.op == "within_last":
                candidates.append(t)
            later = [c for c in candidates if c > now_us]
            return min(later) if later else None
        assert self.at is not None
        # t <op> now + offset  <=>  now <op'> k, with k = t - offset
        k = t - self.at.offset_us
        threshold = k + 1 if self.op in ("lt", "before", "gte") else k
        return threshold if threshold > now_us else None


def _compare(op: str, left: float, right: float | None) -> bool:
    if right is None:
        return False
    if op in ("gt", "after"):
        return left > right
    if op == "gte":
        return left >= right
    if op in ("lt", "before"):
        return left < right
    return left <= right  # lte


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def build_test(op: str, value: Any, *, ignore_case: bool = False) -> Test:
    """A :class:`Test` for ``{op: value}``; :class:`TestError` says what is wrong."""
    if op not in OPERATORS:
        raise TestError(f"unknown operator {op!r}; one of: {', '.join(OPERATORS)}")
    if ignore_case and op not in CASE_OPERATORS:
        raise TestError(f"ignore_case applies to {', '.join(sorted(CASE_OPERATORS))}, not {op}")
    if op in EQUALITY:
        if value is None:
            raise TestError(f"{op} needs a value; to test for a missing value use exists")
        return Test(op, value, ignore_case)
    if op in MEMBERSHIP:
        if not isinstance(value, list) or not value or not all(_scalar(v) for v in value):
            raise TestError(f"{op} takes a non-empty list of strings, numbers or booleans")
        return Test(op, tuple(value), ignore_case)
    if op == "contains":
        if not _scalar(value) or value is None:
            raise TestError("contains takes a string (or a scalar to find in a list)")
        return Test(op, value, ignore_case)
    if op == "starts_with":
        if not isinstance(value, str):
            raise TestError("starts_with takes a string")
        return Test(op, value, ignore_case)
    if op == "exists":
        if not isinstance(value, bool):
            raise TestError("exists takes true or false")
        return Test(op, value)
    if op in ORDER:
        if _is_number(value):
            return Test(op, value, number=float(value))
        ref = parse_time_ref(value)
        if ref is None:
            raise TestError(
                f"{op} takes a number, an ISO date-time or a relative time "
                "(now, -30d, +2h)"
            )
        return Test(op, value, at=ref)
    if op in TIME:
        ref = parse_time_ref(value)
        if ref is None:
            raise TestError(f"{op} takes an ISO date-time or a relative time (now, -30d, +2h)")
        return Test(op, value, at=ref)
    duration = parse_duration(value)  # within_last, more_than_ago
    if duration is None:
        raise TestError(f"{op} takes a duration such as 30s, 10m, 24h, 14d or 2w")
    return Test(op, value, duration_us=duration)
