"""The audit trail records every export and erasure, by whom and how much, and never a piece
of personal data."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from partitur.identity.extract import identifier_hash
from partitur.services import Services
from tests.privacy.people import ERIN_TRACES, erin


def trail(client: TestClient, admin: dict[str, str], **params: Any) -> Any:
    r = client.get("/api/v1/privacy/audit", params=params, headers=admin)
    assert r.status_code == 200, r.text
    return r.json()


def test_audit_records_hold_counts_and_hashes_never_personal_data(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str],
    admin_token: str, settle: Any,
) -> None:
    erin(client, write_key)
    settle()
    profile = client.get("/api/v1/profiles/lookup", params={"type": "user_id",
                         "value": "erin-42"}, headers=admin).json()
    assert client.get("/api/v1/privacy/export", params={"type": "email",
                      "value": "erin@example.com"}, headers=admin).status_code == 200
    assert client.post("/api/v1/privacy/erase", json={"type": "user_id", "value": "erin-42"},
                       headers=admin).status_code == 200
    assert client.post("/api/v1/privacy/erase", json={"type": "user_id", "value": "erin-42"},
                       headers=admin).status_code == 404

    records = trail(client, admin)["audit"]
    assert [r["action"] for r in records] == ["erase", "erase", "export"]
    missed, erased, exported = records
    assert {r["actor"] for r in records} == {admin_token[:8]}
    assert exported["detail"] == {
        "found": True, "type": "email", "subject": identifier_hash("email", "erin@example.com"),
        "profile": profile["id"], "profiles": 2, "events": 4, "queued_events": 0,
        "identity_log": exported["detail"]["identity_log"], "rejected_events": 0}
    assert erased["detail"]["subject"] == identifier_hash("user_id", "erin-42")
    assert erased["detail"]["profile"] == profile["id"]
    assert erased["detail"]["events_erased"] == 4
    assert missed["detail"] == {"found": False, "type": "user_id",
                                "subject": identifier_hash("user_id", "erin-42")}
    assert all(r["at"].endswith("Z") for r in records)

    text = json.dumps(records).lower()
    with services.db.read() as tx:
        text += json.dumps(tx.execute("SELECT * FROM audit_log")).lower()
    for needle in (*ERIN_TRACES, "erin"):
        assert needle.lower() not in text, needle


def test_audit_pages_and_filters(
    client: TestClient, services: Services, admin: dict[str, str]
) -> None:
    for value in ("a@example.com", "b@example.com", "c@example.com"):
        client.post("/api/v1/privacy/erase", json={"type": "email", "value": value},
                    headers=admin)
    client.get("/api/v1/privacy/export", params={"type": "email", "value": "d@example.com"},
               headers=admin)
    first = trail(client, admin, limit=2)
    assert [r["action"] for r in first["audit"]] == ["export", "erase"]
    rest = trail(client, admin, limit=2, cursor=first["next_cursor"])
    assert [r["action"] for r in rest["audit"]] == ["erase", "erase"]
    assert rest["next_cursor"] is None
    assert len({r["id"] for r in first["audit"] + rest["audit"]}) == 4
    assert [r["action"] for r in trail(client, admin, action="export")["audit"]] == ["export"]
    for params, message in [({"action": "delete"}, "'action' must be one of erase, export"),
                            ({"cursor": "x"}, "'cursor'"), ({"limit": "0"}, "'limit'")]:
        r = client.get("/api/v1/privacy/audit", params=params, headers=admin)
        assert r.status_code == 400 and message in r.json()["error"]["message"], r.text
    assert client.get("/api/v1/privacy/audit").status_code == 401
