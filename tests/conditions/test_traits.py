"""Every operator on traits, with the values each test looked at."""

from __future__ import annotations

from typing import Any

import pytest

from partitur.clock import iso
from partitur.conditions import evaluate, next_change_us, parse_condition

from .helpers import DAY, NOW, subject

TRAITS: dict[str, Any] = {
    "plan": "pro",
    "email": "Kari@Example.com",
    "age": 41,
    "score": "7.5",
    "tags": ["vip", "beta"],
    "active": True,
    "nothing": None,
    "address": {"city": "Oslo", "zip": "0150"},
    "signup": iso(NOW - 10 * DAY),
    "renewal": "2026-03-01",
    "legacy.flat": "kept",
}

CASES = [
    ({"trait": "plan", "equals": "pro"}, True),
    ({"trait": "plan", "equals": "PRO"}, False),
    ({"trait": "plan", "equals": "PRO", "ignore_case": True}, True),
    ({"trait": "age", "equals": 41.0}, True),
    ({"trait": "active", "equals": 1}, False),  # a boolean is not a number
    ({"trait": "active", "equals": True}, True),
    ({"trait": "missing", "equals": "x"}, False),
    ({"trait": "plan", "not_equals": "free"}, True),
    ({"trait": "plan", "not_equals": "pro"}, False),
    ({"trait": "missing", "not_equals": "pro"}, True),
    ({"trait": "plan", "in": ["pro", "enterprise"]}, True),
    ({"trait": "plan", "in": ["free"]}, False),
    ({"trait": "plan", "not_in": ["free", "trial"]}, True),
    ({"trait": "missing", "not_in": ["free"]}, True),
    ({"trait": "email", "contains": "@example"}, False),
    ({"trait": "email", "contains": "@example", "ignore_case": True}, True),
    ({"trait": "tags", "contains": "vip"}, True),
    ({"trait": "tags", "contains": "gold"}, False),
    ({"trait": "age", "contains": "4"}, False),
    ({"trait": "email", "starts_with": "Kari"}, True),
    ({"trait": "email", "starts_with": "kari"}, False),
    ({"trait": "email", "starts_with": "kari", "ignore_case": True}, True),
    ({"trait": "age", "gt": 40}, True),
    ({"trait": "age", "gt": 41}, False),
    ({"trait": "age", "gte": 41}, True),
    ({"trait": "age", "lt": 41}, False),
    ({"trait": "age", "lte": 41}, True),
    ({"trait": "score", "gt": 7}, True),  # numeric strings compare as numbers
    ({"trait": "plan", "gt": 1}, False),
    ({"trait": "renewal", "gt": "2026-02-28T23:59:59Z"}, True),
    ({"trait": "renewal", "lt": "now"}, False),
    ({"trait": "renewal", "gte": "+28d"}, True),
    ({"trait": "plan", "exists": True}, True),
    ({"trait": "nothing", "exists": True}, False),
    ({"trait": "nothing", "exists": False}, True),
    ({"trait": "missing", "exists": False}, True),
    ({"trait": "signup", "before": "now"}, True),
    ({"trait": "signup", "before": "-30d"}, False),
    ({"trait": "signup", "after": "-30d"}, True),
    ({"trait": "signup", "after": "2026-01-01"}, True),
    ({"trait": "signup", "before": "2026-01-01T00:00:00+01:00"}, False),
    ({"trait": "plan", "before": "now"}, False),  # not a date
    ({"trait": "signup", "within_last": "30d"}, True),
    ({"trait": "signup", "within_last": "1w"}, False),
    ({"trait": "renewal", "within_last": "30d"}, False),  # in the future
    ({"trait": "signup", "more_than_ago": "1w"}, True),
    ({"trait": "signup", "more_than_ago": "14d"}, False),
    ({"trait": "address.city", "equals": "Oslo"}, True),
    ({"trait": "address.zip", "starts_with": "01"}, True),
    ({"trait": "address.street", "exists": False}, True),
    ({"trait": "legacy.flat", "equals": "kept"}, True),  # a literal dotted key wins
]


@pytest.mark.parametrize(("doc", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_trait_operator(doc: dict[str, Any], expected: bool) -> None:
    cond = parse_condition(doc)
    result = evaluate(cond, subject(TRAITS))
    assert result.result is expected
    name = doc["trait"]
    looked = TRAITS.get(name, TRAITS.get(name.split(".")[0]))
    if isinstance(looked, dict) and name not in TRAITS:
        looked = looked.get(name.split(".")[1])
    assert result.seen == {f"trait:{name}": looked}


def test_every_operator_is_covered() -> None:
    from partitur.conditions import OPERATORS

    used = {op for doc, _ in CASES for op in doc if op not in ("trait", "ignore_case")}
    assert used == set(OPERATORS)


def test_within_last_flips_when_the_date_gets_old() -> None:
    cond = parse_condition({"trait": "signup", "within_last": "30d"})
    signup = NOW - 10 * DAY
    traits = {"signup": iso(signup)}
    change = next_change_us(cond, subject(traits))
    assert change == signup + 30 * DAY + 1
    assert evaluate(cond, subject(traits, now=change - 1)).result is True
    assert evaluate(cond, subject(traits, now=change)).result is False
    assert next_change_us(cond, subject(traits, now=change)) is None


def test_future_date_enters_within_last_when_it_arrives() -> None:
    cond = parse_condition({"trait": "trial_end", "within_last": "1d"})
    end = NOW + 5 * DAY
    traits = {"trial_end": iso(end)}
    assert next_change_us(cond, subject(traits)) == end
    assert evaluate(cond, subject(traits, now=end)).result is True
    assert next_change_us(cond, subject(traits, now=end)) == end + DAY + 1


@pytest.mark.parametrize("op", ["before", "lt", "lte", "after", "gt", "gte"])
def test_relative_comparison_changes_exactly_at_the_reported_time(op: str) -> None:
    cond = parse_condition({"trait": "last_login", op: "-7d"})
    login = NOW - 3 * DAY
    traits = {"last_login": iso(login)}
    change = next_change_us(cond, subject(traits))
    assert change is not None and change > NOW
    before = evaluate(cond, subject(traits, now=change - 1)).result
    after = evaluate(cond, subject(traits, now=change)).result
    assert before != after
    assert evaluate(cond, subject(traits)).result == before


def test_more_than_ago_change() -> None:
    cond = parse_condition({"trait": "last_order", "more_than_ago": "30d"})
    last = NOW - 29 * DAY
    traits = {"last_order": iso(last)}
    assert evaluate(cond, subject(traits)).result is False
    change = next_change_us(cond, subject(traits))
    assert change == last + 30 * DAY + 1
    assert evaluate(cond, subject(traits, now=change)).result is True


def test_absolute_times_and_plain_values_never_change_by_time() -> None:
    for doc in (
        {"trait": "signup", "after": "2026-01-01"},
        {"trait": "plan", "equals": "pro"},
        {"trait": "age", "gt": 3},
    ):
        assert next_change_us(parse_condition(doc), subject(TRAITS)) is None
