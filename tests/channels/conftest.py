"""A Partitur with its channels configured, driven step by step: events go in over HTTP, the
profile worker and the dispatcher run when the test says so, against real receivers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.channels import Dispatcher, OutboundMessage, delivery_status, enqueue
from partitur.identity import store as graph_store
from partitur.services import Services
from partitur.worker import ProfileWorker
from tests.channels.sinks import HttpSink, SmtpSink


@dataclass
class Env:
    services: Services
    client: TestClient
    key: str
    admin: dict[str, str]
    dispatchers: list[Dispatcher] = field(default_factory=list)

    def send(self, *events: dict[str, Any]) -> None:
        r = self.client.post("/v1/batch", json={"writeKey": self.key, "batch": list(events)})
        assert r.status_code == 200, r.text

    def process(self) -> int:
        return ProfileWorker(self.services).drain()

    def person(
        self,
        user_id: str,
        *,
        email: str | None = None,
        phone: str | None = None,
        consent: dict[str, bool] | None = None,
        **traits: Any,
    ) -> str:
        """Identify someone (with consent, if given) and return their profile id."""
        if email:
            traits["email"] = email
        if phone:
            traits["phone"] = phone
        event: dict[str, Any] = {"type": "identify", "userId": user_id, "traits": traits}
        if consent is not None:
            event["context"] = {"consent": {"categoryPreferences": consent}}
        self.send(event)
        self.process()
        return self.profile_of(user_id)

    def profile_of(self, user_id: str) -> str:
        with self.services.db.read() as tx:
            owners = graph_store.owners(tx, [f"user_id:{user_id}"])
        return owners[f"user_id:{user_id}"]

    def enqueue(self, *messages: OutboundMessage) -> int:
        with self.services.db.transaction() as tx:
            return enqueue(tx, messages, self.services.clock.now_us())

    def dispatcher(self, **kwargs: Any) -> Dispatcher:
        dispatcher = Dispatcher(self.services, **kwargs)
        self.dispatchers.append(dispatcher)
        return dispatcher

    def status(self, *keys: str) -> dict[str, dict[str, Any]]:
        with self.services.db.read() as tx:
            return delivery_status(tx, keys)

    def logged(self, name: str) -> list[dict[str, Any]]:
        """Bodies of the events named ``name`` in the event log, oldest first."""
        with self.services.db.read() as tx:
            rows = tx.execute("SELECT body FROM events WHERE event = ? ORDER BY seq", (name,))
        return [msgspec.json.decode(r[0]) for r in rows]


@pytest.fixture
def env_factory(make_services: Any) -> Iterator[Callable[..., Env]]:
    stack = contextlib.ExitStack()

    def make(**settings: Any) -> Env:
        services = make_services(**settings)
        client = stack.enter_context(
            TestClient(create_app(services=services, start_workers=False))
        )
        key, _ = services.keys.create_write_key("web")
        admin = {"Authorization": f"Bearer {services.keys.create_admin_key('tests')}"}
        env = Env(services, client, key, admin)
        stack.callback(lambda: [d.stop() for d in env.dispatchers])
        return env

    with stack:
        yield make


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def receiver() -> Iterator[HttpSink]:
    sink = HttpSink().start()
    yield sink
    sink.stop()


def email_settings(smtp: SmtpSink) -> dict[str, Any]:
    return {
        "smtp_url": f"smtp://127.0.0.1:{smtp.port}",
        "smtp_from": "Acme <news@acme.example>",
        "public_url": "https://crm.acme.example",
    }
