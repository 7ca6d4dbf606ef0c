"""The Tracking API's surface: paths, write keys, content types, gzip, CORS, settings."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gzip
import json
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.services import Services
from tests.ingest.conftest import Stored, basic

CALLS = {
    "track": {"event": "Signed Up", "properties": {"plan": "pro"}},
    "identify": {"traits": {"email": "a@example.com"}},
    "page": {"name": "Home", "properties": {"path": "/"}},
    "screen": {"name": "Settings"},
    "group": {"groupId": "acme", "traits": {"name": "Acme"}},
    "alias": {"previousId": "anon-1"},
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("short", [False, True], ids=["full", "letter"])
def test_every_call_on_its_path_and_on_analytics_js_letter(
    client: TestClient,
    auth: dict[str, str],
    stored: Callable[[], list[Stored]],
    call: str,
    short: bool,
) -> None:
    path = f"/v1/{call[0] if short else call}"
    body = {"userId": "u1", "messageId": f"m-{call}", **CALLS[call]}
    r = client.post(path, json=body, headers=auth)
    assert (r.status_code, r.json()) == (200, {"success": True})
    [event] = stored()
    assert (event.message_id, event.type, event.user_id) == (f"m-{call}", call, "u1")
    assert event.body["type"] == call
    for name, value in CALLS[call].items():
        assert event.body[name] == value


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/b", "/v1/import"])
def test_batch_paths_take_mixed_calls(
    client: TestClient, auth: dict[str, str], stored: Callable[[], list[Stored]], path: str
) -> None:
    batch = [
        {"type": call, "anonymousId": "a1", "userId": "u1", "messageId": f"b-{call}", **fields}
        for call, fields in CALLS.items()
    ]
    r = client.post(path, json={"batch": batch}, headers=auth)
    assert r.status_code == 200, r.text
    assert [(e.type, e.message_id) for e in stored()] == [
        (call, f"b-{call}") for call in CALLS
    ]


def test_write_key_in_the_body_and_any_content_type(
    client: TestClient, write_key: str, stored: Callable[[], list[Stored]]
) -> None:
    """analytics.js posts text/plain with the key in the body; no content type works too."""
    body = {"writeKey": write_key, "anonymousId": "a", "event": "Clicked"}
    for i, ctype in enumerate(["text/plain", "application/x-www-form-urlencoded", None]):
        headers = {"Content-Type": ctype} if ctype else {}
        payload = json.dumps({**body, "messageId": f"ct{i}"}).encode()
        r = client.post("/v1/t", content=payload, headers=headers)
        assert r.status_code == 200, (ctype, r.text)
    events = stored()
    assert [e.message_id for e in events] == ["ct0", "ct1", "ct2"]
    assert all("writeKey" not in e.body for e in events)  # credentials stay out of the log


def test_write_key_checks(client: TestClient, write_key: str, services: Services) -> None:
    track = {"userId": "u", "event": "E"}
    other, _ = services.keys.create_write_key("backend")

    def post(body: dict[str, object], headers: dict[str, str] | None = None) -> tuple[int, str]:
        r = client.post("/v1/track", json=body, headers=headers or {})
        return r.status_code, r.json().get("error", {}).get("message", "")

    status, message = post(track)
    assert status == 401 and "missing write key" in message
    assert post(track, basic("wk_nope")) == (401, "unknown write key")
    assert post({**track, "writeKey": "wk_nope"}) == (401, "unknown write key")
    assert post(track, {"Authorization": "Basic !!!"})[0] == 401
    assert post(track, basic(write_key))[0] == 200
    assert post({**track, "writeKey": write_key})[0] == 200
    # Both places: they must agree.
    assert post({**track, "writeKey": write_key}, basic(write_key))[0] == 200
    status, message = post({**track, "writeKey": other}, basic(write_key))
    assert status == 401 and "differ" in message
    # An empty Basic user (e.g. "base64(:)") falls back to the body's key.
    empty = {"Authorization": "Basic " + base64.b64encode(b":").decode()}
    assert post({**track, "writeKey": write_key}, empty)[0] == 200
    # Other schemes (a Bearer token meant for someone else) are not a write key.
    assert post({**track, "writeKey": write_key}, {"Authorization": "Bearer x"})[0] == 200


def test_a_revoked_key_stops_working(client: TestClient, services: Services) -> None:
    key, _ = services.keys.create_write_key("soon-gone")
    assert client.post("/v1/track", json={"userId": "u", "event": "E"},
                       headers=basic(key)).status_code == 200
    services.keys.revoke(key)  # in this process at once; in others within the cache's TTL
    r = client.post("/v1/track", json={"userId": "u", "event": "E"}, headers=basic(key))
    assert r.status_code == 401


def test_unauthorized_comes_before_validation(client: TestClient, write_key: str) -> None:
    """An unknown key is told so even when its events are also wrong; broken JSON whose key
    cannot be read is a 400; a known key with bad events is a 400."""
    bad_event = {"event": 5}
    r = client.post("/v1/track", json={**bad_event, "writeKey": "wk_nope"})
    assert r.status_code == 401
    r = client.post("/v1/track", json=bad_event, headers=basic("wk_nope"))
    assert r.status_code == 401
    r = client.post("/v1/batch", json={"writeKey": "wk_nope", "batch": [{"type": "nope"}]})
    assert r.status_code == 401
    r = client.post("/v1/batch", json={"batch": [{"type": "nope", "writeKey": "wk_nope"}]})
    assert r.status_code == 401
    r = client.post("/v1/batch", json={"batch": [{"type": "track"}]})
    assert r.status_code == 401  # a JSON object without any key
    r = client.post("/v1/track", content=b'{"writeKey": "wk_nope", "event": ')
    assert r.status_code == 400  # unreadable: we cannot know who sends it
    r = client.post("/v1/track", json={**bad_event, "writeKey": write_key})
    assert r.status_code == 400
    # An oversize body is refused before anything is parsed, key or not.
    r = client.post("/v1/track", content=b" " * (600 * 1024), headers=basic("wk_nope"))
    assert r.status_code == 401
    r = client.post("/v1/track", content=b" " * (600 * 1024))
    assert r.status_code == 413


def test_batch_events_carrying_different_keys_are_refused(
    client: TestClient, write_key: str, services: Services
) -> None:
    other, _ = services.keys.create_write_key("backend")
    event = {"type": "track", "userId": "u", "event": "E"}
    batch = [{**event, "writeKey": write_key}, {**event, "writeKey": other}]
    r = client.post("/v1/batch", json={"batch": batch})
    assert r.status_code == 401
    # analytics.js repeats the batch's key in every event: that is fine.
    batch = [{**event, "writeKey": write_key}] * 2
    assert client.post("/v1/b", json={"writeKey": write_key, "batch": batch}).status_code == 200


def test_gzip_bodies(
    client: TestClient, auth: dict[str, str], stored: Callable[[], list[Stored]]
) -> None:
    body = json.dumps({"batch": [
        {"type": "track", "userId": "u", "event": "Zipped", "messageId": f"z{i}"}
        for i in range(50)
    ]}).encode()
    headers = {**auth, "Content-Encoding": "gzip"}
    assert client.post("/v1/batch", content=gzip.compress(body), headers=headers).status_code == 200
    # Two gzip members, one after the other, are still one valid gzip stream.
    half = len(body) // 2
    two = gzip.compress(body[:half]) + gzip.compress(body[half:])
    r = client.post("/v1/batch", content=two, headers={**auth, "Content-Encoding": "x-gzip"})
    assert r.status_code == 200, r.text
    assert len(stored()) == 50


def test_gzip_errors(client: TestClient, auth: dict[str, str]) -> None:
    headers = {**auth, "Content-Encoding": "gzip"}
    body = gzip.compress(b'{"userId": "u", "event": "E"}')
    cases = {
        "not gzip at all": b'{"userId": "u", "event": "E"}',
        "truncated": body[: len(body) - 12],
        "empty": b"",
        "corrupt": body[:10] + bytes(255 - b for b in body[10:]),
    }
    for name, payload in cases.items():
        r = client.post("/v1/track", content=payload, headers=headers)
        assert r.status_code == 400, name
        assert "gzip" in r.json()["error"]["message"], name
    # A small body that inflates beyond the request limit: a 413, without inflating it all.
    bomb = gzip.compress(b'{"userId": "' + b"u" * (50 * 1024 * 1024) + b'"}')
    assert len(bomb) < 100 * 1024
    r = client.post("/v1/track", content=bomb, headers=headers)
    assert r.status_code == 413
    r = client.post("/v1/track", content=body, headers={**auth, "Content-Encoding": "br"})
    assert r.status_code == 400 and "Content-Encoding" in r.json()["error"]["message"]


def test_cors(client: TestClient, write_key: str, services: Services) -> None:
    origin = {"Origin": "https://shop.example"}
    pre = client.options("/v1/t", headers={
        **origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization, x-retry-count",
    })
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in pre.headers["access-control-allow-methods"]
    allowed = pre.headers["access-control-allow-headers"]
    assert allowed == "content-type, authorization, x-retry-count"
    assert int(pre.headers["access-control-max-age"]) > 0
    event = {"writeKey": write_key, "anonymousId": "a", "event": "E"}
    ok = client.post("/v1/t", json=event, headers=origin)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://shop.example"
    bad = client.post("/v1/t", json={"writeKey": write_key, "event": "E"}, headers=origin)
    assert bad.status_code == 400
    assert bad.headers["access-control-allow-origin"] == "https://shop.example"
    # A 429's Retry-After must be readable by the page's script.
    services.keys.update_source("web", rate_limit=1)
    statuses = [client.post("/v1/t", json=event, headers=origin) for _ in range(3)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert limited[0].headers["access-control-allow-origin"] == "https://shop.example"
    assert "retry-after" in limited[0].headers["access-control-expose-headers"].lower()
    # Without an Origin there are no CORS headers at all.
    plain = client.post("/v1/track", json={**event, "userId": "u"})
    assert "access-control-allow-origin" not in plain.headers


def test_settings_for_analytics_js(client: TestClient, write_key: str) -> None:
    r = client.get(f"/v1/projects/{write_key}/settings", headers={"Origin": "https://a.example"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://a.example"
    settings = r.json()
    segment = settings["integrations"]["Segment.io"]
    assert segment["apiKey"] == write_key
    assert segment["apiHost"] == "testserver/v1"  # analytics.js posts to protocol://apiHost/t
    assert segment["protocol"] == "http"
    assert settings["metrics"]["sampleRate"] == 0  # no metrics sent to Segment's servers
    assert settings["remotePlugins"] == []
    assert client.get("/v1/projects/wk_nope/settings").status_code == 401


def test_methods(client: TestClient, auth: dict[str, str]) -> None:
    assert client.get("/v1/track", headers=auth).status_code == 405
    assert client.put("/v1/batch", headers=auth, json={}).status_code == 405
    assert client.post("/v1/nope", headers=auth, json={}).status_code == 404


def test_a_body_that_never_arrives_is_not_waited_for(services: Services, write_key: str) -> None:
    """The client promises 100 bytes, sends 9 and goes quiet: a 400 once the timeout passes."""
    services.limits = dataclasses.replace(services.limits, body_timeout=0.2)
    app = create_app(services=services, start_workers=False)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/track", "raw_path": b"/v1/track", "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
        "headers": [(b"host", b"testserver"), (b"content-length", b"100"),
                    (b"authorization", basic(write_key)["Authorization"].encode())],
    }
    sent: list[dict[str, Any]] = []
    parts = [{"type": "http.request", "body": b'{"userId"', "more_body": True}]

    async def receive() -> dict[str, Any]:
        if parts:
            return parts.pop()
        await asyncio.sleep(3600)
        raise AssertionError("not reached")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=10))
    assert sent[0]["status"] == 400
    assert b"did not arrive" in sent[1]["body"]
