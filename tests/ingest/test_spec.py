"""The Segment Spec as stored: time fields and clock skew, ids, merging, what clients send."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from partitur.clock import ManualClock, to_us
from partitur.ingest.decode import Limits, decode, to_rows
from tests.ingest.conftest import Stored

NOW = datetime(2026, 1, 1, tzinfo=UTC)  # the test clock: every receivedAt


def us(text: str) -> int:
    return to_us(datetime.fromisoformat(text))


@pytest.fixture
def send(
    client: TestClient, auth: dict[str, str], stored: Callable[[], list[Stored]]
) -> Callable[..., Stored]:
    """Send one call (or a batch) and return the single event it stored."""

    def run(body: dict[str, Any], path: str = "/v1/track") -> Stored:
        before = len(stored())
        r = client.post(path, json=body, headers=auth)
        assert r.status_code == 200, r.text
        events = stored()
        assert len(events) == before + 1
        return events[-1]

    return run


def track(**fields: Any) -> dict[str, Any]:
    return {"userId": "u1", "event": "Viewed", **fields}


# -- time ------------------------------------------------------------------------------------


def test_received_at_is_ours_and_a_client_receivedat_is_ignored(
    send: Callable[..., Stored], clock: ManualClock
) -> None:
    event = send(track(receivedAt="2001-01-01T00:00:00Z"))
    assert event.received_at == to_us(NOW)
    assert event.body["receivedAt"] == "2026-01-01T00:00:00Z"
    clock.advance(timedelta(seconds=90))
    assert send(track()).received_at == to_us(NOW) + 90_000_000


def test_clock_skew_is_corrected_with_sent_at(send: Callable[..., Stored]) -> None:
    """The client's clock is an hour and a bit behind; the event happened 10 s before sending."""
    event = send(track(timestamp="2025-12-31T22:49:50Z", sentAt="2025-12-31T22:50:00.000Z"))
    assert event.ts == to_us(NOW) - 10_000_000
    body = event.body
    assert body["timestamp"] == "2025-12-31T23:59:50Z"
    assert body["originalTimestamp"] == "2025-12-31T22:49:50Z"  # as the client said
    assert body["sentAt"] == "2025-12-31T22:50:00Z"
    assert body["receivedAt"] == "2026-01-01T00:00:00Z"


def test_original_timestamp_is_the_client_time_when_sent(send: Callable[..., Stored]) -> None:
    """RudderStack sends originalTimestamp; with sentAt it is what the skew applies to."""
    event = send(track(
        originalTimestamp="2026-01-01T05:00:00+05:00", timestamp="2020-01-01T00:00:00Z",
        sentAt="2026-01-01T05:00:03+05:00",
    ))
    assert event.ts == to_us(NOW) - 3_000_000
    assert event.body["originalTimestamp"] == "2026-01-01T05:00:00+05:00"


def test_a_timestamp_without_sent_at_is_kept_as_sent(send: Callable[..., Stored]) -> None:
    """Historical imports: the client's timestamp is the truth, however old."""
    event = send(track(timestamp="2019-05-01T12:00:00.250Z"), "/v1/track")
    assert event.ts == us("2019-05-01T12:00:00.250+00:00")
    assert event.body["timestamp"] == "2019-05-01T12:00:00.250000Z"
    assert event.body["originalTimestamp"] == "2019-05-01T12:00:00.250000Z"
    imported = send({"batch": [{"type": "track", **track(timestamp="2018-02-03T04:05:06Z")}]},
                    "/v1/import")
    assert imported.ts == us("2018-02-03T04:05:06+00:00")
    # Both given, no sentAt: the timestamp is what the client asks for.
    both = send(track(timestamp="2021-01-01T00:00:00Z", originalTimestamp="2021-01-01T00:00:09Z"))
    assert both.ts == us("2021-01-01T00:00:00+00:00")
    assert both.body["originalTimestamp"] == "2021-01-01T00:00:09Z"


def test_without_any_client_time_the_event_happened_when_received(
    send: Callable[..., Stored],
) -> None:
    event = send(track())
    assert event.ts == to_us(NOW)
    assert "originalTimestamp" not in event.body and "sentAt" not in event.body
    # sentAt alone says nothing about when the event happened.
    assert send(track(sentAt="2025-06-01T00:00:00Z")).ts == to_us(NOW)


def test_offsets_and_naive_times(send: Callable[..., Stored]) -> None:
    assert send(track(timestamp="2025-07-01T14:00:00+02:00")).ts == us("2025-07-01T12:00:00+00:00")
    assert send(track(timestamp="2025-07-01T12:00:00")).ts == us("2025-07-01T12:00:00+00:00")


def test_batch_sent_at_wins_over_the_events_own(send: Callable[..., Stored]) -> None:
    """The batch's sentAt is stamped when the request leaves; an event's may be from an earlier,
    failed attempt."""
    event = send({
        "sentAt": "2025-12-31T23:00:00Z",
        "batch": [{"type": "track", **track(timestamp="2025-12-31T22:59:58Z",
                                            sentAt="2025-12-31T22:59:59Z")}],
    }, "/v1/batch")
    assert event.ts == to_us(NOW) - 2_000_000
    assert event.body["sentAt"] == "2025-12-31T23:00:00Z"
    # analytics.js sends single events with their own sentAt.
    single = send(track(timestamp="2025-12-31T22:59:58Z", sentAt="2025-12-31T22:59:59Z"), "/v1/t")
    assert single.ts == to_us(NOW) - 1_000_000


def test_the_far_future_is_clamped_and_flagged(send: Callable[..., Stored]) -> None:
    soon = send(track(timestamp="2026-01-01T20:00:00Z"))  # within the 24 h allowance
    assert soon.ts == us("2026-01-01T20:00:00+00:00")
    assert "flags" not in soon.body["_partitur"]
    far = send(track(timestamp="2030-01-01T00:00:00Z"))
    assert far.ts == to_us(NOW)
    assert far.body["_partitur"]["flags"] == ["timestamp_clamped"]
    assert far.body["originalTimestamp"] == "2030-01-01T00:00:00Z"  # the client's claim is kept
    # A sentAt far behind the event time pushes the corrected time into the future, too.
    skewed = send(track(timestamp="2025-01-05T00:00:00Z", sentAt="2025-01-01T00:00:00Z"))
    assert skewed.ts == to_us(NOW)
    assert skewed.body["_partitur"]["flags"] == ["timestamp_clamped"]


def test_the_future_allowance_is_a_setting(make_services: Any, clock: ManualClock) -> None:
    from partitur.app import create_app

    services = make_services(max_future_seconds=60)
    key, _ = services.keys.create_write_key("web")
    with TestClient(create_app(services=services)) as client:
        r = client.post("/v1/track", json={**track(timestamp="2026-01-01T00:02:00Z"),
                                           "writeKey": key})
        assert r.status_code == 200
    with services.db.read() as tx:
        [(ts,)] = tx.execute("SELECT ts FROM events")
    assert ts == to_us(NOW)


# -- ids ---------------------------------------------------------------------------------------


def test_numeric_ids_are_stored_as_text(send: Callable[..., Stored]) -> None:
    event = send({"userId": 42, "anonymousId": 7.0, "event": "E", "messageId": 1001})
    assert (event.user_id, event.anonymous_id, event.message_id) == ("42", "7", "1001")
    assert (event.body["userId"], event.body["anonymousId"]) == ("42", "7")
    big = send({"userId": 123456789012345678901234567890, "event": "E"})
    assert big.user_id == "123456789012345678901234567890"
    assert send({"userId": 1.5, "event": "E"}).user_id == "1.5"
    group = send({"userId": 1, "groupId": 99}, "/v1/group")
    assert group.body["groupId"] == "99"
    alias = send({"userId": 5, "previousId": 4}, "/v1/alias")
    assert alias.body["previousId"] == "4"


def test_a_missing_message_id_is_generated(send: Callable[..., Stored]) -> None:
    first, second = send(track()), send(track())
    assert first.message_id != second.message_id
    assert uuid.UUID(first.message_id) and first.body["messageId"] == first.message_id


def test_empty_ids_count_as_missing(client: TestClient, auth: dict[str, str]) -> None:
    r = client.post("/v1/track", json={"userId": "", "anonymousId": "", "event": "E"},
                    headers=auth)
    assert r.status_code == 400
    assert r.json()["error"]["details"] == [{"index": 0, "field": "userId"}]


# -- batch-level fields ------------------------------------------------------------------------


def test_batch_context_and_integrations_are_merged_into_each_event(
    client: TestClient, auth: dict[str, str], stored: Callable[[], list[Stored]]
) -> None:
    body = {
        "context": {"library": {"name": "analytics-go", "version": "3.3.0"}, "ip": "10.0.0.1"},
        "integrations": {"All": False, "Mixpanel": True},
        "batch": [
            {"type": "track", "userId": "u", "event": "A"},
            {"type": "track", "userId": "u", "event": "B", "context": {"ip": "10.0.0.2"},
             "integrations": {"Mixpanel": False}},
        ],
    }
    assert client.post("/v1/batch", json=body, headers=auth).status_code == 200
    a, b = stored()
    assert a.body["context"] == body["context"]
    assert a.body["integrations"] == {"All": False, "Mixpanel": True}
    assert b.body["context"] == {"library": {"name": "analytics-go", "version": "3.3.0"},
                                 "ip": "10.0.0.2"}  # the event's own keys win
    assert b.body["integrations"] == {"All": False, "Mixpanel": False}


# -- what real clients send --------------------------------------------------------------------


def test_analytics_js_single_event(
    client: TestClient, write_key: str, stored: Callable[[], list[Stored]]
) -> None:
    body = {
        "timestamp": "2025-12-31T23:59:58.120Z",
        "integrations": {},
        "type": "page",
        "properties": {"path": "/pricing", "url": "https://shop.example/pricing"},
        "name": "Pricing",
        "context": {
            "page": {"path": "/pricing"}, "userAgent": "Mozilla/5.0",
            "library": {"name": "analytics.js", "version": "next-1.70.0"}, "locale": "de-DE",
        },
        "messageId": "ajs-next-1700000000000-abc",
        "anonymousId": "9f1c2a4e-0000-4000-8000-000000000000",
        "writeKey": write_key,
        "projectId": write_key,
        "userId": None,
        "sentAt": "2025-12-31T23:59:59.120Z",
        "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
    }
    r = client.post("/v1/p", content=json.dumps(body), headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    [event] = stored()
    assert event.type == "page" and event.event == "Pricing"
    assert event.ts == to_us(NOW) - 1_000_000
    assert event.body["_metadata"] == body["_metadata"]
    assert event.body["context"]["library"]["name"] == "analytics.js"
    assert "writeKey" not in event.body and "projectId" not in event.body


def test_analytics_js_batching(
    client: TestClient, write_key: str, stored: Callable[[], list[Stored]]
) -> None:
    """The batching dispatcher: /v1/b, the key at the top and in each event, one sentAt."""
    events = [
        {"type": "track", "event": f"E{i}", "anonymousId": "a", "writeKey": write_key,
         "messageId": f"ajs-{i}", "timestamp": "2025-12-31T23:59:50Z",
         "_metadata": {"retryCount": 1}}
        for i in range(3)
    ]
    body = {"writeKey": write_key, "batch": events, "sentAt": "2025-12-31T23:59:55.000Z"}
    r = client.post("/v1/b", content=json.dumps(body), headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    assert [e.ts for e in stored()] == [to_us(NOW) - 5_000_000] * 3


def test_rudderstack_fields(
    client: TestClient, auth: dict[str, str], stored: Callable[[], list[Stored]]
) -> None:
    event = {
        "type": "track", "event": "Order Completed", "userId": "u9", "anonymousId": "a9",
        "channel": "web", "rudderId": "r-1", "request_ip": "127.0.0.1",
        "originalTimestamp": "2025-12-31T23:59:00Z", "sentAt": "2025-12-31T23:59:30Z",
        "properties": {"total": 30}, "userProperties": {"tier": "gold"},
        "destinationProps": {"AF": {"af_uid": "x"}}, "action": "purchase",
        "integrations": {"All": True}, "messageId": "rs-1", "context": {"traits": {"a": 1}},
    }
    r = client.post("/v1/batch", json={"batch": [event], "sentAt": "2025-12-31T23:59:30Z"},
                    headers=auth)
    assert r.status_code == 200, r.text
    [stored_event] = stored()
    assert stored_event.ts == to_us(NOW) - 30_000_000
    for name in ("channel", "rudderId", "request_ip", "userProperties", "destinationProps",
                 "action"):
        assert stored_event.body[name] == event[name], name


def test_server_library_batches(
    client: TestClient, auth: dict[str, str], stored: Callable[[], list[Stored]]
) -> None:
    """analytics-go sends a batch-level messageId and context; analytics-java a sequence."""
    go = {"messageId": "batch-1", "sentAt": "2026-01-01T00:00:00Z",
          "context": {"library": {"name": "analytics-go", "version": "3.0.0"}},
          "batch": [{"type": "identify", "userId": "u", "traits": {"x": 1}, "messageId": "g1"}]}
    java = {"sequence": 3, "sentAt": "2026-01-01T00:00:00Z", "context": {},
            "batch": [{"type": "track", "userId": "u", "event": "E", "messageId": "j1"}]}
    for body in (go, java):
        r = client.post("/v1/batch", json=body, headers=auth)
        assert r.status_code == 200, r.text
    g, _ = stored()
    assert g.body["context"]["library"]["name"] == "analytics-go"


def test_unknown_top_level_keys_are_refused_by_default(
    client: TestClient, auth: dict[str, str]
) -> None:
    r = client.post("/v1/batch", headers=auth, json={"batch": [
        {"type": "track", "userId": "u", "event": "E"},
        {"type": "track", "userid": "u", "event": "E"},
    ]})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["details"] == [{"index": 1, "field": "userid"}]
    assert "event 1" in error["message"] and "'userid'" in error["message"]


def test_unknown_top_level_keys_can_be_kept() -> None:
    """With ``unknown_fields`` relaxed, extra keys are stored as sent, next to the Spec's."""
    limits = Limits(lenient=True)
    body = json.dumps({"batch": [
        {"type": "track", "userId": "u", "event": "E", "customerTier": "gold",
         "nested": {"a": [1, 2]}},
        {"type": "track", "userId": "u", "event": "F"},
    ]}).encode()
    rows, _ = to_rows(decode(body, None, limits), None, source_id="s",
                      received_us=to_us(NOW), limits=limits)
    first, second = (json.loads(row[9]) for row in rows)
    assert first["customerTier"] == "gold" and first["nested"] == {"a": [1, 2]}
    assert first["event"] == "E" and "customerTier" not in second
    single = json.dumps({"userId": "u", "event": "E", "extra": True}).encode()
    rows, _ = to_rows(decode(single, "track", limits), "track", source_id="s",
                      received_us=to_us(NOW), limits=limits)
    assert json.loads(rows[0][9])["extra"] is True
