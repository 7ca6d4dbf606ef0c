"""Export returns everything held about a person, found by any identifier; on both stores."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.services import Services
from tests.privacy.people import SHOP_PLAN, bob, erin, send


def export(client: TestClient, admin: dict[str, str], **params: str) -> Any:
    return client.get("/api/v1/privacy/export", params=params, headers=admin)


def test_export_holds_profile_identifiers_consent_events_log_and_rejected(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    erin(client, write_key)
    bob(client, write_key)
    settle()
    services.plan.apply_yaml(SHOP_PLAN)
    services.keys.update_source("web", plan_policy={"unplanned_events": "block"})
    send(client, write_key,
         {"type": "track", "userId": "erin-42", "event": "Newsletter Opened"},
         {"type": "track", "userId": "bob-7", "event": "Newsletter Opened"})
    settle()

    r = export(client, admin, type="anonymous_id", value="phone-erin")
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["subject"] == {"type": "anonymous_id", "value": "phone-erin"}
    assert data["profile"]["traits"] == {"email": "Erin@Example.com", "name": "Erin Example",
                                         "phone": "+49 151 12345678"}
    assert data["profiles"] == [data["profile"]["id"], *data["profile"]["merged_from"]]
    assert len(data["profiles"]) == 2
    assert {(i["type"], i["value"]) for i in data["identifiers"]} == {
        ("anonymous_id", "anon-erin"), ("anonymous_id", "phone-erin"), ("user_id", "erin-42"),
        ("email", "erin@example.com"), ("phone", "+4915112345678")}
    assert {i["profile"] for i in data["identifiers"]} == {data["profile"]["id"]}

    assert data["consent"] == {
        "marketing_email": {"granted": True, "at": "2025-12-01T10:02:00.000Z",
                            "source": data["consent"]["analytics"]["source"]},
        "analytics": data["consent"]["analytics"]}
    assert [c["granted"] for c in data["consent_history"]["marketing_email"]] == [True]

    assert [(e.get("type"), e.get("event") or e.get("name")) for e in data["events"]] == [
        ("page", "Home"), ("track", "App Opened"), ("identify", None), ("identify", None)]
    assert all(isinstance(e["seq"], int) for e in data["events"])
    assert data["queued_events"] == []

    kinds = sorted(entry["kind"] for entry in data["identity_log"])
    assert kinds.count("create") == 2 and kinds.count("merge") == 1
    assert kinds.count("link") == 5

    assert [(x["event"], x["action"], x["body"]["userId"]) for x in data["rejected_events"]] == [
        ("Newsletter Opened", "blocked", "erin-42")]
    assert data["rejected_events"][0]["source_name"] == "web"
    assert "bob" not in r.text


def test_export_includes_events_still_waiting_for_the_worker(make_services: Any) -> None:
    services: Services = make_services(worker_enabled=False)
    key, _ = services.keys.create_write_key("web")
    admin = {"Authorization": f"Bearer {services.keys.create_admin_key('t')}"}
    with TestClient(create_app(services=services)) as client:
        erin(client, key)
        bob(client, key)
        r = export(client, admin, type="user_id", value="erin-42")
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["profile"] is None and data["events"] == []
        assert len(data["queued_events"]) == 4
        assert {(i["type"], i["value"], i["profile"]) for i in data["identifiers"]} == {
            ("anonymous_id", "anon-erin", None), ("anonymous_id", "phone-erin", None),
            ("email", "erin@example.com", None), ("phone", "+4915112345678", None)}


def test_unknown_person_is_404_and_bad_input_400(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    bob(client, write_key)
    settle()
    r = export(client, admin, type="email", value="nobody@example.com")
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "nothing is held for that email"
    for params, message in [
        ({"type": "email"}, "'value' is required"),
        ({"value": "bob-7"}, "'type' is required"),
        ({"type": "shoe_size", "value": "44"}, "'type' must be one of"),
        ({"type": "email", "value": "bob"}, "is not a usable email"),
        ({"type": "email", "value": "a@b.c", "limit": "3"}, "unknown field 'limit'"),
    ]:
        r = export(client, admin, **params)
        assert r.status_code == 400, (params, r.text)
        assert message in r.json()["error"]["message"], (params, r.text)
    assert client.get("/api/v1/privacy/export",
                      params={"type": "user_id", "value": "bob-7"}).status_code == 401
    trail = client.get("/api/v1/privacy/audit", headers=admin).json()["audit"]
    assert [(a["action"], a["detail"]["found"]) for a in trail] == [("export", False)]
