"""The worker's queue: oldest first, a partition range alone, a queue row whose event is gone."""

from __future__ import annotations

import pytest

from partitur.services import Services
from partitur.worker import ProfileWorker
from partitur.worker.queue import EventQueue
from tests.identity.test_worker import ingest


def _queued(services: Services) -> list[tuple[int, int]]:
    with services.db.read() as tx:
        return [(int(r[0]), int(r[1])) for r in
                tx.execute("SELECT seq, part FROM event_queue ORDER BY seq")]


def test_take_returns_the_oldest_and_done_removes_exactly_them(services: Services) -> None:
    ingest(services, *[{"type": "track", "anonymousId": f"a-{i}", "event": "E"}
                       for i in range(7)])
    queued = _queued(services)
    queue = EventQueue(services.db.dialect)
    with services.db.transaction() as tx:
        taken = queue.take(tx, 3)
        assert [e[0] for e in taken.events] == [s for s, _ in queued[:3]]
        assert all(e[4].startswith("{") and e[2] for e in taken.events)  # body, source
        queue.done(tx, taken)
    assert _queued(services) == queued[3:]


@pytest.mark.parametrize("parts", [(0, 128), (0, 32)])  # dense, then sparse seqs
def test_a_partition_range_takes_and_removes_only_its_events(
    services: Services, parts: tuple[int, int]
) -> None:
    ingest(services, *[{"type": "track", "anonymousId": f"a-{i}", "event": "E"}
                       for i in range(40)])
    queued = _queued(services)
    inside = [s for s, p in queued if parts[0] <= p < parts[1]]
    assert inside and len(inside) < len(queued)
    dense = inside[-1] - inside[0] < 2 * len(inside)
    assert dense == (parts == (0, 128))  # PostgreSQL reads a range, or seqs one by one
    queue = EventQueue(services.db.dialect)
    with services.db.transaction() as tx:
        taken = queue.take(tx, 1000, parts)
        assert [e[0] for e in taken.events] == inside
        queue.done(tx, taken, parts)
    assert _queued(services) == [(s, p) for s, p in queued if s not in inside]


def test_a_queue_row_without_its_event_is_dropped_and_the_rest_processed(
    services: Services,
) -> None:
    ingest(services, {"type": "track", "anonymousId": "a-1", "event": "E"},
           {"type": "track", "anonymousId": "a-2", "event": "E"})
    first = _queued(services)[0][0]
    with services.db.transaction() as tx:
        tx.execute("DELETE FROM events WHERE seq = ?", (first,))
    assert len(_queued(services)) == 2
    assert ProfileWorker(services).drain() == 1
    assert _queued(services) == []
    with services.db.read() as tx:
        assert [r[0] for r in tx.execute("SELECT seq FROM profile_events")] == [first + 1]
