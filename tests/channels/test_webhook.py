"""Webhooks against a real HTTP server: signed JSON, idempotency key, retries with backoff
that honour Retry-After, timeouts, final failures, the dead-letter list and replay."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from partitur.channels import OutboundMessage
from partitur.channels.webhook import verify_signature
from partitur.clock import ManualClock
from tests.channels.conftest import Env
from tests.channels.sinks import Answer, HttpSink, Request, free_port

SECRET = "whsec-test"


def hook(profile: str, key: str, url: str, **kw: Any) -> OutboundMessage:
    webhook = {
        "url": url + "/crm/{{ profile.traits.crm_id }}",
        "method": "POST",
        "headers": {"X-Journey": "{{ journey.key }}"},
        "body": {"person": "{{ profile.id }}", "plan": "{{ event.properties.plan }}",
                 "step": "{{ journey.step }}", "fixed": 42},
    }
    return OutboundMessage(
        key=key, profile_id=profile, channel="webhook", template=None, webhook=webhook,
        category="transactional", journey="onboarding", version=2, step_id="tell-crm",
        variables={"event": {"properties": {"plan": "pro"}}}, **kw,
    )


def test_signed_json_with_idempotency_key(env_factory: Any, receiver: HttpSink,
                                          clock: ManualClock) -> None:
    env: Env = env_factory(webhook_secret=SECRET)
    who = env.person("w", crm_id="c-9")
    env.enqueue(hook(who, "wh-1", receiver.url))
    env.dispatcher().drain()
    [request] = receiver.wait(1)
    assert request.method == "POST" and request.path == "/crm/c-9"
    assert request.json() == {"person": who, "plan": "pro", "step": "tell-crm", "fixed": 42}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "wh-1"
    assert request.headers["x-partitur-key"] == "wh-1"
    assert request.headers["x-journey"] == "onboarding"
    signature = request.headers["x-partitur-signature"]
    now_s = clock.now().timestamp()
    assert signature.startswith(f"t={int(now_s)},v1=")
    assert verify_signature(SECRET, signature, request.body, now_s)
    assert not verify_signature("other", signature, request.body, now_s)
    assert not verify_signature(SECRET, signature, request.body + b" ", now_s)
    assert not verify_signature(SECRET, signature, request.body, now_s + 3600)
    status = env.status("wh-1")["wh-1"]
    assert status["status"] == "sent" and status["http_status"] == 200
    [sent] = env.logged("Webhook Sent")
    assert sent["properties"]["step"] == "tell-crm" and sent["properties"]["journey_version"] == 2


def scripted(*answers: Answer) -> Any:
    queue = list(answers)

    def answer(request: Request) -> Answer:
        return queue.pop(0) if queue else (200, {}, b"{}")

    return answer


def test_retry_after_is_honoured_then_success(env_factory: Any, clock: ManualClock) -> None:
    receiver = HttpSink(answer=scripted((503, {"Retry-After": "7"}, b"busy"),
                                        (429, {"Retry-After": "30"}, b""))).start()
    try:
        env: Env = env_factory()
        who = env.person("r", crm_id="c")
        env.enqueue(hook(who, "wh-r", receiver.url))
        dispatcher = env.dispatcher()
        dispatcher.drain()
        status = env.status("wh-r")["wh-r"]
        assert status["status"] == "queued" and status["attempts"] == 1
        assert status["reason"].startswith("attempt 1: webhook answered 503: busy; retrying at")
        due = clock.now() + timedelta(seconds=7)
        assert status["due_at"] == due.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        clock.advance(timedelta(seconds=6))
        assert dispatcher.drain() == 0
        clock.advance(timedelta(seconds=1))
        assert dispatcher.drain() == 1
        assert env.status("wh-r")["wh-r"]["reason"].startswith("attempt 2: webhook answered 429")
        clock.advance(timedelta(seconds=30))
        dispatcher.drain()
        requests = receiver.wait(3)
        assert {r.headers["idempotency-key"] for r in requests} == {"wh-r"}
        status = env.status("wh-r")["wh-r"]
        assert status["status"] == "sent" and status["attempts"] == 3
        assert len(env.logged("Webhook Sent")) == 1 and env.logged("Webhook Failed") == []
    finally:
        receiver.stop()


def test_client_errors_are_final(env_factory: Any) -> None:
    receiver = HttpSink(answer=scripted((422, {}, b'{"error": "unknown customer"}'))).start()
    try:
        env: Env = env_factory()
        who = env.person("f", crm_id="c")
        env.enqueue(hook(who, "wh-f", receiver.url))
        env.dispatcher().drain()
        status = env.status("wh-f")["wh-f"]
        assert status["status"] == "failed" and status["code"] == 422
        assert status["reason"] == ('attempt 1: webhook answered 422: {"error": "unknown '
                                    'customer"}')
        [failed] = env.logged("Webhook Failed")
        assert failed["properties"]["reason"] == status["reason"]
    finally:
        receiver.stop()


def test_timeouts_and_refused_connections_are_retried(env_factory: Any) -> None:
    slow = HttpSink(delay=1.0).start()
    try:
        env: Env = env_factory(webhook_timeout=0.2)
        who = env.person("t", crm_id="c")
        env.enqueue(hook(who, "wh-slow", slow.url),
                    hook(who, "wh-down", f"http://127.0.0.1:{free_port()}"))
        started = time.monotonic()
        env.dispatcher().drain()
        assert time.monotonic() - started < 5
        statuses = env.status("wh-slow", "wh-down")
        assert statuses["wh-slow"]["status"] == "queued"
        assert "webhook timed out" in statuses["wh-slow"]["reason"]
        assert statuses["wh-down"]["status"] == "queued"
        assert "webhook could not be reached" in statuses["wh-down"]["reason"]
    finally:
        slow.stop()


def test_dead_letter_list_and_replay(env_factory: Any, clock: ManualClock) -> None:
    broken = [True]

    def answer(request: Request) -> Answer:
        return (500, {}, b"down") if broken[0] else (200, {}, b"{}")

    receiver = HttpSink(answer=answer).start()
    try:
        env: Env = env_factory(delivery_max_attempts=3, delivery_retry_base=1,
                               delivery_retry_max=2)
        who = env.person("d", crm_id="c")
        env.enqueue(*(hook(who, f"wh-d{n}", receiver.url) for n in range(3)))
        dispatcher = env.dispatcher()
        for _ in range(3):
            dispatcher.drain()
            clock.advance(timedelta(seconds=3))
        assert len(receiver.wait(9)) == 9
        page = env.client.get("/api/v1/deliveries?status=dead&limit=2", headers=env.admin)
        assert page.status_code == 200, page.text
        first = page.json()
        assert len(first["deliveries"]) == 2 and first["next_cursor"]
        rest = env.client.get(f"/api/v1/deliveries?status=dead,failed&cursor="
                              f"{first['next_cursor']}", headers=env.admin).json()
        dead = first["deliveries"] + rest["deliveries"]
        assert sorted(d["key"] for d in dead) == ["wh-d0", "wh-d1", "wh-d2"]
        assert rest["next_cursor"] is None
        assert all(d["attempts"] == 3 and d["reason"].endswith("(no attempts left)")
                   for d in dead)
        # The dead-letter list: status=failed covers what was refused and what ran out of tries.
        listed = env.client.get("/api/v1/deliveries?status=failed", headers=env.admin).json()
        assert sorted(d["key"] for d in listed["deliveries"]) == ["wh-d0", "wh-d1", "wh-d2"]
        assert len(env.logged("Webhook Failed")) == 3
        broken[0] = False
        r = env.client.post("/api/v1/deliveries/wh-d1/replay", headers=env.admin)
        assert r.status_code == 200 and r.json()["status"] == "queued"
        assert r.json()["reason"] == "replayed (was dead)"
        dispatcher.drain()
        one = env.client.get("/api/v1/deliveries/wh-d1", headers=env.admin).json()
        assert one["status"] == "sent" and one["attempts"] == 1
        again = env.client.post("/api/v1/deliveries/wh-d1/replay", headers=env.admin)
        assert again.status_code == 409
        assert env.client.post("/api/v1/deliveries/nope/replay",
                               headers=env.admin).status_code == 404
        bad = env.client.get("/api/v1/deliveries?status=lost", headers=env.admin)
        assert bad.status_code == 400 and "unknown status 'lost'" in bad.json()["error"][
            "message"]
        assert env.client.get("/api/v1/deliveries").status_code == 401
        by_journey = env.client.get("/api/v1/deliveries?journey=onboarding&channel=webhook",
                                    headers=env.admin).json()
        assert len(by_journey["deliveries"]) == 3
    finally:
        receiver.stop()


def test_stored_webhook_template(env_factory: Any, receiver: HttpSink) -> None:
    env: Env = env_factory()
    r = env.client.put("/api/v1/templates/crm-update", headers=env.admin, json={
        "channel": "webhook", "url": receiver.url + "/people/{{ profile.id }}", "method": "PUT",
        "body": {"plan": "{{ profile.traits.plan }}"}})
    assert r.status_code == 201, r.text
    who = env.person("s", plan="gold")
    env.enqueue(OutboundMessage(key="wh-s", profile_id=who, channel="webhook",
                                template="crm-update", category="transactional"))
    env.dispatcher().drain()
    [request] = receiver.wait(1)
    assert (request.method, request.path, request.json()) == ("PUT", f"/people/{who}",
                                                              {"plan": "gold"})
    assert "x-partitur-signature" not in request.headers  # no secret configured
