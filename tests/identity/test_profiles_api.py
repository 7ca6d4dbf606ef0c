"""Identity and profiles end to end: events in over the tracking API, profiles out over the
management API, on both stores."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from partitur.services import Services


def send(client: TestClient, key: str, *events: dict[str, Any]) -> None:
    r = client.post("/v1/batch", json={"writeKey": key, "batch": list(events)})
    assert r.status_code == 200, r.text


def lookup(client: TestClient, admin: dict[str, str], kind: str, value: str) -> Any:
    r = client.get("/api/v1/profiles/lookup", params={"type": kind, "value": value},
                   headers=admin)
    assert r.status_code == 200, r.text
    return r.json()


def idents(profile: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i["type"], i["value"]) for i in profile["identifiers"]}


def test_anonymous_visitor_identified_on_second_device_is_one_profile(
    client: TestClient, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    send(client, write_key,
         {"type": "page", "anonymousId": "laptop-1", "name": "Home"},
         {"type": "identify", "anonymousId": "laptop-1", "userId": "kari",
          "traits": {"email": " Kari@Example.COM ", "plan": "free"}})
    settle()
    send(client, write_key,
         {"type": "track", "anonymousId": "phone-7", "event": "App Opened"},
         {"type": "identify", "anonymousId": "phone-7", "userId": "kari",
          "traits": {"plan": "pro"}})
    settle()
    profile = lookup(client, admin, "email", "kari@example.com")
    assert idents(profile) == {
        ("anonymous_id", "laptop-1"), ("anonymous_id", "phone-7"), ("user_id", "kari"),
        ("email", "kari@example.com"),
    }
    assert profile["traits"]["plan"] == "pro"
    assert profile["event_count"] == 4
    assert profile["first_seen"] and profile["last_seen"]
    same = lookup(client, admin, "anonymous_id", "phone-7")
    assert same["id"] == profile["id"]
    # The merged-away profile id redirects to the survivor.
    for old in profile["merged_from"]:
        r = client.get(f"/api/v1/profiles/{old}", headers=admin, follow_redirects=False)
        assert r.status_code == 308
        assert r.headers["location"].endswith(profile["id"])
        assert client.get(f"/api/v1/profiles/{old}", headers=admin).json()["id"] == profile["id"]


def test_second_user_id_on_shared_device_starts_new_profile(
    client: TestClient, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    send(client, write_key,
         {"type": "identify", "anonymousId": "family-ipad", "userId": "anna"},
         {"type": "identify", "anonymousId": "family-ipad", "userId": "bjorn"})
    settle()
    anna = lookup(client, admin, "user_id", "anna")
    bjorn = lookup(client, admin, "user_id", "bjorn")
    assert anna["id"] != bjorn["id"]
    assert ("anonymous_id", "family-ipad") in idents(anna)
    assert ("user_id", "anna") not in idents(bjorn)
    log = client.get(f"/api/v1/profiles/{bjorn['id']}/identity", headers=admin).json()["log"]
    refused = [e for e in log if e["kind"] == "refuse"]
    assert refused and "user_id" in refused[0]["detail"]["reason"]


def test_blocked_values_never_link(
    client: TestClient, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    send(client, write_key,
         {"type": "identify", "anonymousId": "null", "userId": "u-1"},
         {"type": "identify", "anonymousId": "null", "userId": "u-2"},
         {"type": "identify", "anonymousId": "a-9", "userId": "anonymous"})
    settle()
    one, two = lookup(client, admin, "user_id", "u-1"), lookup(client, admin, "user_id", "u-2")
    assert one["id"] != two["id"]
    r = client.get("/api/v1/profiles/lookup", params={"type": "anonymous_id", "value": "null"},
                   headers=admin)
    assert r.status_code == 404
    assert idents(lookup(client, admin, "anonymous_id", "a-9")) == {("anonymous_id", "a-9")}


def test_phone_normalised_and_device_id_linked(
    client: TestClient, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    send(client, write_key, {
        "type": "identify", "userId": "p1", "traits": {"phone": "+47 912 34 567"},
        "context": {"device": {"id": "dev-42"}},
    })
    settle()
    profile = lookup(client, admin, "phone", "+4791234567")
    assert ("device_id", "dev-42") in idents(profile)
    assert lookup(client, admin, "device_id", "dev-42")["id"] == profile["id"]


def test_trait_survivorship_latest_by_timestamp_and_first(
    make_services: Any, admin_token: str
) -> None:
    services: Services = make_services(trait_survivorship={"signup_source": "first"})
    from partitur.app import create_app

    key, _ = services.keys.create_write_key("web")
    admin = {"Authorization": f"Bearer {services.keys.create_admin_key()}"}
    with TestClient(create_app(services=services)) as client:
        send(client, key,
             {"type": "identify", "userId": "t1", "timestamp": "2025-12-02T00:00:00Z",
              "traits": {"plan": "pro", "signup_source": "ad"}},
             {"type": "identify", "userId": "t1", "timestamp": "2025-12-01T00:00:00Z",
              "traits": {"plan": "free", "signup_source": "organic"}})
        from tests.conftest import wait_processed

        wait_processed(services)
        profile = lookup(client, admin, "user_id", "t1")
    # The older event arrived last but does not overwrite the newer plan ...
    assert profile["traits"]["plan"] == "pro"
    # ... while signup_source keeps the earliest value.
    assert profile["traits"]["signup_source"] == "organic"


def test_consent_from_category_preferences(
    client: TestClient, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    send(client, write_key,
         {"type": "track", "userId": "c1", "event": "Consent Given",
          "timestamp": "2025-12-01T00:00:00Z",
          "context": {"consent": {"categoryPreferences": {"marketing_email": True, "sms": False}}}},
         {"type": "track", "userId": "c1", "event": "Consent Changed",
          "timestamp": "2025-12-03T00:00:00Z",
          "context": {"consent": {"categoryPreferences": {"marketing_email": False}}}})
    settle()
    consent = lookup(client, admin, "user_id", "c1")["consent"]
    assert consent["marketing_email"]["granted"] is False
    assert consent["marketing_email"]["at"].startswith("2025-12-03")
    assert consent["sms"]["granted"] is False
    assert consent["sms"]["source"]


def test_events_timeline_paginated_newest_first(
    client: TestClient, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    send(client, write_key, *[
        {"type": "track", "userId": "tl", "event": f"E{i}",
         "timestamp": f"2025-12-01T00:00:{i:02d}Z"} for i in range(7)
    ])
    settle()
    pid = lookup(client, admin, "user_id", "tl")["id"]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"/api/v1/profiles/{pid}/events", params=params, headers=admin).json()
        seen += [e["event"] for e in page["events"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"E{i}" for i in reversed(range(7))]
    bad = client.get(f"/api/v1/profiles/{pid}/events", params={"cursor": "x"}, headers=admin)
    assert bad.status_code == 400


def test_search_by_trait(
    client: TestClient, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    send(client, write_key,
         {"type": "identify", "userId": "s1", "traits": {"plan": "pro", "seats": 5}},
         {"type": "identify", "userId": "s2", "traits": {"plan": "free"}},
         {"type": "identify", "userId": "s3", "traits": {"plan": "pro"}})
    settle()
    r = client.get("/api/v1/profiles", params={"trait": "plan", "value": "pro"}, headers=admin)
    users = {next(i["value"] for i in p["identifiers"] if i["type"] == "user_id")
             for p in r.json()["profiles"]}
    assert users == {"s1", "s3"}
    r = client.get("/api/v1/profiles", params={"trait": "seats", "value": "5"}, headers=admin)
    assert len(r.json()["profiles"]) == 1


def test_unmerge_restores_both_profiles(
    client: TestClient, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    send(client, write_key,
         {"type": "track", "anonymousId": "kiosk", "event": "Viewed",
          "context": {"traits": {"color": "red"}}},
         {"type": "identify", "userId": "liv", "traits": {"name": "Liv"}})
    settle()
    send(client, write_key, {"type": "identify", "anonymousId": "kiosk", "userId": "liv"})
    settle()
    merged = lookup(client, admin, "user_id", "liv")
    assert ("anonymous_id", "kiosk") in idents(merged)
    assert merged["traits"] == {"name": "Liv", "color": "red"}
    explain = client.get(f"/api/v1/profiles/{merged['id']}/identity", headers=admin).json()
    merge = next(e for e in explain["log"] if e["kind"] == "merge")
    assert merge["message_id"]

    r = client.post(f"/api/v1/profiles/{merged['id']}/unmerge", json={"merge": merge["id"]},
                    headers=admin)
    assert r.status_code == 200, r.text
    result = r.json()
    liv = lookup(client, admin, "user_id", "liv")
    kiosk = lookup(client, admin, "anonymous_id", "kiosk")
    assert liv["id"] != kiosk["id"]
    # The anonymous profile was older, so it survived the merge; the user's profile comes back.
    assert kiosk["id"] == result["profile"] == merged["id"]
    assert liv["id"] == result["restored"]
    assert kiosk["traits"] == {"color": "red"}
    assert liv["traits"] == {"name": "Liv"}
    assert liv["event_count"] + kiosk["event_count"] == 3
    again = client.post(f"/api/v1/profiles/{merged['id']}/unmerge", json={"merge": merge["id"]},
                        headers=admin)
    assert again.status_code == 409
    # The next event carrying both ids does not merge them again.
    send(client, write_key, {"type": "identify", "anonymousId": "kiosk", "userId": "liv"})
    settle()
    assert lookup(client, admin, "anonymous_id", "kiosk")["id"] == kiosk["id"]


def test_profile_api_needs_admin_and_clear_errors(client: TestClient, write_key: str) -> None:
    assert client.get("/api/v1/profiles/lookup?type=email&value=a@b.c").status_code == 401
    r = client.get("/api/v1/profiles/lookup?type=email&value=a@b.c",
                   headers={"Authorization": f"Bearer {write_key}"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"


def test_nul_characters_in_traits_do_not_stall_the_worker(
    client: TestClient, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    send(client, write_key, {"type": "identify", "userId": "nul-user",
                             "traits": {"name": "a\u0000b", "email": "x\u0000@example.com"}})
    settle()
    profile = lookup(client, admin, "user_id", "nul-user")
    assert profile["traits"]["name"] == "a\u0000b"
    assert idents(profile) == {("user_id", "nul-user")}
