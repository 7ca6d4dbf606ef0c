"""The embedded store's in-memory index of recent messageIds: exact, restart-proof, bounded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from partitur.store import recent_ids
from partitur.store.db import SqliteDatabase
from partitur.store.events import SqliteEventLog
from partitur.store.migrations import migrate
from partitur.store.recent_ids import RecentIds


def row(message_id: str, at: int) -> tuple[Any, ...]:
    return (message_id, "src", "track", "E", "u", None, at, at, 0, "{}")


@pytest.fixture
def db(tmp_path: Path) -> Any:
    database = SqliteDatabase(tmp_path / "p.db", synchronous="NORMAL")
    migrate(database)
    yield database
    database.close()


def append(db: SqliteDatabase, log: SqliteEventLog, *rows: tuple[Any, ...]) -> int:
    with db.transaction() as tx:
        return log.append(tx, rows)


def count(db: SqliteDatabase) -> int:
    with db.read() as tx:
        found = tx.one("SELECT COUNT(*) FROM events")
    assert found is not None
    return int(found[0])


def test_levels_seal_merge_and_find_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RecentIds, "FRESH_MAX", 100)
    index = RecentIds()
    for start in range(0, 1000, 50):
        index.add((f"id-{i}", i) for i in range(start, start + 50))
    assert len(index) == 1000
    assert 1 < len(index.levels) <= 4  # sealed every 100, merged like a binary counter
    sizes = [len(h) for h, _, _ in index.levels]
    assert sizes == sorted(sizes, reverse=True)
    found = index.candidates([f"id-{i}" for i in range(-5, 1005)])
    assert sorted(found) == sorted(f"id-{i}" for i in range(1000))
    assert all(found[f"id-{i}"] == [i] for i in range(1000))


def test_forget_drops_old_entries_and_whole_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RecentIds, "FRESH_MAX", 100)
    index = RecentIds()
    index.add((f"id-{i}", i) for i in range(450))
    assert index.forget(300) == 300
    assert len(index) == 150
    assert sorted(index.candidates([f"id-{i}" for i in range(450)])) == sorted(
        f"id-{i}" for i in range(300, 450)
    )


def test_restart_rebuilds_the_index_from_the_log(db: SqliteDatabase) -> None:
    first = SqliteEventLog(db)
    assert append(db, first, row("a", 10), row("b", 20)) == 2
    again = SqliteEventLog(db)  # a new process: empty index, rebuilt on first use
    assert append(db, again, row("a", 30), row("c", 30)) == 1
    assert count(db) == 3


def test_rebuild_goes_back_one_window(db: SqliteDatabase) -> None:
    hour = 3_600_000_000
    log = SqliteEventLog(db)
    append(db, log, row("old", 0), row("recent", 40 * hour))
    restarted = SqliteEventLog(db, window_us=24 * hour)
    assert append(db, restarted, row("recent", 41 * hour)) == 0
    assert len(restarted.recent) == 1  # "old" is outside the window of the newest event


def test_a_rolled_back_append_is_not_remembered(db: SqliteDatabase) -> None:
    log = SqliteEventLog(db)
    with pytest.raises(RuntimeError), db.transaction() as tx:
        assert log.append(tx, [row("x", 1)]) == 1
        raise RuntimeError("request failed after the append")
    assert append(db, log, row("x", 2)) == 1
    assert count(db) == 1


def test_two_appends_in_one_transaction_see_each_other(db: SqliteDatabase) -> None:
    log = SqliteEventLog(db)
    with db.transaction() as tx:
        assert log.append(tx, [row("x", 1), row("y", 1)]) == 2
        assert log.append(tx, [row("y", 1), row("z", 1)]) == 1
    assert append(db, log, row("x", 3), row("z", 3)) == 0
    assert count(db) == 3


def test_another_connection_writing_is_caught_up(db: SqliteDatabase, tmp_path: Path) -> None:
    other_db = SqliteDatabase(tmp_path / "p.db", synchronous="NORMAL")
    mine, theirs = SqliteEventLog(db), SqliteEventLog(other_db)
    assert append(db, mine, row("m1", 1)) == 1
    assert append(other_db, theirs, row("t1", 2), row("m1", 2)) == 1
    assert append(db, mine, row("t1", 3), row("m2", 3)) == 1
    other_db.close()
    assert count(db) == 3


def test_hash_collisions_never_drop_an_event(
    db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recent_ids, "id_hash", lambda message_id: 42)  # every id collides
    monkeypatch.setattr(RecentIds, "FRESH_MAX", 3)
    log = SqliteEventLog(db)
    for n in range(10):
        assert append(db, log, row(f"id-{n}", n)) == 1
    assert append(db, log, *(row(f"id-{n}", 99) for n in range(12))) == 2
    assert count(db) == 12


def test_forgetting_an_old_id_keeps_a_newer_one_with_the_same_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recent_ids, "id_hash", lambda message_id: 7)
    index = RecentIds()
    index.add([("old", 1), ("new", 50), ("newer", 60)])
    assert index.forget(10) == 1
    assert index.candidates(["new"]) == {"new": [50, 60]}
