"""Batch hooks see each processed event with its final profile, inside the batch transaction."""

from __future__ import annotations

import pytest

from partitur.services import Services
from partitur.worker import ProfileWorker
from partitur.worker.hooks import BatchContext
from tests.identity.test_worker import EVENTS, ingest, snapshot


def test_hooks_see_events_with_the_surviving_profile(services: Services) -> None:
    seen: list[BatchContext] = []
    services.batch_hooks.append(seen.append)
    ingest(services, *EVENTS)
    ProfileWorker(services).drain()

    events = [e for batch in seen for e in batch.events]
    assert [e.message.get("type") for e in events] == [e["type"] for e in EVENTS]
    # a-1 and u-1 became one person within the batch: every event carries the survivor.
    with services.db.read() as tx:
        live = tx.execute("SELECT id FROM profiles WHERE merged_into IS NULL")
    assert [row[0] for row in live] == [events[-1].profile_id]
    assert {e.profile_id for e in events} == {events[-1].profile_id}
    assert set(seen[0].profiles) == {events[-1].profile_id}
    assert seen[0].profiles[events[-1].profile_id].event_count == len(EVENTS)
    assert [e.seq for e in events] == sorted(e.seq for e in events)


def test_a_failing_hook_rolls_the_batch_back(services: Services) -> None:
    def boom(batch: BatchContext) -> None:
        batch.tx.execute("DELETE FROM event_queue")
        raise RuntimeError("segment store unavailable")

    services.batch_hooks.append(boom)
    ingest(services, *EVENTS)
    with pytest.raises(RuntimeError):
        ProfileWorker(services).step()
    after = snapshot(services)
    assert after["profiles"] == [] and after["queued"] == len(EVENTS)
