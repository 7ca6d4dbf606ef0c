"""Journey documents: what parses, and how bad ones are refused (step id, path, reason)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from partitur.journeys import InvalidJourney, check_journey, parse_journey
from partitur.journeys.model import SplitStep, WaitForEventStep, WaitStep

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "journeys").glob("*.yaml"))


def welcome() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "examples/journeys/welcome.yaml").read_text())
    return doc


def refuse(doc: Any, *, templates: bool = True) -> InvalidJourney:
    with pytest.raises(InvalidJourney) as info:
        check_journey(parse_journey(doc), templates=templates)
    return info.value


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(path: Path) -> None:
    journey = parse_journey(yaml.safe_load(path.read_text()))
    check_journey(journey)
    assert journey.steps


def test_issue_example_parses_to_its_parts() -> None:
    j = parse_journey(welcome())
    assert j.key == "welcome" and j.trigger.event == "User Registered"
    assert j.entry.reentry == "never"
    assert j.goal is not None and j.goal.within_us == 14 * 86_400_000_000
    assert [r.event for r in j.exit_when] == ["Unsubscribed"]
    wait = j.by_id["wait-order"]
    assert isinstance(wait, WaitForEventStep) and wait.timeout_us == 86_400_000_000
    split = j.by_id["split"]
    assert isinstance(split, SplitStep)
    assert [(v.name, v.control) for v in split.variants] == [
        ("discount", False), ("reminder", False), ("control", True)]


def test_unknown_next_step_names_step_and_field() -> None:
    doc = welcome()
    doc["steps"][1]["on_timeout"] = "nowhere"
    err = refuse(doc)
    assert err.step_id == "wait-order"
    assert "unknown next step 'nowhere'" in err.message
    assert err.details[0]["path"] == "steps[1].on_timeout"


def test_unreachable_step() -> None:
    doc = welcome()
    doc["steps"].append({"id": "orphan", "type": "exit"})
    err = refuse(doc)
    assert err.step_id == "orphan" and "unreachable" in err.message


def test_cycle_without_wait_is_refused_and_with_a_wait_allowed() -> None:
    doc = {"key": "loop", "trigger": {"event": "X"}, "steps": [
        {"id": "a", "type": "emit_event", "event": "Ping", "next": "b"},
        {"id": "b", "type": "branch", "branches": [{"when": {"trait": "x", "exists": True},
                                                    "next": "c"}], "default": "a"},
        {"id": "c", "type": "exit"},
    ]}
    err = refuse(doc)
    assert "cycle without a wait: a -> b -> a" in err.message
    doc["steps"][1]["default"] = "w"
    doc["steps"].append({"id": "w", "type": "wait", "duration": "1d", "next": "a"})
    check_journey(parse_journey(doc))


@pytest.mark.parametrize(
    ("index", "change", "reason"),
    [
        (5, {"duration": "2 days"}, "bad duration '2 days'"),
        (5, {"duration": "0s"}, "bad duration"),
        (1, {"timeout": None}, "needs a timeout"),
        (0, {"channel": "fax"}, "one of email, sms, webhook, web"),
        (0, {"category": "spam"}, "marketing or transactional"),
        (0, {"template": None}, "a template key or an inline template is required"),
        (0, {"template": {"subject": "Hi {{ profile.traits.name }"}}, "template"),
        (0, {"colour": "red"}, "unknown field"),
        (1, {"match": {"cart_id": "cart_id"}}, "a reference such as"),
        (2, {"branches": [{"when": {"trait": "plan", "equals_to": "pro"}, "next": "done"}]},
         "branches[0].when"),
    ],
)
def test_step_problems_name_the_step(index: int, change: dict[str, Any], reason: str) -> None:
    doc = welcome()
    step = doc["steps"][index]
    for k, v in change.items():
        if v is None:
            step.pop(k, None)
        else:
            step[k] = v
    err = refuse(doc)
    assert err.step_id == step["id"], err.message
    assert reason in err.message


@pytest.mark.parametrize("weight", [0, -5, "ten", True])
def test_weights_must_be_positive(weight: Any) -> None:
    doc = welcome()
    doc["steps"][3]["variants"][0]["weight"] = weight
    err = refuse(doc)
    assert err.step_id == "split" and "weights must be positive" in err.message


def test_every_problem_is_reported() -> None:
    doc = welcome()
    doc["steps"][0]["next"] = "x"
    doc["steps"][6]["next"] = "y"
    err = refuse(doc)
    assert {d["step"] for d in err.details} == {"welcome", "remind-mail"}
    assert "1 more problem" in err.message


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("trigger", {"event": "A", "segment_entered": "b"}, "exactly one of"),
        ("trigger", {"schedule": "every monday", "segment": "x"}, "not a cron expression"),
        ("trigger", {"schedule": "0 9 * * MON"}, "segment"),
        ("entry", {"reentry": "sometimes"}, "never, always"),
        ("entry", {"reentry": {"after": "soon"}}, "bad duration"),
        ("entry", {"audience": {"segmnt": "x"}}, "entry.audience"),
        ("goal", {"event": "Order Completed", "within": "forever"}, "goal.within"),
        ("exit_when", [{"evnt": "Unsubscribed"}], "exit_when[0]"),
        ("key", "has space", "key"),
    ],
)
def test_top_level_problems(field: str, value: Any, reason: str) -> None:
    doc = welcome()
    doc[field] = value
    with pytest.raises(InvalidJourney) as info:
        parse_journey(doc)
    assert reason in info.value.message


def test_wait_forms() -> None:
    doc = {"key": "w", "trigger": {"event": "X"}, "steps": [
        {"id": "a", "type": "wait", "until": {"time": "09:30", "days": ["mon", "fri"]},
         "next": "b"},
        {"id": "b", "type": "wait", "until": {"trait": "trial_ends_at", "offset": "-1d"},
         "next": "c"},
        {"id": "c", "type": "exit"},
    ]}
    j = parse_journey(doc)
    a, b = j.by_id["a"], j.by_id["b"]
    assert isinstance(a, WaitStep) and a.at_time == (9, 30) and a.days == frozenset({0, 4})
    assert isinstance(b, WaitStep) and b.trait == "trial_ends_at"
    assert b.offset_us == -86_400_000_000
    bad = copy.deepcopy(doc)
    bad["steps"][0]["until"] = {"time": "25:00"}
    with pytest.raises(InvalidJourney, match="HH:MM"):
        parse_journey(bad)


def test_key_in_url_must_match() -> None:
    with pytest.raises(InvalidJourney, match="not 'other'"):
        parse_journey(welcome(), key="other")
