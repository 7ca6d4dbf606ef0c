"""The part of a step-by-step Partitur that segment and journey tests share: events go in over
HTTP with a write key, and the profile worker runs when the test says so."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.testclient import TestClient

from partitur.clock import ManualClock
from partitur.services import Services
from partitur.worker import ProfileWorker


@dataclass
class AppEnv:
    services: Services
    client: TestClient
    clock: ManualClock
    key: str
    admin: dict[str, str]

    def send(self, *events: dict[str, Any]) -> None:
        r = self.client.post("/v1/batch", json={"writeKey": self.key, "batch": list(events)})
        assert r.status_code == 200, r.text

    def process(self) -> int:
        return ProfileWorker(self.services).drain()

    def track(self, user_id: str, event: str, **props: Any) -> None:
        self.send({"type": "track", "userId": user_id, "event": event, "properties": props})
        self.process()

    def identify(self, user_id: str, consent: dict[str, bool] | None = None,
                 **traits: Any) -> str:
        event: dict[str, Any] = {"type": "identify", "userId": user_id, "traits": traits}
        if consent is not None:
            event["context"] = {"consent": {"categoryPreferences": consent}}
        self.send(event)
        self.process()
        return self.profile_of(user_id)

    def profile_of(self, user_id: str) -> str:
        with self.services.db.read() as tx:
            row = tx.one("SELECT profile_id FROM identifiers WHERE key = ?",
                         (f"user_id:{user_id}",))
        assert row is not None, user_id
        return str(row[0])
