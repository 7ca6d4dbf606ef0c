"""A crash between "sent" and "recorded" must not send twice to a receiver that honours the
idempotency key: the row stays leased, the next claim sends again with the same key, and a
late result of the older claim is ignored."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from partitur.channels import OutboundMessage, delivery_status, enqueue
from partitur.channels.base import Receipt
from partitur.channels.webhook import WebhookTransport
from partitur.clock import ManualClock
from tests.channels.conftest import Env
from tests.channels.sinks import Answer, HttpSink, Request
from tests.helpers.server import PartiturServer, http


class Deduplicating:
    """A receiver that applies each Idempotency-Key once, as a good provider does."""

    def __init__(self) -> None:
        self.applied: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Answer:
        key = request.headers["idempotency-key"]
        with self.lock:
            self.applied[key] = self.applied.get(key, 0) + 1
        return 200, {"X-Request-Id": f"req-{key}"}, b"{}"


def hook(profile: str, key: str, url: str) -> OutboundMessage:
    return OutboundMessage(key=key, profile_id=profile, channel="webhook", template=None,
                           webhook={"url": url, "body": {"id": "{{ profile.id }}"}},
                           category="transactional", journey="j", step_id="s")


def test_lease_expiry_resends_with_the_same_key(env_factory: Any, clock: ManualClock) -> None:
    receiver_answers = Deduplicating()
    receiver = HttpSink(answer=receiver_answers).start()
    try:
        env: Env = env_factory(delivery_lease_seconds=30)
        who = env.person("x")
        env.enqueue(hook(who, "once-1", receiver.url))
        crashed = env.dispatcher()
        jobs, _ = crashed.claim(10)  # claimed and ...
        assert [j.row.key for j in jobs] == ["once-1"]

        async def send_once() -> Receipt:
            transport = WebhookTransport(None, timeout=5, now_s=time.time)
            try:
                return await transport.send(jobs[0].envelope)
            finally:
                await transport.aclose()

        late_receipt = asyncio.run(send_once())  # ... sent; the result is never recorded
        assert env.status("once-1")["once-1"]["status"] == "sending"

        survivor = env.dispatcher()
        assert survivor.drain() == 0  # the lease still holds
        clock.advance(timedelta(seconds=31))
        assert survivor.drain() == 1
        requests = receiver.wait(2)
        assert [r.headers["idempotency-key"] for r in requests] == ["once-1", "once-1"]
        status = env.status("once-1")["once-1"]
        assert status["status"] == "sent" and status["attempts"] == 2
        assert status["provider_id"] == "req-once-1"

        crashed.record([(jobs[0], late_receipt)])  # the old claim's late answer: ignored
        assert env.status("once-1")["once-1"]["attempts"] == 2
        assert len(env.logged("Webhook Sent")) == 1
    finally:
        receiver.stop()


def test_a_message_whose_sender_keeps_dying_goes_dead(env_factory: Any,
                                                      clock: ManualClock) -> None:
    env: Env = env_factory(delivery_lease_seconds=5, delivery_max_attempts=2)
    who = env.person("y")
    env.enqueue(hook(who, "poison", "http://127.0.0.1:9"))
    for _ in range(2):
        env.dispatcher().claim(10)  # claimed, then the process dies mid-send
        clock.advance(timedelta(seconds=6))
    env.dispatcher().drain()
    status = env.status("poison")["poison"]
    assert status["status"] == "dead"
    assert status["reason"] == "the dispatcher stopped during the last attempt"


@pytest.mark.serial
def test_sigkill_during_a_send(tmp_path: Path, database_url: str | None) -> None:
    """``partitur serve`` and the worker process it started, which sends, are killed while a
    webhook request is in flight; after a restart the message is sent again with the same
    key and recorded once."""
    release = threading.Event()
    seen: list[Request] = []

    def answer(request: Request) -> Answer:
        seen.append(request)
        if len(seen) == 1:
            release.wait(30)  # hold the first request until the sender is dead
        return 200, {}, b"{}"

    receiver = HttpSink(answer=answer).start()
    server = PartiturServer(tmp_path / "data", database_url=database_url,
                            settings={"delivery_lease_seconds": 2})
    try:
        server.start()
        key = server.create_write_key("web")
        reply = http("POST", f"{server.url}/v1/identify", {"userId": "kill-me"}, key=key)
        assert reply.status == 200
        with server.services() as services:
            deadline = time.monotonic() + 30
            profile = None
            while profile is None and time.monotonic() < deadline:
                with services.db.read() as tx:
                    row = tx.one("SELECT profile_id FROM identifiers "
                                 "WHERE key = 'user_id:kill-me'")
                profile = row[0] if row else None
                time.sleep(0.05)
            assert profile is not None
            with services.db.transaction() as tx:
                enqueue(tx, [hook(profile, "crash-1", receiver.url)],
                        services.clock.now_us())
        receiver.wait(1, timeout=30)
        children = http("GET", f"{server.url}/health").json()["worker_processes"]
        sender = next(c["pid"] for c in children if c["name"] == "events-0")
        os.kill(sender, signal.SIGKILL)  # the process whose request is in flight
        server.kill()
        release.set()
        with server.services() as services, services.db.read() as tx:
            assert delivery_status(tx, ["crash-1"])["crash-1"]["status"] == "sending"

        server.start()
        deadline = time.monotonic() + 30
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            with server.services() as services, services.db.read() as tx:
                status = delivery_status(tx, ["crash-1"])["crash-1"]
            if status["status"] == "sent":
                break
            time.sleep(0.2)
        assert status["status"] == "sent", (status, server.log())
        assert status["attempts"] == 2
        assert [r.headers["idempotency-key"] for r in seen] == ["crash-1", "crash-1"]
        with server.services() as services, services.db.read() as tx:
            rows = tx.execute("SELECT COUNT(*) FROM events WHERE event = 'Webhook Sent'")
        assert rows[0][0] == 1
        server.assert_clean_log()
    finally:
        release.set()
        server.close()
        receiver.stop()
