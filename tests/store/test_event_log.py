"""The shared storage suite for the event log: the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from partitur.clock import ManualClock, to_us
from partitur.services import Services, dedup_cutoff_us
from partitur.store.db import open_database
from partitur.store.events import event_log_for


def row(message_id: str, ts: int, part: int = 0, body: str = "{}") -> tuple[Any, ...]:
    return (message_id, "src", "track", "E", "u", None, ts, ts, part, body)


def test_append_assigns_increasing_seqs_and_queues(services: Services) -> None:
    now = services.clock.now_us()
    with services.db.transaction() as tx:
        assert services.events.append(tx, [row("a", now), row("b", now, part=7)]) == 2
    with services.db.read() as tx:
        pending = services.events.pending(tx, 10)
        assert [r[1] for r in pending] == ["a", "b"]
        assert pending[0][0] < pending[1][0]
        assert [r[1] for r in services.events.pending(tx, 10, parts=(5, 8))] == ["b"]
        assert services.events.backlog(tx) == 2


def test_duplicates_within_a_request_and_across_commits(services: Services) -> None:
    now = services.clock.now_us()
    with services.db.transaction() as tx:
        assert services.events.append(tx, [row("x", now), row("x", now), row("y", now)]) == 2
    with services.db.transaction() as tx:
        assert services.events.append(tx, [row("x", now), row("z", now)]) == 1
    with services.db.read() as tx:
        assert services.events.count(tx) == 3


def test_done_removes_from_queue_but_not_from_log(services: Services) -> None:
    now = services.clock.now_us()
    with services.db.transaction() as tx:
        services.events.append(tx, [row("a", now), row("b", now)])
    with services.db.transaction() as tx:
        first = services.events.pending(tx, 1)
        services.events.done(tx, [first[0][0]])
    with services.db.read() as tx:
        assert [r[1] for r in services.events.pending(tx, 10)] == ["b"]
        assert services.events.count(tx) == 2


def test_dedup_across_connections_racing(services: Services, database_url: str | None) -> None:
    """Two writers (as two server processes would be) send the same messageIds at once."""
    settings = services.settings
    others = [
        open_database(database_url=database_url, sqlite_path=settings.sqlite_path,
                      synchronous="NORMAL")
        for _ in range(2)
    ]
    now = services.clock.now_us()
    rows = [row(f"m{i}", now) for i in range(300)]
    barrier = threading.Barrier(2)
    stored: list[int] = []
    lock = threading.Lock()

    def writer(db: Any) -> None:
        log = event_log_for(db)
        barrier.wait()
        for start in range(0, len(rows), 50):
            with db.transaction() as tx:
                n = log.append(tx, rows[start : start + 50])
            with lock:
                stored.append(n)

    threads = [threading.Thread(target=writer, args=(db,)) for db in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for db in others:
        db.close()
    assert sum(stored) == 300
    with services.db.read() as tx:
        assert services.events.count(tx) == 300
        assert services.events.backlog(tx) == 300


def test_message_ids_remembered_at_least_a_day(make_services: Any, clock: ManualClock) -> None:
    services: Services = make_services(dedup_hours=1)  # below the floor of 24 h
    now = clock.now_us()
    with services.db.transaction() as tx:
        services.events.append(tx, [row("old", now)])
    clock.advance(timedelta(hours=23))
    with services.db.transaction() as tx:
        assert services.events.forget_message_ids(tx, dedup_cutoff_us(services)) == 0
        assert services.events.append(tx, [row("old", clock.now_us())]) == 0
    clock.advance(timedelta(hours=2))
    with services.db.transaction() as tx:
        assert services.events.forget_message_ids(tx, dedup_cutoff_us(services)) == 1


@pytest.mark.store("postgres")
def test_postgres_event_log_is_partitioned_by_month(services: Services) -> None:
    if services.db.dialect != "postgres":
        pytest.skip("SQLite keeps the log in one table")
    created = services.events.ensure_partitions(datetime(2030, 5, 17, tzinfo=UTC))
    assert created == ["events_2030_05", "events_2030_06", "events_2030_07"]
    when = to_us(datetime(2030, 6, 2, tzinfo=UTC))
    with services.db.transaction() as tx:
        services.events.append(tx, [row("june", when)])
    with services.db.read() as tx:
        found = tx.one(
            "SELECT tableoid::regclass::text FROM events WHERE message_id = ?", ("june",)
        )
    assert found is not None and found[0].endswith("events_2030_06")
    assert services.events.ensure_partitions(datetime(2030, 5, 17, tzinfo=UTC)) == []


@pytest.mark.store("postgres")
def test_postgres_rebuilds_lost_message_ids_from_the_log(services: Services) -> None:
    """``message_ids`` is unlogged on PostgreSQL: a crash of the database server empties it
    (and ``dedup_state`` with it). The next append notices and rebuilds the window."""
    if services.db.dialect != "postgres":
        pytest.skip("SQLite keeps recent ids in memory, rebuilt from the log at start")
    now = services.clock.now_us()
    with services.db.transaction() as tx:
        assert services.events.append(tx, [row("a", now), row("b", now)]) == 2
    with services.db.transaction() as tx:  # what crash recovery does to unlogged tables
        tx.execute("TRUNCATE message_ids, dedup_state")
    with services.db.transaction() as tx:
        assert services.events.append(tx, [row("a", now), row("c", now)]) == 1
    with services.db.read() as tx:
        assert services.events.count(tx) == 3
        ids = tx.execute("SELECT message_id FROM message_ids ORDER BY message_id")
        assert [r[0] for r in ids] == ["a", "b", "c"]
        persistence = tx.execute(
            "SELECT relname, relpersistence FROM pg_class WHERE relname IN "
            "('message_ids', 'dedup_state', 'events') "
            "AND relnamespace = current_schema()::regnamespace ORDER BY relname"
        )
    assert persistence == [("dedup_state", "u"), ("events", "p"), ("message_ids", "u")]
