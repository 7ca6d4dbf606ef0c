"""Bad documents name the JSON path of the problem; the schema accepts what the parser does;
documents round-trip; references say what a condition depends on."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from partitur.conditions import json_schema, parse_condition, references, to_document
from partitur.errors import InvalidInput

GOOD: list[Any] = [
    {"trait": "plan", "equals": "pro"},
    {"trait": "address.city", "in": ["Oslo", "Bergen"], "ignore_case": True},
    {"trait": "signup", "within_last": "14d"},
    {"trait": "renewal", "before": "2026-03-01T00:00:00Z"},
    {"trait": "renewal", "after": "-2w"},
    {"trait": "age", "gte": 18},
    {"trait": "tags", "contains": "vip"},
    {"trait": "email", "exists": True},
    {"event": "Order Completed", "performed": True, "at_least": 1, "at_most": None,
     "within": "30d", "where": {"currency": "EUR", "price": {"gte": 100}}},
    {"event": "Order Completed", "performed": False, "within": "30d"},
    {"consent": "marketing_email", "is": True},
    {"consent": "sms", "is": "unknown"},
    {"segment": "trial-users", "member": True},
    {"event_property": "total", "gt": 100},
    {"all": [{"any": [{"trait": "plan", "equals": "pro"}, {"segment": "vip"}]},
             {"not": {"event": "Unsubscribed"}}]},
]

BAD: list[tuple[Any, str, str]] = [
    ([], "condition", "a condition is an object"),
    ({}, "condition", "exactly one of"),
    ({"trait": "a", "event": "b", "equals": 1}, "condition", "exactly one of"),
    ({"trait": "plan"}, "condition", "exactly one operator"),
    ({"trait": "plan", "equals": 1, "in": [1]}, "condition", "exactly one operator"),
    ({"trait": "plan", "equal": "pro"}, "condition.equal", "unknown operator"),
    ({"trait": "", "equals": "pro"}, "condition.trait", "non-empty string"),
    ({"trait": "plan", "in": "pro"}, "condition.in", "non-empty list"),
    ({"trait": "plan", "in": []}, "condition.in", "non-empty list"),
    ({"trait": "plan", "equals": None}, "condition.equals", "exists"),
    ({"trait": "age", "gt": "lots"}, "condition.gt", "number"),
    ({"trait": "d", "before": "30d"}, "condition.before", "relative time"),
    ({"trait": "d", "within_last": "30 days"}, "condition.within_last", "duration"),
    ({"trait": "d", "within_last": "0d"}, "condition.within_last", "duration"),
    ({"trait": "d", "exists": "yes"}, "condition.exists", "true or false"),
    ({"trait": "d", "gt": 1, "ignore_case": True}, "condition.gt", "ignore_case"),
    ({"event": "X", "within": "a month"}, "condition.within", "duration"),
    ({"event": "X", "at_least": -1}, "condition.at_least", "whole number"),
    ({"event": "X", "at_least": 1.5}, "condition.at_least", "whole number"),
    ({"event": "X", "at_least": 3, "at_most": 2}, "condition.at_most", "at least at_least"),
    ({"event": "X", "performed": "no"}, "condition.performed", "true or false"),
    ({"event": "X", "count": 1}, "condition.count", "unexpected field"),
    ({"event": "X", "where": []}, "condition.where", "an object"),
    ({"event": "X", "where": {"price": {"gte": "cheap"}}}, "condition.where.price.gte",
     "number"),
    ({"event": "X", "where": {"price": {"above": 3}}}, "condition.where.price",
     "operator object"),
    ({"consent": "sms", "is": "maybe"}, "condition.is", "unknown"),
    ({"segment": "vip", "member": "yes"}, "condition.member", "true or false"),
    ({"all": []}, "condition.all", "non-empty list"),
    ({"all": {"trait": "a", "exists": True}}, "condition.all", "non-empty list"),
    ({"all": [{"trait": "a", "exists": True}, {"any": [{"trait": "b"}]}]},
     "condition.all[1].any[0]", "exactly one operator"),
    ({"not": {"all": [{"event": "X", "where": {"n": {"lt": "x"}}}]}},
     "condition.not.all[0].where.n.lt", "number"),
    ({"all": [{"trait": "a", "exists": True}], "extra": 1}, "condition.extra",
     "unexpected field"),
]


@pytest.mark.parametrize("doc", GOOD, ids=[str(d)[:60] for d in GOOD])
def test_good_documents_parse_validate_and_round_trip(doc: Any) -> None:
    cond = parse_condition(doc)
    jsonschema_rs.validator_for(json_schema()).validate(doc)
    canonical = to_document(cond)
    jsonschema_rs.validator_for(json_schema()).validate(canonical)
    assert parse_condition(canonical) == cond
    assert to_document(parse_condition(canonical)) == canonical


@pytest.mark.parametrize(("doc", "path", "words"), BAD, ids=[str(b[0])[:60] for b in BAD])
def test_bad_documents_name_the_path(doc: Any, path: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_condition(doc)
    assert caught.value.details == [{"path": path, "message": caught.value.details[0]["message"]}]
    assert words in caught.value.message
    assert caught.value.message.startswith(f"{path}: ")


# Rules between two fields are the parser's alone.
CROSS_FIELD = [{"trait": "d", "gt": 1, "ignore_case": True},
               {"event": "X", "at_least": 3, "at_most": 2}]
SCHEMA_BAD = [doc for doc, _, _ in BAD if doc not in CROSS_FIELD]


@pytest.mark.parametrize("doc", SCHEMA_BAD, ids=[str(d)[:60] for d in SCHEMA_BAD])
def test_schema_rejects_what_the_parser_rejects(doc: Any) -> None:
    assert not jsonschema_rs.validator_for(json_schema()).is_valid(doc)


def test_path_prefix_is_the_callers() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_condition({"trait": "plan"}, path="steps[2].branches[0].when")
    assert caught.value.details[0]["path"] == "steps[2].branches[0].when"


def test_depth_and_size_are_bounded() -> None:
    doc: Any = {"trait": "a", "exists": True}
    for _ in range(40):
        doc = {"not": doc}
    with pytest.raises(InvalidInput, match="nest at most"):
        parse_condition(doc)
    wide = {"any": [{"trait": "a", "equals": i} for i in range(1200)]}
    with pytest.raises(InvalidInput, match="at most 1000"):
        parse_condition(wide)


def test_references() -> None:
    cond = parse_condition({"all": [
        {"trait": "address.city", "equals": "Oslo"},
        {"any": [{"event": "Order Completed", "within": "30d"}, {"segment": "vip"}]},
        {"not": {"consent": "marketing_email", "is": False}},
    ]})
    refs = references(cond)
    assert refs.traits == {"address", "address.city"}
    assert refs.events == {"Order Completed"}
    assert refs.segments == {"vip"}
    assert refs.consents == {"marketing_email"}
    assert refs.time_dependent is True
    assert refs.uses_current_event is False
    # An event dated in the future makes even an all-time test change with time.
    assert references(parse_condition({"event": "Signed Up"})).time_dependent is True
    plain = references(parse_condition({"trait": "plan", "equals": "pro"}))
    assert plain.time_dependent is False
    assert references(parse_condition({"trait": "d", "after": "now"})).time_dependent is True
    assert references(parse_condition({"event_property": "x", "exists": True})).uses_current_event
