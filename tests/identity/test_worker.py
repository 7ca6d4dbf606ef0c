"""The worker's batch is all or nothing, and replaying it gives the same profiles."""

from __future__ import annotations

import json
from typing import Any

import pytest

from partitur.identity import store as graph_store
from partitur.ingest.decode import decode, to_rows
from partitur.services import Services
from partitur.worker import ProfileWorker


def ingest(services: Services, *events: dict[str, Any]) -> int:
    source = services.keys.ensure_source("backend")
    body = json.dumps({"batch": list(events)}).encode()
    rows, rejected = to_rows(decode(body, None, services.limits), None, source_id=source.id,
                             received_us=services.clock.now_us(), limits=services.limits)
    services.committer.start()
    return services.committer.submit_sync(rows, rejected)


def snapshot(services: Services) -> dict[str, Any]:
    with services.db.read() as tx:
        return {
            "profiles": tx.execute(
                "SELECT id, event_count, traits, merged_into FROM profiles ORDER BY id"),
            "identifiers": tx.execute("SELECT key, profile_id FROM identifiers ORDER BY key"),
            "timeline": tx.execute(
                "SELECT profile_id, seq FROM profile_events ORDER BY seq"),
            "queued": services.events.backlog(tx),
        }


EVENTS = [
    {"type": "page", "anonymousId": "a-1", "name": "Home"},
    {"type": "track", "anonymousId": "a-1", "event": "Viewed"},
    {"type": "identify", "userId": "u-1", "traits": {"email": "u1@example.com"}},
    {"type": "identify", "anonymousId": "a-1", "userId": "u-1", "traits": {"plan": "pro"}},
    {"type": "track", "userId": "u-1", "event": "Order Completed"},
]


def test_failed_batch_leaves_nothing_and_retry_gives_the_same_result(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ingest(services, *EVENTS) == 5
    worker = ProfileWorker(services)

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(graph_store, "append_log", boom)
    with pytest.raises(RuntimeError):
        worker.step()
    after_failure = snapshot(services)
    assert after_failure["profiles"] == [] and after_failure["identifiers"] == []
    assert after_failure["queued"] == 5

    monkeypatch.undo()
    assert worker.drain() == 5
    done = snapshot(services)
    assert done["queued"] == 0
    live = [p for p in done["profiles"] if p[3] is None]
    assert len(live) == 1 and live[0][1] == 5
    assert {pid for pid, _ in done["timeline"]} == {live[0][0]}


def test_same_events_give_the_same_profile_ids(make_services: Any, tmp_path: Any) -> None:
    first = make_services()
    ingest(first, *EVENTS)
    ProfileWorker(first).drain()
    ids_first = [r[0] for r in snapshot(first)["profiles"]]
    assert ids_first and all(i.startswith("p_") for i in ids_first)
    # Profile ids derive from the event (seq and identifier), not from randomness.
    from partitur.identity.extract import Identifier
    from partitur.identity.resolve import new_profile_id

    assert new_profile_id(1, Identifier.of("anonymous_id", "a-1")) in ids_first
