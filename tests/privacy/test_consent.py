"""Consent per purpose with its history: when each answer changed, from which source and
which event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.testclient import TestClient

from partitur.clock import to_us
from partitur.privacy.consent import Statement, history, preferences
from partitur.services import Services
from tests.privacy.people import consent, erin, send


def at(text: str) -> int:
    return to_us(datetime.fromisoformat(text))


def test_history_lists_changes_in_event_time_order() -> None:
    said = [
        Statement(at("2025-05-03T00:00:00Z"), 3, "src_app", "m3", "track", "Opened",
                  {"sms": True}),
        Statement(at("2025-05-01T00:00:00Z"), 1, "src_web", "m1", "identify", None,
                  {"sms": False, "analytics": True}),
        Statement(at("2025-05-02T00:00:00Z"), 9, "src_web", "m9", "page", "Home",
                  {"sms": False, "analytics": True}),  # arrived late; repeats: no change
        Statement(at("2025-05-04T00:00:00Z"), 4, "src_web", "m4", "page", "Home",
                  {"sms": False}),
    ]
    got = history(said, {"src_web": "web"})
    assert list(got) == ["analytics", "sms"]
    assert [(c["granted"], c["at"], c["source"], c["source_name"], c["event"]["message_id"])
            for c in got["sms"]] == [
        (False, "2025-05-01T00:00:00.000Z", "src_web", "web", "m1"),
        (True, "2025-05-03T00:00:00.000Z", "src_app", None, "m3"),
        (False, "2025-05-04T00:00:00.000Z", "src_web", "web", "m4"),
    ]
    assert len(got["analytics"]) == 1
    assert history([]) == {}


def test_preferences_take_only_true_or_false() -> None:
    assert preferences({"context": consent(sms=True, email="yes", analytics=False)}) == {
        "sms": True, "analytics": False}
    for message in [{}, {"context": []}, {"context": {"consent": "all"}},
                    {"context": {"consent": {"categoryPreferences": ["sms"]}}}]:
        assert preferences(message) == {}


def test_consent_view_shows_current_answers_and_history(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    app_key, _ = services.keys.create_write_key("app")
    send(client, write_key, {
        "type": "identify", "userId": "kim", "timestamp": "2025-06-01T09:00:00Z",
        "messageId": "web-1", "context": consent(marketing_email=True, sms=False)})
    send(client, app_key, {
        "type": "track", "userId": "kim", "event": "Settings Changed", "messageId": "app-1",
        "timestamp": "2025-06-02T09:00:00Z", "context": consent(marketing_email=False)})
    send(client, write_key, {
        "type": "page", "userId": "kim", "name": "Home", "messageId": "web-2",
        "timestamp": "2025-06-03T09:00:00Z", "context": consent(marketing_email=False, sms=True)})
    # An old statement arriving last: history puts it first; it changes no current answer.
    send(client, app_key, {
        "type": "track", "userId": "kim", "event": "Installed", "messageId": "app-0",
        "timestamp": "2025-05-30T09:00:00Z", "context": consent(marketing_email=False)})
    send(client, write_key, {"type": "track", "userId": "kim", "event": "No Consent Here"})
    settle()
    profile = client.get("/api/v1/profiles/lookup", params={"type": "user_id", "value": "kim"},
                         headers=admin).json()

    r = client.get(f"/api/v1/profiles/{profile['id']}/consent", headers=admin)
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["profile_id"] == profile["id"]
    assert view["consent"] == {
        "marketing_email": {"granted": False, "at": "2025-06-02T09:00:00.000Z",
                            "source": view["consent"]["marketing_email"]["source"],
                            "source_name": "app"},
        "sms": {"granted": True, "at": "2025-06-03T09:00:00.000Z",
                "source": view["consent"]["sms"]["source"], "source_name": "web"},
    }
    changes = [(c["granted"], c["at"][:10], c["source_name"], c["event"]["message_id"],
                c["event"]["type"]) for c in view["history"]["marketing_email"]]
    assert changes == [
        (False, "2025-05-30", "app", "app-0", "track"),
        (True, "2025-06-01", "web", "web-1", "identify"),
        (False, "2025-06-02", "app", "app-1", "track"),
    ]
    assert [(c["granted"], c["event"]["message_id"]) for c in view["history"]["sms"]] == [
        (False, "web-1"), (True, "web-2")]
    assert view["history"]["sms"][-1]["event"]["event"] == "Home"


def test_consent_view_follows_merges_and_knows_unknown_profiles(
    client: TestClient, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    erin(client, write_key)
    settle()
    profile = client.get("/api/v1/profiles/lookup", params={"type": "user_id",
                         "value": "erin-42"}, headers=admin).json()
    old = profile["merged_from"][0]
    r = client.get(f"/api/v1/profiles/{old}/consent", headers=admin, follow_redirects=False)
    assert r.status_code == 308
    assert r.headers["location"] == f"/api/v1/profiles/{profile['id']}/consent"
    followed = client.get(f"/api/v1/profiles/{old}/consent", headers=admin).json()
    assert set(followed["history"]) == {"marketing_email", "analytics"}
    r = client.get("/api/v1/profiles/p_nobody/consent", headers=admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert client.get(f"/api/v1/profiles/{profile['id']}/consent").status_code == 401
