"""Erasure leaves no trace of a person in any table, keeps them out afterwards, and touches
nobody else; on both stores, through the real app and worker."""

from __future__ import annotations

import threading
import time
from typing import Any

from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.services import Services
from tests.conftest import wait_processed
from tests.privacy.people import (
    SHOP_PLAN,
    bob,
    count,
    erin,
    lookup_status,
    send,
    traces,
)


def erase(client: TestClient, admin: dict[str, str], kind: str, value: str) -> Any:
    return client.post("/api/v1/privacy/erase", json={"type": kind, "value": value},
                       headers=admin)


def profile_ids(client: TestClient, admin: dict[str, str], kind: str, value: str) -> list[str]:
    r = client.get("/api/v1/profiles/lookup", params={"type": kind, "value": value},
                   headers=admin)
    assert r.status_code == 200, r.text
    return [r.json()["id"], *r.json()["merged_from"]]


def test_erase_by_email_leaves_no_trace_anywhere(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    erin(client, write_key)
    bob(client, write_key)
    settle()
    services.plan.apply_yaml(SHOP_PLAN)
    services.keys.update_source("web", plan_policy={"unplanned_events": "block",
                                                    "violations": "flag"})
    send(client, write_key,
         # blocked: in the rejected store only
         {"type": "track", "userId": "erin-42", "event": "Newsletter Opened"},
         # blocked, from a visitor nobody knows, but naming Erin's email
         {"type": "track", "anonymousId": "anon-visitor", "event": "Newsletter Opened",
          "properties": {"email": "ERIN@example.com"}},
         {"type": "track", "userId": "bob-7", "event": "Newsletter Opened"},
         # flagged: kept on her timeline and copied to the rejected store
         {"type": "track", "userId": "erin-42", "event": "Order Completed",
          "properties": {"order_id": 5}})
    settle()
    erins = profile_ids(client, admin, "email", "erin@example.com")
    assert len(erins) == 2  # laptop and phone, merged when she logged in on both
    assert traces(services) and count(services, "SELECT COUNT(*) FROM rejected_events") == 4

    r = erase(client, admin, "email", " Erin@Example.COM ")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "profile": erins[0], "profiles_erased": 2, "events_erased": 5,
        "queued_events_erased": 0, "identifiers_erased": 5, "pending_identifiers": 0,
        "identity_log_erased": r.json()["identity_log_erased"], "rejected_events_erased": 3,
        "failed_events_erased": 0,
        "deliveries_erased": 0, "web_messages_erased": 0, "suppressed_hashes": 5,
    }
    assert r.json()["identity_log_erased"] >= 6  # created twice, linked five times, merged

    assert traces(services) == []
    marks = ",".join("?" * len(erins))
    for table, column in [("profiles", "id"), ("profiles", "merged_into"),
                          ("profile_events", "profile_id"), ("profile_traits", "profile_id"),
                          ("identifiers", "profile_id"), ("identity_log", "profile_id"),
                          ("identity_log", "other_profile")]:
        assert count(services, f"SELECT COUNT(*) FROM {table} WHERE {column} IN ({marks})",
                     tuple(erins)) == 0, (table, column)
    assert count(services, "SELECT COUNT(*) FROM suppressions") == 5
    assert count(services, "SELECT COUNT(*) FROM event_queue") == 0

    # Bob is untouched: his profile, his events, his blocked event.
    assert lookup_status(client, admin, "email", "bob@example.com") == 200
    assert count(services, "SELECT COUNT(*) FROM events WHERE user_id = 'bob-7'") == 2
    assert count(services, "SELECT COUNT(*) FROM rejected_events") == 1
    assert count(services, "SELECT COUNT(*) FROM plan_violations WHERE message_id NOT IN "
                 "(SELECT message_id FROM rejected_events)") == 0
    assert count(services, "SELECT COUNT(*) FROM profiles") == 1


def test_events_sent_after_erasure_never_become_a_profile(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    erin(client, write_key)
    settle()
    assert erase(client, admin, "user_id", "erin-42").status_code == 200
    send(client, write_key,
         {"type": "track", "userId": "erin-42", "event": "Came Back"},
         {"type": "page", "anonymousId": "anon-erin", "name": "Home"},
         # a new device, recognised by her email or her phone alone
         {"type": "identify", "anonymousId": "new-laptop",
          "traits": {"email": "erin@example.com"}},
         {"type": "identify", "anonymousId": "new-phone", "traits": {"phone": "+4915112345678"}})
    settle()
    for kind, value in [("user_id", "erin-42"), ("anonymous_id", "anon-erin"),
                        ("email", "erin@example.com"), ("anonymous_id", "new-laptop"),
                        ("anonymous_id", "new-phone")]:
        assert lookup_status(client, admin, kind, value) == 404, (kind, value)
    assert traces(services, ("erin", "new-laptop", "new-phone")) == []
    assert count(services, "SELECT COUNT(*) FROM profiles") == 0


def test_erasure_reaches_events_still_waiting_for_the_worker(
    make_services: Any, admin_token: str
) -> None:
    services: Services = make_services(worker_enabled=False)
    key, _ = services.keys.create_write_key("web")
    admin = {"Authorization": f"Bearer {services.keys.create_admin_key('t')}"}
    with TestClient(create_app(services=services)) as client:
        erin(client, key)
        bob(client, key)
        assert count(services, "SELECT COUNT(*) FROM event_queue") == 6
        r = erase(client, admin, "email", "erin@example.com")
        assert r.status_code == 200, r.text
        summary = r.json()
        # Nothing processed yet: no profile, but all four of her queued events, found through
        # the identifiers they share (the email names only the first identify).
        assert summary["profile"] is None and summary["profiles_erased"] == 0
        assert summary["events_erased"] == summary["queued_events_erased"] == 4
        assert summary["pending_identifiers"] == 4  # erin-42, anon-erin, phone-erin, phone
        assert summary["suppressed_hashes"] == 5
        assert count(services, "SELECT COUNT(*) FROM event_queue") == 2
        assert traces(services) == []
    # The worker starts later and builds Bob, and nobody else.
    with TestClient(create_app(services=services, start_workers=True)) as client:
        wait_processed(services)
        assert lookup_status(client, admin, "user_id", "bob-7") == 200
        assert count(services, "SELECT COUNT(*) FROM profiles") == 1


def test_erasure_while_the_worker_and_ingest_run(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    """Erin keeps sending while she is erased: whatever the interleaving, nothing of her is
    left once everything sent has been processed."""
    erin(client, write_key)
    settle()
    stop = threading.Event()
    sent = [0]

    def keep_sending() -> None:
        deadline = time.monotonic() + 10
        n = 0
        while not stop.is_set() and n < 400 and time.monotonic() < deadline:
            send(client, write_key,
                 {"type": "track", "userId": "erin-42", "event": "Clicked", "properties": {"n": n}},
                 {"type": "identify", "anonymousId": f"tab-{n}",
                  "traits": {"email": "erin@example.com"}},
                 {"type": "track", "userId": "bob-7", "event": "Clicked"})
            n += 1
            sent[0] = n

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        deadline = time.monotonic() + 10
        while sent[0] < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        r = erase(client, admin, "email", "erin@example.com")
        assert r.status_code == 200, r.text
        time.sleep(0.2)
    finally:
        stop.set()
        sender.join(timeout=30)
    assert sent[0] >= 20
    settle()
    assert traces(services, ("erin", "tab-")) == []
    assert lookup_status(client, admin, "email", "erin@example.com") == 404
    assert lookup_status(client, admin, "user_id", "bob-7") == 200
    assert count(services, "SELECT COUNT(*) FROM events WHERE user_id = 'bob-7'") == sent[0]


def test_shared_device_erases_only_the_person(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    """Bob logs in on Erin's laptop: his event stays his. The identity log's note that the
    laptop could not be linked to him names her profile, so it goes."""
    erin(client, write_key)
    settle()
    send(client, write_key, {"type": "identify", "anonymousId": "anon-erin", "userId": "bob-7",
                             "traits": {"email": "bob@example.com"}})
    settle()
    assert count(services, "SELECT COUNT(*) FROM identity_log WHERE kind = 'refuse'") >= 1
    assert erase(client, admin, "user_id", "erin-42").status_code == 200
    assert lookup_status(client, admin, "user_id", "bob-7") == 200
    assert count(services, "SELECT COUNT(*) FROM events WHERE user_id = 'bob-7'") == 1
    assert count(services, "SELECT COUNT(*) FROM identity_log WHERE id_value = 'anon-erin'") == 0
    assert traces(services, ("erin@example.com", "erin-42", "phone-erin")) == []


def test_second_erasure_holds_nothing_and_is_audited(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    erin(client, write_key)
    settle()
    assert erase(client, admin, "phone", "+49 151 12345678").status_code == 200
    again = erase(client, admin, "email", "erin@example.com")
    assert again.status_code == 404
    assert again.json()["error"] == {"code": "not_found",
                                     "message": "nothing is held for that email"}
    trail = client.get("/api/v1/privacy/audit", headers=admin).json()["audit"]
    assert [(a["action"], a["detail"]["found"]) for a in trail] == [
        ("erase", False), ("erase", True)]


def test_bad_erasure_requests_are_refused_clearly(
    client: TestClient, services: Services, admin: dict[str, str]
) -> None:
    cases = [
        ({"type": "shoe", "value": "x"}, "'type' must be one of user_id, email"),
        ({"email": "a@b.c"}, "unknown field 'email'"),
        ({"type": "email"}, "'value' is required"),
        ({"value": "a@b.c"}, "'type' is required"),
        ({"type": "email", "value": ""}, "'value' must be a non-empty string"),
        ({"type": "email", "value": 42}, "'value' must be a non-empty string"),
        ({"type": "email", "value": "not-an-email"}, "is not a usable email"),
        ({"type": "anonymous_id", "value": "anonymous"}, "blocked value"),
        (["email", "a@b.c"], 'expected {"type"'),
    ]
    for body, message in cases:
        r = client.post("/api/v1/privacy/erase", json=body, headers=admin)
        assert r.status_code == 400, (body, r.text)
        assert message in r.json()["error"]["message"], (body, r.text)
    r = client.post("/api/v1/privacy/erase", content=b"{nope", headers=admin)
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"]["message"]
    r = client.post("/api/v1/privacy/erase", json={"type": "email", "value": "a@b.c"})
    assert r.status_code == 401
    assert count(services, "SELECT COUNT(*) FROM audit_log") == 0  # nothing was asked for


def test_erasure_takes_their_messages_and_export_shows_them(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    from partitur.channels.outbox import OutboundMessage, enqueue

    erin(client, write_key)
    bob(client, write_key)
    settle()
    [erin_id] = profile_ids(client, admin, "email", "erin@example.com")[:1]
    [bob_id] = profile_ids(client, admin, "email", "bob@example.com")[:1]
    now = services.clock.now_us()
    with services.db.transaction() as tx:
        enqueue(tx, [
            OutboundMessage(key="welcome:erin", profile_id=erin_id, channel="email",
                            template={"subject": "Hi {{ profile.traits.name }}", "text": "Hi"}),
            OutboundMessage(key="welcome:bob", profile_id=bob_id, channel="email",
                            template={"subject": "Hi", "text": "Hi"}),
        ], now)
    exported = client.get("/api/v1/privacy/export", headers=admin,
                          params={"type": "email", "value": "erin@example.com"}).json()
    assert [d["key"] for d in exported["deliveries"]] == ["welcome:erin"]
    assert exported["deliveries"][0]["channel"] == "email"

    r = erase(client, admin, "email", "erin@example.com")
    assert r.status_code == 200 and r.json()["deliveries_erased"] == 1
    with services.db.read() as tx:
        left = tx.execute("SELECT key FROM outbox ORDER BY key")
    assert [row[0] for row in left] == ["welcome:bob"]
