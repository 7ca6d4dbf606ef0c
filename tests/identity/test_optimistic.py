"""SQLite: a batch worked out before the write lock gives what the locked batch gives, and is done
again under the lock when another writer changed what it rests on meanwhile."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from partitur.clock import ManualClock
from partitur.services import Services, build_services
from partitur.settings import load_settings
from partitur.store.db import SqliteDatabase
from partitur.worker import ProfileWorker
from partitur.worker.processor import Prepared, Processor
from tests.identity.test_worker import EVENTS, ingest, snapshot

MORE = [
    {"type": "track", "anonymousId": f"a-{i}", "event": "Viewed",
     "context": {"consent": {"categoryPreferences": {"analytics": i % 2 == 0}}}}
    for i in range(2, 30)
] + [
    {"type": "identify", "anonymousId": "a-3", "userId": "u-3", "traits": {"plan": "pro"}},
    {"type": "alias", "previousId": "a-4", "userId": "u-3"},
    {"type": "identify", "userId": "u-1", "anonymousId": "a-5", "traits": {"plan": "team"}},
]

pytestmark = pytest.mark.store("sqlite")


def _sqlite(services: Services) -> Services:
    if not isinstance(services.db, SqliteDatabase):
        pytest.skip("the optimistic batch is SQLite's (PostgreSQL has no single writer lock)")
    return services


def _full(services: Services) -> dict[str, Any]:
    out = snapshot(services)
    with services.db.read() as tx:
        out["state"] = tx.execute(
            "SELECT id, first_seen, last_seen, event_count, traits, trait_meta, consent, "
            "merged_into FROM profiles ORDER BY id")
        out["log"] = tx.execute(
            "SELECT kind, profile_id, other_profile, id_type, id_value, event_seq, detail "
            "FROM identity_log ORDER BY id")
    return out


@pytest.mark.parametrize("batch", [3, 1000])
def test_optimistic_batches_give_what_locked_batches_give(
    store_kind: str, tmp_path: Path, clock: ManualClock, batch: int
) -> None:
    if store_kind != "sqlite":
        pytest.skip("the optimistic batch is SQLite's")
    results = []
    for optimistic in (False, True):
        settings = load_settings(tmp_path / f"d{optimistic}", environ={}, worker_batch=batch,
                                 sqlite_synchronous="NORMAL")
        services = build_services(settings, clock=clock)
        try:
            ingest(services, *EVENTS, *MORE)
            worker = ProfileWorker(services)
            worker.processor.optimistic = optimistic
            assert worker.drain() == len(EVENTS) + len(MORE)
            assert worker.processor.retries == 0
            with services.db.read() as tx:
                source = tx.one("SELECT id FROM sources")[0]  # each store names its own
            results.append(json.loads(json.dumps(_full(services)).replace(source, "SOURCE")))
        finally:
            services.close()
    assert results[0] == results[1]
    assert results[1]["queued"] == 0 and len(results[1]["timeline"]) == len(EVENTS) + len(MORE)


def _meanwhile(processor: Processor, change: Callable[[], None]) -> None:
    """Run ``change`` in another thread (its own connection) right after the next batch has
    been worked out, before it takes the write lock."""
    prepare = processor._prepare
    done = []

    def patched(tx: Any, taken: Any) -> Prepared:
        prepared = prepare(tx, taken)
        if not done:
            done.append(True)
            thread = threading.Thread(target=change)
            thread.start()
            thread.join(timeout=30)
        return prepared

    processor._prepare = patched  # type: ignore[method-assign]


def test_an_event_erased_meanwhile_is_not_processed(services: Services) -> None:
    services = _sqlite(services)
    ingest(services, *EVENTS)
    worker = ProfileWorker(services)
    worker.processor.optimistic = True
    with services.db.read() as tx:
        first = tx.one("SELECT MIN(seq) FROM event_queue")[0]

    def erase_first() -> None:
        with services.db.transaction() as tx:
            services.events.delete_seqs(tx, [first])

    _meanwhile(worker.processor, erase_first)
    assert worker.drain() == len(EVENTS) - 1
    assert worker.processor.retries == 1
    after = snapshot(services)
    assert after["queued"] == 0
    assert first not in {seq for _, seq in after["timeline"]}
    assert len(after["timeline"]) == len(EVENTS) - 1


def test_an_identifier_moved_meanwhile_is_seen_by_the_batch(services: Services) -> None:
    services = _sqlite(services)
    ingest(services, {"type": "identify", "anonymousId": "a-9", "traits": {"plan": "pro"}})
    worker = ProfileWorker(services)
    worker.processor.optimistic = True
    assert worker.drain() == 1
    ingest(services, {"type": "track", "anonymousId": "a-9", "event": "Viewed"})

    def move_to_another_profile() -> None:
        with services.db.transaction() as tx:
            tx.execute(
                "INSERT INTO profiles (id, part, created_at, updated_at, event_count) "
                "VALUES ('p_other', 1, 1, 1, 0)")
            tx.execute("UPDATE identifiers SET profile_id = 'p_other' "
                       "WHERE key = 'anonymous_id:a-9'")

    _meanwhile(worker.processor, move_to_another_profile)
    assert worker.drain() == 1
    assert worker.processor.retries == 1
    with services.db.read() as tx:
        count = tx.one("SELECT event_count FROM profiles WHERE id = 'p_other'")
    assert count == (1,)  # the event went to the identifier's owner at the time of writing
