"""The dispatcher running in the background: woken by the commit that enqueues, and shared
safely by several dispatchers on one PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.channels import Dispatcher, OutboundMessage, delivery_status, enqueue, outbox
from partitur.services import Services
from tests.channels.conftest import Env
from tests.channels.sinks import HttpSink


def hook(key: str, url: str, profile: str = "p", **kw: Any) -> OutboundMessage:
    return OutboundMessage(key=key, profile_id=profile, channel="webhook", template=None,
                           webhook={"url": url, "body": {"k": key}}, **kw)


def test_enqueue_wakes_dispatchers_only_after_commit(services: Services) -> None:
    calls: list[str] = []
    outbox.add_listener(lambda: calls.append("woken"))
    try:
        with services.db.transaction() as tx:
            enqueue(tx, [hook("w1", "http://x")], services.clock.now_us())
            enqueue(tx, [hook("w2", "http://x")], services.clock.now_us())
            if services.db.dialect == "sqlite":
                assert calls == []
        if services.db.dialect == "sqlite":
            assert calls == ["woken"]  # once per transaction
    finally:
        outbox._listeners.clear()


def test_background_dispatcher_sends_right_after_the_commit(
    make_services: Any, receiver: HttpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Dispatcher, "POLL_S", 30.0)  # so only a wake-up can explain a send
    services: Services = make_services()
    with TestClient(create_app(services=services)) as client:
        key, _ = services.keys.create_write_key("web")
        assert client.post("/v1/identify", json={"writeKey": key, "userId": "bg"}).status_code \
            == 200
        deadline = time.monotonic() + 10
        profile = None
        while profile is None and time.monotonic() < deadline:
            with services.db.read() as tx:
                row = tx.one("SELECT profile_id FROM identifiers WHERE key = 'user_id:bg'")
            profile = row[0] if row else None
            time.sleep(0.02)
        assert profile is not None
        dispatcher = services.extra["dispatcher"]
        assert dispatcher is not None and dispatcher.idle.wait(10)
        latencies = []
        for n in range(3):
            started = time.monotonic()
            with services.db.transaction() as tx:
                enqueue(tx, [hook(f"bg-{n}", receiver.url, profile, category="transactional")],
                        services.clock.now_us())
            receiver.wait(n + 1, timeout=10)
            latencies.append(time.monotonic() - started)
        assert max(latencies) < 5.0, latencies
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with services.db.read() as tx:
                found = delivery_status(tx, ["bg-0", "bg-1", "bg-2"])
            if all(s["status"] == "sent" for s in found.values()):
                break
            time.sleep(0.02)
        assert [found[f"bg-{n}"]["status"] for n in range(3)] == ["sent"] * 3


@pytest.mark.store("postgres")
def test_two_dispatchers_share_the_outbox(
    make_services: Any, env_factory: Any, store_kind: str
) -> None:
    if store_kind != "postgres":
        pytest.skip("several dispatchers at once is a PostgreSQL set-up")
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def answer(request: Any) -> Any:
        with lock:
            key = request.headers["idempotency-key"]
            counts[key] = counts.get(key, 0) + 1
        time.sleep(0.002)
        return 200, {}, b"{}"

    receiver = HttpSink(answer=answer).start()
    try:
        settings = {"dispatcher_batch": 20, "dispatcher_concurrency": 20,
                    "frequency_caps": {"webhook": "1/1d"}}
        env: Env = env_factory(**settings)
        people = [env.person(f"u{n}") for n in range(5)]
        messages = [hook(f"m{n}", receiver.url, people[n % 5], category="transactional")
                    for n in range(300)]
        capped = [hook(f"c{n}", receiver.url, people[0]) for n in range(20)]
        env.enqueue(*messages, *capped)
        other = make_services(**settings)  # a second process's pool on the same schema
        dispatchers = [Dispatcher(env.services), Dispatcher(other)]
        done = [0, 0]

        def run(i: int) -> None:
            done[i] = dispatchers[i].drain()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(done), done  # both took part
        assert sum(done) == 301  # sent; the 19 over the cap are suppressed, not sent
        statuses = env.status(*(f"c{n}" for n in range(20)))
        sent = [k for k, s in statuses.items() if s["status"] == "sent"]
        assert len(sent) == 1
        assert sorted(s["status"] for s in statuses.values()).count("suppressed") == 19
        assert set(counts) == {m.key for m in messages} | set(sent)
        assert all(n == 1 for n in counts.values())
        statuses = env.status(*(m.key for m in messages))
        assert {s["status"] for s in statuses.values()} == {"sent"}
        assert {s["attempts"] for s in statuses.values()} == {1}
        assert len(env.logged("Webhook Sent")) == 301
    finally:
        receiver.stop()
