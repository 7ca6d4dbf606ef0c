"""Consent, segment membership, the current event's properties, and all/any/not."""

from __future__ import annotations

from typing import Any

import pytest

from partitur.clock import iso
from partitur.conditions import assess, evaluate, next_change_us, parse_condition

from .helpers import DAY, NOW, Events, subject

CONSENT: dict[str, Any] = {
    "marketing_email": {"granted": True, "at": "2026-01-01T00:00:00.000Z", "source": "web"},
    "sms": False,
}


@pytest.mark.parametrize(
    ("doc", "expected", "state"),
    [
        ({"consent": "marketing_email"}, True, "granted"),
        ({"consent": "marketing_email", "is": True}, True, "granted"),
        ({"consent": "marketing_email", "is": False}, False, "granted"),
        ({"consent": "sms", "is": True}, False, "withdrawn"),
        ({"consent": "sms", "is": False}, True, "withdrawn"),
        ({"consent": "sms", "is": "withdrawn"}, True, "withdrawn"),
        ({"consent": "analytics", "is": True}, False, "unknown"),
        ({"consent": "analytics", "is": False}, False, "unknown"),
        ({"consent": "analytics", "is": "unknown"}, True, "unknown"),
        ({"consent": "marketing_email", "is": "granted"}, True, "granted"),
    ],
)
def test_consent(doc: dict[str, Any], expected: bool, state: str) -> None:
    result = evaluate(parse_condition(doc), subject(consent=CONSENT))
    assert result.result is expected
    assert result.seen == {f"consent:{doc['consent']}": state}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"segment": "trial-users"}, True),
        ({"segment": "trial-users", "member": True}, True),
        ({"segment": "trial-users", "member": False}, False),
        ({"segment": "churned", "member": False}, True),
        ({"segment": "churned"}, False),
    ],
)
def test_segment_membership(doc: dict[str, Any], expected: bool) -> None:
    result = evaluate(parse_condition(doc), subject(segments=frozenset({"trial-users"})))
    assert result.result is expected
    assert result.seen == {f"segment:{doc['segment']}": doc["segment"] == "trial-users"}


def test_event_property_reads_the_current_event() -> None:
    event = {"type": "track", "event": "Cart Updated",
             "properties": {"total": 120, "cart": {"id": "c-9"}}}
    cond = parse_condition({"all": [{"event_property": "total", "gte": 100},
                                    {"event_property": "cart.id", "starts_with": "c-"}]})
    result = evaluate(cond, subject(event=event))
    assert result.result is True
    assert result.seen == {"event_property:total": 120, "event_property:cart.id": "c-9"}
    assert evaluate(cond, subject()).result is False  # no current event


TRAITS = {"plan": "pro", "country": "NO"}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"all": [{"trait": "plan", "equals": "pro"}, {"trait": "country", "equals": "NO"}]},
         True),
        ({"all": [{"trait": "plan", "equals": "pro"}, {"trait": "country", "equals": "SE"}]},
         False),
        ({"any": [{"trait": "plan", "equals": "free"}, {"trait": "country", "equals": "NO"}]},
         True),
        ({"any": [{"trait": "plan", "equals": "free"}, {"trait": "country", "equals": "SE"}]},
         False),
        ({"not": {"trait": "plan", "equals": "pro"}}, False),
        ({"not": {"not": {"trait": "plan", "equals": "pro"}}}, True),
        ({"all": [{"any": [{"trait": "plan", "in": ["pro", "team"]},
                           {"segment": "vip"}]},
                  {"not": {"consent": "marketing_email", "is": False}}]}, True),
    ],
)
def test_combinators(doc: dict[str, Any], expected: bool) -> None:
    cond = parse_condition(doc)
    assert evaluate(cond, subject(TRAITS)).result is expected
    assert assess(cond, subject(TRAITS)).result is expected


def test_all_reports_the_earliest_change_of_its_parts() -> None:
    events = Events()
    events.add("Order Completed", NOW - 25 * DAY)
    traits = {"signup": iso(NOW - 20 * DAY)}
    cond = parse_condition({"all": [
        {"trait": "signup", "within_last": "30d"},  # flips in 10 days
        {"event": "Order Completed", "within": "30d"},  # flips in 5 days
    ]})
    assert next_change_us(cond, subject(traits, events=events)) == NOW + 5 * DAY + 1


def test_a_false_part_that_time_never_changes_fixes_all() -> None:
    events = Events()
    events.add("Order Completed", NOW - 25 * DAY)
    cond = parse_condition({"all": [{"trait": "plan", "equals": "enterprise"},
                                    {"event": "Order Completed", "within": "30d"}]})
    assessment = assess(cond, subject(TRAITS, events=events))
    assert assessment.result is False
    assert assessment.next_change_us is None
    assert assessment.seen == {"trait:plan": "pro", "event:Order Completed within 30d": 1}


def test_a_true_part_that_time_never_changes_fixes_any() -> None:
    events = Events()
    events.add("Order Completed", NOW - 25 * DAY)
    cond = parse_condition({"any": [{"trait": "plan", "equals": "pro"},
                                    {"event": "Order Completed", "within": "30d"}]})
    assert next_change_us(cond, subject(TRAITS, events=events)) is None
    cond = parse_condition({"not": {"any": [{"trait": "plan", "equals": "free"},
                                            {"event": "Order Completed", "within": "30d"}]}})
    assert next_change_us(cond, subject(TRAITS, events=events)) == NOW + 5 * DAY + 1
