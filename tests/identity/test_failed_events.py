"""An event the worker cannot process is set aside after a few tries; everyone else's events
go on being processed; the failed event is listed, replayable and erasable."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.errors import StorageError
from partitur.services import Services
from partitur.worker import ProfileWorker
from partitur.worker.hooks import BatchContext
from tests.identity.test_worker import ingest


@pytest.fixture
def services(make_services: Any) -> Services:
    """The app's own worker stays off: each test drives the worker it checks."""
    return make_services(worker_enabled=False)  # type: ignore[no-any-return]


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=services)) as client:
        yield client


def _events(boom_at: int = 15, count: int = 30) -> list[dict[str, Any]]:
    return [
        {"type": "track", "userId": f"p-{i}", "event": "Boom" if i == boom_at else "Viewed",
         "messageId": f"m-{i}"}
        for i in range(count)
    ]


class Breaks:
    """A batch hook that fails on any batch holding a ``Boom`` event, as a bug would."""

    def __init__(self) -> None:
        self.enabled = True
        self.calls = 0

    def __call__(self, batch: BatchContext) -> None:
        self.calls += 1
        if self.enabled and any(e.message.get("event") == "Boom" for e in batch.events):
            raise ValueError("cannot handle Boom")


def _counts(services: Services) -> dict[str, int]:
    with services.db.read() as tx:
        rows = tx.execute(
            "SELECT i.id_value, p.event_count FROM identifiers i JOIN profiles p "
            "ON p.id = i.profile_id WHERE i.id_type = 'user_id'")
    return {r[0]: int(r[1]) for r in rows}


def test_an_event_that_keeps_failing_is_set_aside_and_the_rest_go_on(
    services: Services, client: TestClient, admin: dict[str, str]
) -> None:
    hook = Breaks()
    services.batch_hooks.append(hook)
    ingest(services, *_events())
    worker = ProfileWorker(services)
    assert worker.drain() == 29
    counts = _counts(services)
    assert len(counts) == 29 and "p-15" not in counts and set(counts.values()) == {1}
    assert worker.set_aside == 1

    r = client.get("/api/v1/events/failed", headers=admin)
    assert r.status_code == 200, r.text
    listed = r.json()
    assert listed["total"] == 1
    [failed] = listed["events"]
    assert failed["message_id"] == "m-15" and failed["event"] == "Boom"
    assert failed["error"] == "ValueError: cannot handle Boom"
    assert failed["attempts"] == services.settings.worker_failed_attempts
    health = client.get("/health").json()
    assert health["backlog"] == 0 and health["failed_events"] == 1

    # The cause is fixed: replay it, and it is processed like any other event.
    hook.enabled = False
    r = client.post("/api/v1/events/failed/replay", headers=admin, json={"seqs": [failed["seq"]]})
    assert r.json() == {"replayed": 1}
    assert worker.drain() == 1
    assert _counts(services)["p-15"] == 1
    assert client.get("/api/v1/events/failed", headers=admin).json()["total"] == 0
    assert client.get("/health").json()["failed_events"] == 0


def test_the_background_worker_does_not_stall_on_a_failing_event(services: Services) -> None:
    services.batch_hooks.append(Breaks())
    ingest(services, *_events(boom_at=3, count=40))
    worker = ProfileWorker(services)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (worker.set_aside < 1 or worker.processed < 39):
            time.sleep(0.05)
    finally:
        worker.stop()
    assert worker.processed == 39 and worker.set_aside == 1
    with services.db.read() as tx:
        assert services.events.backlog(tx) == 0


def test_store_failures_are_retried_not_set_aside(services: Services) -> None:
    failures = {"left": 10}

    def flaky(batch: BatchContext) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise StorageError("the database is unreachable")

    services.batch_hooks.append(flaky)
    ingest(services, *_events(boom_at=-1, count=5))
    worker = ProfileWorker(services)
    errors = 0
    for _ in range(20):
        try:
            worker.step()
        except StorageError:
            errors += 1
    assert errors == 10
    assert worker.set_aside == 0 and worker.processed == 5
    assert len(_counts(services)) == 5


def test_erasure_reaches_failed_events(
    services: Services, client: TestClient, admin: dict[str, str]
) -> None:
    services.batch_hooks.append(Breaks())
    ingest(services, *_events(boom_at=2, count=4))
    ProfileWorker(services).drain()
    r = client.post("/api/v1/privacy/erase", headers=admin,
                    json={"type": "user_id", "value": "p-2"})
    assert r.status_code == 200, r.text
    assert r.json()["failed_events_erased"] == 1
    assert client.get("/api/v1/events/failed", headers=admin).json()["total"] == 0
    with services.db.read() as tx:
        assert tx.one("SELECT COUNT(*) FROM events WHERE message_id = 'm-2'") == (0,)


def test_replay_refuses_bad_input(client: TestClient, admin: dict[str, str]) -> None:
    for body in ({"seqs": "all"}, {"seqs": [1, "2"]}, {"every": True}, [1]):
        r = client.post("/api/v1/events/failed/replay", headers=admin, json=body)
        assert r.status_code == 400, body
        assert r.json()["error"]["code"] == "invalid_input"
    assert client.post("/api/v1/events/failed/replay", headers=admin).json() == {"replayed": 0}
    assert client.get("/api/v1/events/failed?after=x", headers=admin).status_code == 400
    assert client.get("/api/v1/events/failed").status_code == 401
