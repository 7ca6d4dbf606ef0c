"""A Partitur driven step by step for segment tests: events go in over HTTP, the profile
worker, the due scheduler and backfills run when the test says so; the clock is manual."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.clock import ManualClock
from partitur.segments import fire_due, run_backfills
from partitur.services import Services
from partitur.worker.hooks import BatchContext, SegmentChange
from tests.helpers.appenv import AppEnv


@dataclass
class Env(AppEnv):
    notes: list[tuple[str, SegmentChange]]

    def put(self, doc: dict[str, Any], status: int | None = None) -> dict[str, Any]:
        r = self.client.put(f"/api/v1/segments/{doc['key']}", json=doc, headers=self.admin)
        if status is not None:
            assert r.status_code == status, r.text
        else:
            assert r.status_code in (200, 201), r.text
        body: dict[str, Any] = r.json()
        return body

    def define(self, key: str, condition: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """Define a dynamic segment and run its backfill."""
        body = self.put({"key": key, "name": key, "condition": condition, **extra})
        run_backfills(self.services)
        return body

    def members(self, key: str) -> set[str]:
        r = self.client.get(f"/api/v1/segments/{key}/members?limit=5000", headers=self.admin)
        assert r.status_code == 200, r.text
        return {m["profile_id"] for m in r.json()["members"]}

    def advance(self, **delta: float) -> int:
        self.clock.advance(timedelta(**delta))
        return fire_due(self.services, self.clock.now_us())

    def changes(self) -> list[tuple[str, str, bool]]:
        """(cause, profile:segment, entered) the journey side saw, and forget them."""
        out = [(how, f"{c.profile_id}:{c.segment}", c.entered) for how, c in self.notes]
        self.notes.clear()
        return out


@pytest.fixture
def env(make_services: Any, clock: ManualClock) -> Iterator[Env]:
    services: Services = make_services(worker_enabled=False)
    notes: list[tuple[str, SegmentChange]] = []

    def journeys(batch: BatchContext) -> None:  # stands where the journey hook stands
        how = "event" if batch.events else "other"
        notes.extend((how, c) for c in batch.changes if isinstance(c, SegmentChange))

    services.batch_hooks.append(journeys)
    key, _ = services.keys.create_write_key("web")
    token = services.keys.create_admin_key("tests")
    with TestClient(create_app(services=services)) as client:
        yield Env(services, client, clock, key, {"Authorization": f"Bearer {token}"}, notes)
