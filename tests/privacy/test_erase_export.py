"""Erasure leaves no trace of a person in any table; export returns what is held."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from partitur.services import Services
from tests.identity.test_profiles_api import send

TABLES_WITH_PERSONAL_DATA = {
    "events": "body", "rejected_events": "body", "identifiers": "key",
    "identity_log": "COALESCE(id_value, '') || detail", "profiles": "traits || id",
    "profile_traits": "COALESCE(value, '')", "audit_log": "detail",
}


def person(client: TestClient, key: str) -> None:
    send(client, key,
         {"type": "page", "anonymousId": "anon-erase", "name": "Home"},
         {"type": "track", "anonymousId": "phone-erase", "event": "App Opened"},
         {"type": "identify", "anonymousId": "anon-erase", "userId": "erin",
          "traits": {"email": "erin@example.com", "name": "Erin"},
          "context": {"consent": {"categoryPreferences": {"marketing_email": True}}}},
         {"type": "identify", "anonymousId": "phone-erase", "userId": "erin"},
         {"type": "identify", "userId": "someone-else", "traits": {"name": "Other"}})


def test_export_then_erase_everywhere(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    person(client, write_key)
    settle()
    r = client.get("/api/v1/privacy/export", params={"type": "email", "value": "Erin@Example.com"},
                   headers=admin)
    assert r.status_code == 200, r.text
    data = r.json()
    assert {e["anonymousId"] for e in data["events"] if "anonymousId" in e} == {
        "anon-erase", "phone-erase"}
    assert len(data["events"]) == 4
    assert data["profile"]["consent"]["marketing_email"]["granted"] is True
    assert ("email", "erin@example.com") in {
        (i["type"], i["value"]) for i in data["profile"]["identifiers"]}

    r = client.post("/api/v1/privacy/erase", json={"type": "user_id", "value": "erin"},
                    headers=admin)
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary["events_erased"] == 4 and summary["profiles_erased"] >= 2

    with services.db.read() as tx:
        for table, column in TABLES_WITH_PERSONAL_DATA.items():
            for needle in ("erin", "anon-erase", "phone-erase"):
                hits = tx.execute(
                    f"SELECT COUNT(*) FROM {table} WHERE {column} LIKE ?", (f"%{needle}%",))
                assert hits[0][0] == 0, (table, needle)
        assert tx.one("SELECT COUNT(*) FROM suppressions")[0] == 4  # type: ignore[index]
    # The other person is untouched.
    other = client.get("/api/v1/profiles/lookup", params={"type": "user_id",
                       "value": "someone-else"}, headers=admin)
    assert other.status_code == 200

    # Future events from erased identifiers are dropped, never a profile again.
    send(client, write_key, {"type": "track", "userId": "erin", "event": "Came Back"})
    settle()
    gone = client.get("/api/v1/profiles/lookup", params={"type": "user_id", "value": "erin"},
                      headers=admin)
    assert gone.status_code == 404
    with services.db.read() as tx:
        assert tx.execute("SELECT COUNT(*) FROM events WHERE body LIKE '%erin%'")[0][0] == 0

    again = client.post("/api/v1/privacy/erase", json={"type": "user_id", "value": "erin"},
                        headers=admin)
    assert again.status_code == 404
    trail = client.get("/api/v1/privacy/audit", headers=admin).json()["audit"]
    assert [a["action"] for a in trail][:3] == ["erase", "erase", "export"]
    assert trail[0]["detail"] == {"found": False}


def test_privacy_bad_input(client: TestClient, admin: dict[str, str]) -> None:
    r = client.post("/api/v1/privacy/erase", json={"type": "shoe", "value": "x"}, headers=admin)
    assert r.status_code == 400 and "type" in r.json()["error"]["message"]
    r = client.post("/api/v1/privacy/erase", json={"email": "x"}, headers=admin)
    assert r.status_code == 400
    r = client.get("/api/v1/privacy/export", params={"type": "email", "value": "no@one.org"},
                   headers=admin)
    assert r.status_code == 404
    assert client.post("/api/v1/privacy/erase", json={"type": "email", "value": "a@b.c"}
                       ).status_code == 401
