"""A Partitur driven step by step for journey tests: events go in over HTTP, the profile
worker runs when the test says so, and time moves through the manual clock's route."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.clock import ManualClock
from partitur.services import Services
from tests.helpers.appenv import AppEnv

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = {
    "welcome-email": {"channel": "email", "subject": "Welcome", "text": "Hello"},
    "reminder-email": {"channel": "email", "subject": "Still there?", "text": "Come back"},
    "discount-sms": {"channel": "sms", "text": "10% off"},
}


def example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / f"examples/journeys/{name}.yaml").read_text())
    return doc


@dataclass
class Env(AppEnv):
    def example_segments(self) -> None:
        """The segments the example journeys name (``examples/segments``)."""
        for path in sorted((ROOT / "examples/segments").glob("*.yaml")):
            doc = yaml.safe_load(path.read_text())
            r = self.client.put(f"/api/v1/segments/{doc['key']}", json=doc, headers=self.admin)
            assert r.status_code in (200, 201), r.text

    def templates(self, names: dict[str, dict[str, Any]] = TEMPLATES) -> None:
        for key, doc in names.items():
            r = self.client.put(f"/api/v1/templates/{key}", json=doc, headers=self.admin)
            assert r.status_code in (200, 201), r.text

    def put(self, doc: dict[str, Any], status: int | None = None) -> dict[str, Any]:
        r = self.client.put(f"/api/v1/journeys/{doc['key']}", json=doc, headers=self.admin)
        if status is not None:
            assert r.status_code == status, r.text
        else:
            assert r.status_code in (200, 201), r.text
        body: dict[str, Any] = r.json()
        return body

    def publish(self, key: str, **options: Any) -> dict[str, Any]:
        r = self.client.post(f"/api/v1/journeys/{key}/publish", json=options,
                             headers=self.admin)
        assert r.status_code in (200, 201), r.text
        body: dict[str, Any] = r.json()
        return body

    def live(self, doc: dict[str, Any]) -> dict[str, Any]:
        self.put(doc)
        return self.publish(doc["key"])

    def advance(self, seconds: float) -> dict[str, Any]:
        r = self.client.post("/api/v1/clock/advance", json={"seconds": seconds},
                             headers=self.admin)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def outbox(self, profile_id: str | None = None) -> list[tuple[str, str, str]]:
        """(key, channel, step) of the queued messages, oldest first."""
        sql = "SELECT key, channel, step_id FROM outbox"
        params: tuple[Any, ...] = ()
        if profile_id:
            sql += " WHERE profile_id = ?"
            params = (profile_id,)
        with self.services.db.read() as tx:
            rows = tx.execute(sql + " ORDER BY created_at, key", params)
        return [(str(k), str(c), str(s)) for k, c, s in rows]

    def where(self, profile_id: str) -> list[dict[str, Any]]:
        r = self.client.get(f"/api/v1/profiles/{profile_id}/journeys", headers=self.admin)
        assert r.status_code == 200, r.text
        journeys: list[dict[str, Any]] = r.json()["journeys"]
        return journeys

    def stats(self, key: str) -> dict[str, Any]:
        r = self.client.get(f"/api/v1/journeys/{key}/stats", headers=self.admin)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


@pytest.fixture
def env(make_services: Any, clock: ManualClock) -> Iterator[Env]:
    services: Services = make_services(worker_enabled=False, clock="manual",
                                       dispatcher_enabled=False)
    key, _ = services.keys.create_write_key("web")
    token = services.keys.create_admin_key("tests")
    with TestClient(create_app(services=services)) as client:
        env = Env(services, client, clock, key, {"Authorization": f"Bearer {token}"})
        env.example_segments()
        yield env
