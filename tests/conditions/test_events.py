"""Event conditions: counts, windows, property filters, and windows moving with time."""

from __future__ import annotations

import pytest

from partitur.conditions import assess, evaluate, next_change_us, parse_condition

from .helpers import DAY, NOW, Events, subject


def orders() -> Events:
    events = Events()
    events.add("Order Completed", NOW - 40 * DAY, currency="EUR", price=300)
    events.add("Order Completed", NOW - 20 * DAY, currency="EUR", price=120)
    events.add("Order Completed", NOW - 5 * DAY, currency="NOK", price=900)
    events.add("Order Completed", NOW - 1 * DAY, currency="EUR", price=50,
               shipping={"country": "NO"})
    events.add("Product Viewed", NOW - 1 * DAY, sku="A1")
    return events


@pytest.mark.parametrize(
    ("doc", "expected", "count"),
    [
        ({"event": "Order Completed"}, True, 4),
        ({"event": "Order Completed", "within": "30d"}, True, 3),
        ({"event": "Order Completed", "within": "12h"}, False, 0),
        ({"event": "Order Completed", "at_least": 4}, True, 4),
        ({"event": "Order Completed", "at_least": 5}, False, 4),
        ({"event": "Order Completed", "at_most": 3, "within": "30d"}, True, 3),
        ({"event": "Order Completed", "at_most": 2, "within": "30d"}, False, 3),
        ({"event": "Order Completed", "at_least": 2, "at_most": 3, "within": "30d"}, True, 3),
        ({"event": "Order Completed", "performed": False, "within": "12h"}, True, 0),
        ({"event": "Order Completed", "performed": False, "within": "30d"}, False, 3),
        ({"event": "Order Completed", "performed": False, "at_least": 4, "within": "30d"},
         True, 3),
        ({"event": "Order Completed", "where": {"currency": "EUR"}}, True, 3),
        ({"event": "Order Completed", "where": {"currency": "EUR", "price": {"gte": 100}}},
         True, 2),
        ({"event": "Order Completed", "within": "30d",
          "where": {"currency": "EUR", "price": {"gte": 100}}}, True, 1),
        ({"event": "Order Completed", "where": {"currency": {"in": ["SEK", "DKK"]}}}, False, 0),
        ({"event": "Order Completed", "where": {"shipping.country": "NO"}}, True, 1),
        ({"event": "Order Completed", "where": {"currency": {"equals": "eur",
                                                             "ignore_case": True}}}, True, 3),
        ({"event": "Signed Up"}, False, 0),
        ({"event": "Signed Up", "performed": False}, True, 0),
    ],
)
def test_event_condition(doc: dict[str, object], expected: bool, count: int) -> None:
    cond = parse_condition(doc)
    for full in (False, True):
        events = orders()
        subj = subject(events=events)
        result = assess(cond, subj) if full else evaluate(cond, subj)
        assert result.result is expected
        assert list(result.seen.values()) == [count]
        (label,) = result.seen
        assert label.startswith(f"event:{doc['event']}")


def test_window_and_filter_are_passed_to_the_store() -> None:
    events = orders()
    cond = parse_condition({"event": "Order Completed", "within": "30d",
                            "where": {"currency": "EUR"}})
    evaluate(cond, subject(events=events))
    (query,) = events.queries
    assert query.name == "Order Completed"
    assert query.since_us == NOW - 30 * DAY
    assert query.until_us == NOW
    assert query.where.key == '{"currency":{"equals":"EUR"}}'


def test_no_order_in_30_days_becomes_true_by_time_passing() -> None:
    events = Events()
    events.add("Order Completed", NOW - 10 * DAY)
    cond = parse_condition({"event": "Order Completed", "performed": False, "within": "30d"})
    assert evaluate(cond, subject(events=events)).result is False
    change = next_change_us(cond, subject(events=events))
    assert change == NOW - 10 * DAY + 30 * DAY + 1
    assert evaluate(cond, subject(events=events, now=change - 1)).result is False
    assert evaluate(cond, subject(events=events, now=change)).result is True
    assert next_change_us(cond, subject(events=events, now=change)) is None


def test_at_least_flips_only_when_enough_events_have_left() -> None:
    events = Events()
    for days_ago in (25, 20, 15, 2):
        events.add("Login", NOW - days_ago * DAY)
    cond = parse_condition({"event": "Login", "at_least": 3, "within": "30d"})
    assert evaluate(cond, subject(events=events)).result is True
    # four in the window; the result flips when the second oldest leaves (two remain)
    change = next_change_us(cond, subject(events=events))
    assert change == NOW - 20 * DAY + 30 * DAY + 1
    assert evaluate(cond, subject(events=events, now=change - 1)).result is True
    assert evaluate(cond, subject(events=events, now=change)).result is False


def test_at_most_becomes_true_when_events_leave() -> None:
    events = Events()
    for days_ago in (6, 3, 1):
        events.add("Support Ticket", NOW - days_ago * DAY)
    cond = parse_condition({"event": "Support Ticket", "at_most": 1, "within": "7d"})
    change = next_change_us(cond, subject(events=events))
    assert change == NOW - 3 * DAY + 7 * DAY + 1
    assert evaluate(cond, subject(events=events, now=change)).result is True


def test_future_dated_event_counts_from_its_time() -> None:
    events = Events()
    events.add("Webinar Attended", NOW + 2 * DAY)
    cond = parse_condition({"event": "Webinar Attended", "within": "7d"})
    assert evaluate(cond, subject(events=events)).result is False
    assert next_change_us(cond, subject(events=events)) == NOW + 2 * DAY


def test_without_event_times_no_window_change_is_reported() -> None:
    events = orders()
    cond = parse_condition({"event": "Order Completed", "within": "30d"})
    assert next_change_us(cond, subject(events=events, with_times=False)) is None


def test_one_query_per_distinct_event_test() -> None:
    events = orders()
    doc = {"event": "Order Completed", "within": "30d"}
    cond = parse_condition({"all": [doc, {"not": {"not": doc}}]})
    evaluate(cond, subject(events=events))
    assert len(events.queries) == 1


def test_cheap_parts_decide_before_events_are_counted() -> None:
    events = orders()
    cond = parse_condition({"all": [{"event": "Order Completed"},
                                    {"trait": "plan", "equals": "pro"}]})
    result = evaluate(cond, subject({"plan": "free"}, events=events))
    assert result.result is False
    assert events.queries == []
    assert result.seen == {"trait:plan": "free"}
