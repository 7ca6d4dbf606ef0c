"""Triggers on page, screen and identify calls, beside track events: entry, filters, what
templates see, the schema, test runs and simulations."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from partitur.journeys import parse_journey
from partitur.journeys.parse import InvalidJourney
from tests.journeys.conftest import Env


def _journey(key: str, trigger: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"key": key, "trigger": trigger, "entry": {"reentry": "always"}, **extra,
            "steps": [{"id": "mail", "type": "send", "channel": "email",
                       "category": "transactional",
                       "template": {"subject": "Hi", "text": "{{ event.name }}"}}]}


def _entries(env: Env, profile_id: str, key: str) -> list[dict[str, Any]]:
    return [j for j in env.where(profile_id) if j["journey"] == key]


def test_page_trigger_by_name_with_a_property_filter(env: Env) -> None:
    env.live(_journey("pricing", {"page": "Pricing", "where": {"plan": {"equals": "pro"}}}))
    kari = env.identify("kari")
    env.send({"type": "page", "userId": "kari", "name": "Home", "properties": {"plan": "pro"}},
             {"type": "page", "userId": "kari", "name": "Pricing",
              "properties": {"plan": "free"}},
             {"type": "track", "userId": "kari", "event": "Pricing"})  # not a page
    env.process()
    assert _entries(env, kari, "pricing") == []
    env.send({"type": "page", "userId": "kari", "name": "Pricing",
              "properties": {"plan": "pro"}})
    env.process()
    [run] = _entries(env, kari, "pricing")
    assert run["path"][0]["reason"]["cause"] == "page Pricing"
    with env.services.db.read() as tx:
        row = tx.one("SELECT variables FROM outbox WHERE profile_id = ?", (kari,))
    assert row is not None and "Pricing" in str(row[0])  # templates see event.name


def test_any_screen_and_identify_triggers(env: Env) -> None:
    env.live(_journey("app-open", {"screen": "*"}))
    env.live(_journey("went-pro", {"identify": True, "where": {"plan": {"equals": "pro"}}}))
    kari = env.identify("kari", plan="free")
    assert _entries(env, kari, "went-pro") == []
    env.send({"type": "screen", "userId": "kari", "name": "Settings"},
             {"type": "screen", "userId": "kari"})
    env.process()
    runs = _entries(env, kari, "app-open")
    assert sorted(r["path"][0]["reason"]["cause"] for r in runs) == ["screen", "screen Settings"]
    env.identify("kari", plan="pro")
    [run] = _entries(env, kari, "went-pro")
    assert run["path"][0]["reason"]["cause"] == "identify"


def test_identify_written_by_a_journey_does_not_trigger_one(env: Env) -> None:
    doc = {"key": "tagger", "trigger": {"identify": True}, "entry": {"reentry": "always"},
           "steps": [{"id": "tag", "type": "update_profile", "set": {"tagged": True}}]}
    env.live(doc)
    kari = env.identify("kari")
    env.process()  # the journey's own identify call is folded in, and enters nobody
    env.process()
    assert len(_entries(env, kari, "tagger")) == 1
    r = env.client.get(f"/api/v1/profiles/{kari}", headers=env.admin)
    assert r.status_code == 200 and r.json()["traits"]["tagged"] is True


def test_trigger_shapes_in_the_schema_and_refused_ones(env: Env) -> None:
    schema = env.client.get("/api/v1/schemas/journey.json").json()
    validator = jsonschema_rs.validator_for(schema)
    good = [{"event": "Signed Up"}, {"page": "Pricing", "where": {"plan": {"equals": "pro"}}},
            {"screen": "*"}, {"identify": True, "where": {"plan": {"exists": True}}}]
    for trigger in good:
        doc = _journey("t", trigger)
        assert validator.is_valid(doc), trigger
        parse_journey(doc)
    bad = [{"identify": False}, {"page": "Pricing", "event": "Signed Up"}, {"page": ""},
           {"screen": "Home", "properties": {}}]
    for trigger in bad:
        doc = _journey("t", trigger)
        assert not validator.is_valid(doc), trigger
        with pytest.raises(InvalidJourney):
            parse_journey(doc)
    r = env.client.put("/api/v1/journeys/t", headers=env.admin,
                       json=_journey("t", {"identify": "yes"}))
    assert r.status_code == 400 and r.json()["error"]["details"][0]["path"] == \
        "trigger.identify"


def test_simulation_and_test_run_of_a_page_journey(env: Env) -> None:
    env.identify("kari")
    env.identify("ola")
    start = env.clock.now()
    env.send({"type": "page", "userId": "kari", "name": "Pricing"},
             {"type": "page", "userId": "ola", "name": "Home"})
    env.process()
    env.put(_journey("pricing", {"page": "Pricing"}))
    r = env.client.post("/api/v1/journeys/pricing/simulate", headers=env.admin,
                        json={"from": start.isoformat(), "to": "2026-02-01"})
    assert r.status_code == 200, r.text
    assert r.json()["entered"] == 1
    r = env.client.post("/api/v1/journeys/pricing/test", headers=env.admin,
                        json={"person": {"traits": {}}})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"
