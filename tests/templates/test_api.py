"""/api/v1/templates: versions, listing, deletion and preview, on both stores."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.conftest import wait_processed

WELCOME = {
    "channel": "email",
    "description": "first mail",
    "subject": "Welcome {{ profile.traits.first_name | default('there') }}",
    "text": "Plan {{ event.properties.plan }}",
}


def test_put_get_versions_delete(client: TestClient, admin: dict[str, str]) -> None:
    r = client.put("/api/v1/templates/welcome-email", json=WELCOME, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1 and r.json()["changed"] is True
    same = client.put("/api/v1/templates/welcome-email", json=WELCOME, headers=admin)
    assert same.status_code == 200 and same.json()["version"] == 1
    assert same.json()["changed"] is False
    changed = client.put("/api/v1/templates/welcome-email",
                         json={**WELCOME, "subject": "Hello"}, headers=admin)
    assert changed.json()["version"] == 2
    assert client.get("/api/v1/templates/welcome-email", headers=admin).json()["subject"] == (
        "Hello")
    old = client.get("/api/v1/templates/welcome-email?version=1", headers=admin).json()
    assert old["subject"] == WELCOME["subject"] and old["version"] == 1
    versions = client.get("/api/v1/templates/welcome-email/versions", headers=admin).json()
    assert [v["version"] for v in versions["versions"]] == [2, 1]
    assert client.delete("/api/v1/templates/welcome-email", headers=admin).status_code == 204
    gone = client.get("/api/v1/templates/welcome-email", headers=admin)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    again = client.put("/api/v1/templates/welcome-email", json=WELCOME, headers=admin)
    assert again.status_code == 201 and again.json()["version"] == 3  # numbering goes on


def test_invalid_templates_are_refused_with_every_problem(
    client: TestClient, admin: dict[str, str]
) -> None:
    r = client.put("/api/v1/templates/bad", headers=admin,
                   json={"channel": "email", "subject": "{{ x", "html": "{{ nobody }}"})
    assert r.status_code == 400
    error = r.json()["error"]
    messages = [d["message"] for d in error["details"]]
    assert messages[0].startswith("subject: line 1:")
    assert "html: unknown variable 'nobody' (templates see event, journey, profile, " \
           "unsubscribe_url)" in messages
    assert error["message"].startswith("template 'bad' is invalid: subject: line 1")
    r = client.put("/api/v1/templates/x", headers=admin, json={"channel": "fax"})
    assert r.status_code == 400 and "'channel' must be one of" in r.json()["error"]["message"]
    r = client.put("/api/v1/templates/bad%20key", headers=admin, json=WELCOME)
    assert r.status_code == 400 and "not a template key" in r.json()["error"]["message"]
    assert client.put("/api/v1/templates/x", json=WELCOME).status_code == 401


def test_listing_pages_by_key(client: TestClient, admin: dict[str, str]) -> None:
    for key in ("c", "a", "b"):
        client.put(f"/api/v1/templates/{key}", json={"channel": "sms", "text": key},
                   headers=admin)
    client.put("/api/v1/templates/mail", json=WELCOME, headers=admin)
    first = client.get("/api/v1/templates?channel=sms&limit=2", headers=admin).json()
    assert [t["key"] for t in first["templates"]] == ["a", "b"]
    rest = client.get(f"/api/v1/templates?channel=sms&cursor={first['next_cursor']}",
                      headers=admin).json()
    assert [t["key"] for t in rest["templates"]] == ["c"] and rest["next_cursor"] is None


def test_preview_with_a_profile_and_with_sample_data(
    client: TestClient, admin: dict[str, str], write_key: str, services: Any
) -> None:
    client.put("/api/v1/templates/welcome-email", json=WELCOME, headers=admin)
    client.post("/v1/identify", json={"writeKey": write_key, "userId": "kari",
                                      "traits": {"first_name": "Kari"}})
    wait_processed(services)
    profile = client.get("/api/v1/profiles/lookup?type=user_id&value=kari",
                         headers=admin).json()["id"]
    r = client.post("/api/v1/templates/welcome-email/preview", headers=admin,
                    json={"profile_id": profile, "event": {"properties": {"plan": "pro"}}})
    assert r.status_code == 200, r.text
    assert r.json()["rendered"] == {"subject": "Welcome Kari", "text": "Plan pro"}
    sample = client.post("/api/v1/templates/welcome-email/preview", headers=admin,
                         json={"profile": {"traits": {}}, "event": {"properties": {"plan": "x"}}})
    assert sample.json()["rendered"]["subject"] == "Welcome there"
    missing = client.post("/api/v1/templates/welcome-email/preview", headers=admin,
                          json={"profile": {"traits": {}}})
    assert missing.status_code == 400
    assert "'dict object' has no attribute 'properties'" in missing.json()["error"]["message"]
    draft = client.post("/api/v1/templates/welcome-email/preview", headers=admin,
                        json={"template": {"channel": "sms", "text": "Hi {{ profile.id }}"},
                              "profile": {"id": "p9"}})
    assert draft.json()["rendered"] == {"text": "Hi p9"}
    unknown = client.post("/api/v1/templates/welcome-email/preview", headers=admin,
                          json={"profile_id": "nobody"})
    assert unknown.status_code == 404
