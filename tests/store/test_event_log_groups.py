"""Appending many requests at once (the group commit's path), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from typing import Any

from partitur.services import Services
from partitur.store.db import open_database
from partitur.store.events import event_log_for


def row(message_id: str, ts: int, part: int = 0, user: str = "u") -> tuple[Any, ...]:
    body = json.dumps({"type": "track", "event": "E", "messageId": message_id})
    return (message_id, "src", "track", "E", user, None, ts, ts + 1, part, body)


def test_counts_per_group_with_duplicates_within_and_across_groups(services: Services) -> None:
    now = services.clock.now_us()
    with services.db.transaction() as tx:
        assert services.events.append(tx, [row("old", now)]) == 1
    groups = [
        [row("a", now), row("b", now), row("a", now)],  # repeated inside the request
        [row("b", now), row("c", now)],  # "b" already came with the first request
        [row("old", now)],  # stored by an earlier commit
        [],
        [row("d", now, part=9)],
    ]
    with services.db.transaction() as tx:
        assert services.events.append_groups(tx, groups) == [2, 1, 0, 0, 1]
    with services.db.read() as tx:
        stored = tx.execute("SELECT seq, message_id, part FROM events ORDER BY seq")
        queued = tx.execute("SELECT seq, part FROM event_queue ORDER BY seq")
        ids = (
            tx.execute("SELECT message_id, received_at FROM message_ids ORDER BY message_id")
            if services.db.dialect == "postgres"  # SQLite remembers them in memory
            else sorted((r[1], now + 1) for r in stored)
        )
    assert [r[1] for r in stored] == ["old", "a", "b", "c", "d"]
    seqs = [r[0] for r in stored]
    assert seqs == sorted(set(seqs))
    assert [(r[0], r[2]) for r in stored] == queued
    assert ids == [(m, now + 1) for m in ("a", "b", "c", "d", "old")]


def test_rows_read_back_as_written(services: Services) -> None:
    now = services.clock.now_us()
    rows = [row(f"m{i}", now + i, part=i % 7, user=f"u{i}") for i in range(1500)]
    with services.db.transaction() as tx:
        assert services.events.append_groups(tx, [rows[:700], rows[700:]]) == [700, 800]
    with services.db.read() as tx:
        pending = services.events.pending(tx, 2000)
    assert [r[1:] for r in pending] == rows
    assert [r[0] for r in pending] == sorted(r[0] for r in pending)


def test_seqs_keep_growing_after_erasure(services: Services) -> None:
    now = services.clock.now_us()
    with services.db.transaction() as tx:
        services.events.append_groups(tx, [[row("a", now), row("b", now)]])
    with services.db.transaction() as tx:
        top = tx.one("SELECT MAX(seq) FROM events")
        assert top is not None
        services.events.delete_seqs(tx, [top[0]])
    with services.db.transaction() as tx:
        services.events.append_groups(tx, [[row("c", now)]])
    with services.db.read() as tx:
        seqs = [r[0] for r in tx.execute("SELECT seq FROM events ORDER BY seq")]
    assert len(seqs) == 2 and seqs[1] > top[0]


def test_writers_claiming_overlapping_ids_in_opposite_orders(
    services: Services, database_url: str | None
) -> None:
    """Two servers get the same events in different orders: each is stored once, and neither
    writer fails (on PostgreSQL, claims are taken in one order, so they cannot deadlock)."""
    now = services.clock.now_us()
    ids = [f"x{i:04d}" for i in range(400)]
    rounds = [ids[start : start + 100] for start in range(0, 400, 100)]
    dbs = [
        open_database(
            database_url=database_url, sqlite_path=services.settings.sqlite_path,
            synchronous="NORMAL",
        )
        for _ in range(2)
    ]
    stored: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)
    lock = threading.Lock()

    def writer(db: Any, backwards: bool) -> None:
        log = event_log_for(db)
        try:
            for chunk in rounds:
                barrier.wait(timeout=30)
                mine = list(reversed(chunk)) if backwards else chunk
                groups = [[row(m, now)] for m in mine]
                with db.transaction() as tx:
                    counts = log.append_groups(tx, groups)
                with lock:
                    stored.append(sum(counts))
        except BaseException as exc:  # reported below, so the test names the failure
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(db, i == 1)) for i, db in enumerate(dbs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for db in dbs:
        db.close()
    assert not errors, errors
    assert sum(stored) == 400
    with services.db.read() as tx:
        assert services.events.count(tx) == 400
        assert services.events.backlog(tx) == 400
