"""A Partitur driven step by step for analytics tests: events go in over HTTP with the times
the test gives, the profile worker and the projector run when the test says so."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from partitur.analytics import AnalyticsService
from partitur.app import create_app
from partitur.clock import ManualClock
from partitur.services import Services
from partitur.worker import ProfileWorker

T0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


def at(minutes: float = 0, *, days: float = 0, hours: float = 0, seconds: float = 0) -> str:
    """An ISO time ``T0 + offset``."""
    when = T0 + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    return when.isoformat().replace("+00:00", "Z")


@dataclass
class Env:
    services: Services
    client: TestClient
    clock: ManualClock
    key: str
    admin: dict[str, str]
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def analytics(self) -> AnalyticsService:
        service: AnalyticsService = self.services.extra["analytics"]
        return service

    def send(self, *events: dict[str, Any]) -> None:
        batch = []
        for e in events:
            e = dict(e)
            e.setdefault("messageId", f"m-{next(self._ids)}")
            batch.append(e)
        for start in range(0, len(batch), 500):
            r = self.client.post("/v1/batch",
                                 json={"writeKey": self.key, "batch": batch[start:start + 500]})
            assert r.status_code == 200, r.text

    def track(self, user: str, event: str, when: str, *, anonymous: bool = False,
              context: dict[str, Any] | None = None, **props: Any) -> dict[str, Any]:
        e: dict[str, Any] = {"type": "track", "event": event, "timestamp": when,
                             "properties": props}
        e["anonymousId" if anonymous else "userId"] = user
        if context:
            e["context"] = context
        return e

    def page(self, user: str, name: str, when: str, **props: Any) -> dict[str, Any]:
        return {"type": "page", "userId": user, "name": name, "timestamp": when,
                "properties": props}

    def process(self) -> int:
        return ProfileWorker(self.services).drain()

    def flush(self) -> int:
        return self.analytics.projector.flush()

    def settle(self) -> None:
        self.process()
        self.flush()

    def profile_of(self, user_id: str, kind: str = "user_id") -> str:
        with self.services.db.read() as tx:
            row = tx.one("SELECT profile_id FROM identifiers WHERE key = ?",
                         (f"{kind}:{user_id}",))
        assert row is not None, user_id
        return str(row[0])

    def rows(self, sql: str = "SELECT seq, profile_id, event FROM {ev} ORDER BY seq"
             ) -> list[tuple[Any, ...]]:
        """Query the current Parquet snapshot (``{ev}``: the events, aliases applied)."""
        engine = self.analytics.engine
        source = engine.source()
        with engine.cursor() as cur:
            return list(cur.execute(sql.replace("{ev}", source.sql)).fetchall())

    def post(self, path: str, body: dict[str, Any], status: int = 200) -> Any:
        r = self.client.post(path, json=body, headers=self.admin)
        assert r.status_code == status, r.text
        return r.json()


@pytest.fixture
def env(make_services: Any, clock: ManualClock) -> Iterator[Env]:
    clock.set(datetime(2026, 3, 1, tzinfo=UTC))  # the test's events are in the past
    services: Services = make_services(worker_enabled=False)
    key, _ = services.keys.create_write_key("web")
    token = services.keys.create_admin_key("tests")
    with TestClient(create_app(services=services)) as client:
        yield Env(services, client, clock, key, {"Authorization": f"Bearer {token}"})
