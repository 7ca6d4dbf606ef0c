"""The official client libraries, unmodified, against a real ``partitur serve``.

segment-analytics-python sends ``/v1/batch`` with the write key in HTTP Basic *and* in the body,
per-event ``timestamp`` and a batch-level ``sentAt``; rudder-sdk-python sends gzip bodies with
HTTP Basic only, ``channel: "server"`` and identify traits under ``context.traits``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import rudderstack.analytics as rudder_analytics
import segment.analytics as analytics
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from partitur.clock import to_us
from tests.helpers import PartiturServer

pytestmark = pytest.mark.serial


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PartiturServer]:
    with PartiturServer(Path(tmp_path_factory.mktemp("clients")) / "data") as running:
        yield running
        running.assert_clean_log()


def events_by_id(server: PartiturServer, prefix: str, count: int,
                 timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    """The stored bodies whose messageId starts with ``prefix``, once ``count`` are there."""
    deadline = time.monotonic() + timeout
    while True:
        with server.services() as services, services.db.read() as tx:
            rows = tx.execute(
                "SELECT message_id, ts, received_at, body FROM events WHERE message_id LIKE ?",
                (prefix + "%",),
            )
        found = {r[0]: {**json.loads(r[3]), "_ts": r[1], "_received": r[2]} for r in rows}
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) == count, sorted(found)
            return found
        time.sleep(0.1)


def calls(client: Any, prefix: str, when: datetime) -> None:
    """One of every call, as an application would make them."""
    ctx = {"ip": "127.0.0.1", "locale": "de-DE"}
    client.identify("user-1", {"email": "ada@example.com", "plan": "pro"}, context=dict(ctx),
                    timestamp=when, anonymous_id="anon-1", message_id=f"{prefix}identify")
    client.track("user-1", "Order Completed", {"total": 99.5, "currency": "EUR"},
                 context=dict(ctx), timestamp=when, message_id=f"{prefix}track")
    client.page("user-1", "Docs", "Quick start", {"path": "/docs"}, timestamp=when,
                message_id=f"{prefix}page")
    client.screen("user-1", "App", "Settings", {"tab": "privacy"}, timestamp=when,
                  message_id=f"{prefix}screen")
    client.group("user-1", "acme", {"name": "Acme", "employees": 20}, timestamp=when,
                 message_id=f"{prefix}group")
    client.alias("anon-1", "user-1", timestamp=when, message_id=f"{prefix}alias")


def check_calls(found: dict[str, dict[str, Any]], prefix: str, when: datetime) -> None:
    identify, track = found[f"{prefix}identify"], found[f"{prefix}track"]
    assert identify["type"] == "identify" and identify["anonymousId"] == "anon-1"
    assert track["type"] == "track" and track["event"] == "Order Completed"
    assert track["properties"] == {"total": 99.5, "currency": "EUR"}
    assert track["context"]["locale"] == "de-DE"
    page, screen = found[f"{prefix}page"], found[f"{prefix}screen"]
    assert (page["type"], page["category"], page["name"]) == ("page", "Docs", "Quick start")
    assert page["properties"] == {"path": "/docs"}
    assert (screen["type"], screen["name"], screen["properties"]) == (
        "screen", "Settings", {"tab": "privacy"})
    group = found[f"{prefix}group"]
    assert group["groupId"] == "acme" and group["traits"]["employees"] == 20
    alias = found[f"{prefix}alias"]
    assert (alias["previousId"], alias["userId"]) == ("anon-1", "user-1")
    for event in found.values():
        assert event["userId"] == "user-1"
        assert event["context"]["library"]["name"] == "analytics-python"
        assert "writeKey" not in event
        # Client and server share a clock here: the corrected time is the call's time, give
        # or take the request's own latency.
        assert datetime.fromisoformat(event["originalTimestamp"]) == when
        assert abs(event["_ts"] - to_us(when)) < 5_000_000
        assert event["sentAt"] and event["receivedAt"]


def moments_ago() -> datetime:
    now = datetime.now(UTC) - timedelta(minutes=10)
    return now.replace(microsecond=(now.microsecond // 1000) * 1000)


# -- segment-analytics-python -------------------------------------------------------------------


def test_segment_client_sync(server: PartiturServer) -> None:
    errors: list[Any] = []
    client = SegmentClient(server.create_write_key("segment-sync"), host=server.url,
                           sync_mode=True, on_error=lambda e, batch: errors.append(e))
    when = moments_ago()
    calls(client, "seg-sync-", when)
    assert errors == []
    check_calls(events_by_id(server, "seg-sync-", 6), "seg-sync-", when)


def test_segment_client_batches_with_gzip(server: PartiturServer) -> None:
    errors: list[Any] = []
    client = SegmentClient(server.create_write_key("segment-batch"), host=server.url,
                           gzip=True, upload_size=40, upload_interval=0.05,
                           on_error=lambda e, batch: errors.append(e))
    for i in range(150):
        client.track(f"user-{i % 7}", "Bulk", {"i": i}, message_id=f"seg-bulk-{i}")
    client.flush()
    client.join()
    assert errors == []
    found = events_by_id(server, "seg-bulk-", 150)
    assert sorted(e["properties"]["i"] for e in found.values()) == list(range(150))


def test_segment_module_api(server: PartiturServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analytics, "write_key", server.create_write_key("segment-module"))
    monkeypatch.setattr(analytics, "host", server.url)
    monkeypatch.setattr(analytics, "sync_mode", True)
    monkeypatch.setattr(analytics, "default_client", None)
    analytics.identify("module-user", {"email": "m@example.com"}, message_id="seg-mod-1")
    analytics.track("module-user", "Module Works", message_id="seg-mod-2")
    found = events_by_id(server, "seg-mod-", 2)
    assert found["seg-mod-1"]["traits"] == {"email": "m@example.com"}
    assert found["seg-mod-2"]["event"] == "Module Works"


def test_segment_client_honours_retry_after(server: PartiturServer) -> None:
    """At 60 events/s, the second batch of 100 gets a 429 and is sent again once allowed."""
    errors: list[Any] = []
    key = server.create_write_key("segment-limited", rate_limit=60)
    client = SegmentClient(key, host=server.url, upload_size=100, upload_interval=0.05,
                           on_error=lambda e, batch: errors.append(e))
    started = time.monotonic()
    for i in range(200):
        client.track("limited", "Throttled", {"i": i}, message_id=f"seg-rl-{i}")
    client.flush()
    client.join()
    assert errors == []
    events_by_id(server, "seg-rl-", 200)
    assert time.monotonic() - started >= 1.0  # it waited as told


def test_segment_client_sees_an_unknown_key(server: PartiturServer) -> None:
    errors: list[Any] = []
    client = SegmentClient("wk_unknown", host=server.url, sync_mode=True, max_retries=0,
                           on_error=lambda e, batch: errors.append(e))
    with pytest.raises(Exception) as caught:
        client.track("u", "Nope", message_id="seg-unknown-1")
    assert getattr(caught.value, "status", None) == 401


# -- rudder-sdk-python --------------------------------------------------------------------------


@pytest.fixture
def rudder(server: PartiturServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The module-level API as RudderStack documents it: write_key and dataPlaneUrl."""
    monkeypatch.setattr(rudder_analytics, "write_key", server.create_write_key("rudder"))
    monkeypatch.setattr(rudder_analytics, "dataPlaneUrl", server.url)
    monkeypatch.setattr(rudder_analytics, "sync_mode", True)
    monkeypatch.setattr(rudder_analytics, "default_client", None)
    return rudder_analytics


def test_rudder_module_api_gzip_and_basic_auth(server: PartiturServer, rudder: Any) -> None:
    assert rudder.gzip is True  # its default: every request here is gzip
    when = moments_ago()
    rudder.identify("r-user", {"email": "r@example.com"}, timestamp=when,
                    anonymous_id="r-anon", message_id="rs-identify")
    rudder.track("r-user", "Signed Up", {"plan": "free"}, timestamp=when,
                 message_id="rs-track")
    rudder.page("r-user", "Docs", "Home", {"path": "/"}, timestamp=when, message_id="rs-page")
    rudder.group("r-user", "acme", {"name": "Acme"}, timestamp=when, message_id="rs-group")
    rudder.alias("r-anon", "r-user", timestamp=when, message_id="rs-alias")
    found = events_by_id(server, "rs-", 5)
    identify = found["rs-identify"]
    assert identify["context"]["traits"] == {"email": "r@example.com"}  # RudderStack's place
    assert found["rs-track"]["properties"] == {"plan": "free"}
    assert found["rs-group"]["groupId"] == "acme"
    assert found["rs-alias"]["previousId"] == "r-anon"
    for event in found.values():
        assert event["channel"] == "server"
        assert event["integrations"] == {"All": True}
        assert event["context"]["library"]["name"] == "analytics-python"
        assert abs(event["_ts"] - to_us(when)) < 5_000_000


def test_rudder_client_batches(server: PartiturServer) -> None:
    errors: list[Any] = []
    client = RudderClient(server.create_write_key("rudder-batch"), host=server.url,
                          upload_size=30, upload_interval=0.05,
                          on_error=lambda e, batch: errors.append(e))
    for i in range(100):
        client.track(f"r{i % 3}", "Rudder Bulk", {"i": i}, message_id=f"rs-bulk-{i}")
    client.flush()
    client.join()
    assert errors == []
    assert len(events_by_id(server, "rs-bulk-", 100)) == 100
