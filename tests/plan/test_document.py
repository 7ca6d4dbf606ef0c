"""The plan document: its forms, and every kind of mistake refused with the event's name."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
import yaml

from partitur.errors import InvalidInput
from partitur.plan.lineage import lineage
from partitur.plan.parse import load_yaml, parse_plan
from partitur.plan.policy import check_policy, effective_policy
from partitur.plan.routes import plan_json_schema
from tests.plan.plans import SHOP


def test_shorthand_and_full_schema_mean_the_same() -> None:
    plan = load_yaml(SHOP)
    order = plan.events["Order Completed"]
    assert order.json_schema() == {
        "type": "object",
        "properties": {"order_id": {"type": "string"},
                       "revenue": {"type": "number", "minimum": 0},
                       "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}},
        "required": ["order_id", "revenue"],
    }
    assert order.declared() == {"order_id", "revenue", "currency"}
    viewed = plan.events["Product Viewed"]
    assert viewed.is_full_schema() and viewed.declared() == {"product_id", "price"}
    assert plan.traits is not None and plan.traits.declared() == {"email", "plan"}
    assert [(call, name) for call, name, _ in plan.sections()] == [
        ("track", "Order Completed"), ("track", "Product Viewed"), ("identify", None),
        ("page", None),
    ]


def test_a_schema_without_properties_plans_any_property() -> None:
    plan = parse_plan({"events": {"Anything": {"properties": {"type": "object"}},
                                  "Nothing": {}}})
    assert plan.events["Anything"].declared() is None
    assert plan.events["Nothing"].declared() == frozenset()


def test_the_list_form_and_old_spellings_are_accepted() -> None:
    old = parse_plan({
        "events": [{"name": "Signed Up", "producers": ["web"], "consumers": ["crm"],
                    "properties": {"type": "object", "properties": {"method": {}}}}],
        "identify": {"producers": ["crm"], "traits": {"type": "object"}},
    })
    assert old.events["Signed Up"].produced_by == ["web"]
    assert old.events["Signed Up"].consumed_by == ["crm"]
    assert old.traits is not None and old.traits.produced_by == ["crm"]
    assert old.traits.declared() is None
    # The canonical form it is stored in parses back to the same plan.
    assert parse_plan(old.dump()) == old


def test_the_served_json_schema_describes_the_document() -> None:
    schema = plan_json_schema()
    assert schema["title"] == "TrackingPlan"
    validator = jsonschema_rs.validator_for(schema)
    assert validator.is_valid(yaml.safe_load(SHOP))
    assert not validator.is_valid({"events": {"A": {"color": "red"}}})


def _problem(doc: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        load_yaml(doc) if isinstance(doc, str) else parse_plan(doc)
    return info.value


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"events": {"Order Completed": {"color": "red"}}},
         "event 'Order Completed': color: unknown key"),
        ({"events": {"Broken": {"properties": {"type": "nonsense"}}}},
         "event 'Broken': properties.type: a complete JSON Schema of the properties needs"),
        ({"events": {"Broken": {"properties": {"type": "object",
                                               "properties": {"n": {"type": "nonsense"}}}}}},
         "event 'Broken': properties.properties.n.type: invalid JSON Schema"),
        ({"events": {"Priced": {"properties": {"price": {"minimum": "zero"}}}}},
         "event 'Priced': properties.price.minimum: invalid JSON Schema: \"zero\" is not of "
         "type \"number\""),
        ({"events": {"Priced": {"properties": {"price": "number"}}}},
         "event 'Priced': properties.price: a property's schema must be a mapping"),
        ({"events": {"Signed Up": {"required": ["method"], "properties": {"via": {}}}}},
         "event 'Signed Up': required: 'method' required but not among the properties"),
        ({"events": {"Half": {"properties": {"properties": {"a": {}}, "required": ["a"]}}}},
         "event 'Half': properties.properties: looks like a complete JSON Schema"),
        ({"events": {"Remote": {"properties": {"$ref": "http://127.0.0.1:9/s.json",
                                               "type": "object"}}}},
         "event 'Remote': properties: invalid JSON Schema: '$ref' to 'http://127.0.0.1:9/s.json' "
         "cannot be resolved"),
        ({"events": {"Bad Pattern": {"properties": {"sku": {"pattern": "(["}}}}},
         "event 'Bad Pattern': properties.sku.pattern: invalid JSON Schema"),
        ({"events": {"": {}}}, "event '': an event name cannot be empty"),
        ({"events": {"Described": {"description": ["not", "text"]}}},
         "event 'Described': description: Input should be a valid string"),
        ({"traits": {"properties": {"email": {"type": "mail"}}}},
         "traits: properties.email.type: invalid JSON Schema"),
        ({"group": {"required": ["name"]}}, "group: required: 'name' required but not"),
        ({"policy": {"violations": "shout"}}, "plan: policy: plan policy 'violations' must be"),
        ({"events": [{"name": "Twice"}, {"name": "Twice"}]}, "event 'Twice' is listed twice"),
        ({"events": [{"description": "no name"}]}, "events[0]: an event in a list needs"),
        ({"traits": {}, "identify": {}}, "give either 'traits' or 'identify'"),
        ({"evnets": {}}, "plan: evnets: unknown key"),
        (["a list"], "a tracking plan is a mapping"),
        ("events:\n  Twice: {}\n  Twice: {}\n", "'Twice' appears twice (line 3)"),
        ("events: [unclosed\n", "tracking plan is not valid YAML"),
    ],
)
def test_mistakes_are_refused_naming_the_event(doc: Any, expected: str) -> None:
    assert expected in _problem(doc).message


def test_every_problem_is_reported_with_where_it_is() -> None:
    exc = _problem({"events": {
        "A": {"properties": {"x": {"type": "nonsense"}}},
        "B": {"colour": "red"},
        "C": {"required": ["y"]},
    }})
    assert {d["where"] for d in exc.details} == {"event 'A'", "event 'B'", "event 'C'"}
    assert exc.message.startswith("invalid tracking plan: ")
    many = _problem({"events": {f"E{i}": {"x": 1} for i in range(8)}})
    assert len(many.details) == 8 and many.message.endswith("; and 3 more")


def test_policy_precedence() -> None:
    assert check_policy({"violations": "block"}) == {"violations": "block"}
    with pytest.raises(InvalidInput, match="unknown plan policy 'volations'"):
        check_policy({"volations": "block"})
    plan_level = {"unplanned_events": "flag", "violations": "block"}
    assert effective_policy({}, plan_level) == {
        "unplanned_events": "flag", "unplanned_properties": "allow", "violations": "block"}
    assert effective_policy({"violations": "allow", "bogus": "x"}, plan_level) == {
        "unplanned_events": "flag", "unplanned_properties": "allow", "violations": "allow"}


def test_lineage_by_source_and_consumer() -> None:
    found = lineage(load_yaml(SHOP), known_sources=["web"])
    sources = {s["source"]: s for s in found["sources"]}
    assert sources["web"]["known"] and not sources["backend"]["known"]
    assert sources["web"]["produces"] == [
        {"type": "track", "event": "Order Completed"},
        {"type": "track", "event": "Product Viewed"},
        {"type": "identify"},
    ]
    assert sources["crm"]["produces"] == [{"type": "identify"}]
    consumers = {c["system"]: c["consumes"] for c in found["consumers"]}
    assert consumers == {
        "analytics": [{"type": "track", "event": "Order Completed"},
                      {"type": "track", "event": "Product Viewed"}],
        "journeys": [{"type": "track", "event": "Order Completed"}, {"type": "identify"}],
    }
