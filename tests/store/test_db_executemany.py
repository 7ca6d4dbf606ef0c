"""``Tx.executemany``: on SQLite, plain INSERTs run as multi-row statements; the result must be
exactly what row-by-row execution gives, on both stores."""

from __future__ import annotations

import sqlite3

import pytest

from partitur.services import Services
from partitur.store.db import SqliteDatabase, chunk_sizes


@pytest.fixture
def table(services: Services) -> Services:
    with services.db.transaction() as tx:
        tx.execute("CREATE TABLE t_many (k TEXT PRIMARY KEY, n INTEGER NOT NULL, note TEXT)")
    return services


def _all(services: Services) -> list[tuple[object, ...]]:
    with services.db.read() as tx:
        return tx.execute("SELECT k, n, note FROM t_many ORDER BY k")


@pytest.mark.parametrize("count", [0, 1, 2, 3, 1023, 1024, 1025, 3001])
def test_any_number_of_rows(table: Services, count: int) -> None:
    rows = [(f"k{i:05d}", i, None if i % 3 else f"n{i}") for i in range(count)]
    with table.db.transaction() as tx:
        tx.executemany("INSERT INTO t_many (k, n, note) VALUES (?, ?, ?)", rows)
    assert _all(table) == rows


def test_upserts_apply_in_order_as_row_by_row(table: Services) -> None:
    rows = [("a", 1, "first"), ("b", 2, None), ("a", 3, "second"), ("a", 4, "third")]
    with table.db.transaction() as tx:
        tx.executemany("INSERT INTO t_many (k, n, note) VALUES (?, ?, ?)", rows[:1])
        tx.executemany(
            "INSERT INTO t_many (k, n, note) VALUES (?, ?, ?) "
            "ON CONFLICT (k) DO UPDATE SET n = t_many.n + excluded.n, note = excluded.note",
            rows[1:],
        )
    assert _all(table) == [("a", 8, "third"), ("b", 2, None)]


def test_do_nothing_on_conflict(table: Services) -> None:
    with table.db.transaction() as tx:
        tx.executemany(
            "INSERT INTO t_many (k, n) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [("a", 1), ("a", 2), ("b", 3)],
        )
    assert _all(table) == [("a", 1, None), ("b", 3, None)]


def test_a_conflict_rolls_back_the_whole_transaction(table: Services) -> None:
    with (
        pytest.raises(Exception, match=r"UNIQUE|unique|duplicate"),
        table.db.transaction() as tx,
    ):
        tx.executemany("INSERT INTO t_many (k, n) VALUES (?, ?)", [("a", 1), ("a", 2)])
    assert _all(table) == []


def test_other_statements_run_row_by_row(table: Services) -> None:
    with table.db.transaction() as tx:
        tx.executemany("INSERT INTO t_many (k, n) VALUES (?, ?)", [("a", 1), ("b", 2)])
        tx.executemany("UPDATE t_many SET n = n * ? WHERE k = ?", [(10, "a"), (100, "b")])
        tx.executemany(
            "INSERT INTO t_many (k, n) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET n = ?",
            [("a", 0, 5), ("c", 7, 0)],
        )
    assert _all(table) == [("a", 5, None), ("b", 200, None), ("c", 7, None)]


def test_wrong_number_of_values_is_refused() -> None:
    db = SqliteDatabase(":memory:")
    try:
        with db.transaction() as tx:
            tx.execute("CREATE TABLE t (a, b)")
        with pytest.raises(sqlite3.ProgrammingError, match="bindings"), db.transaction() as tx:
            tx.executemany("INSERT INTO t (a, b) VALUES (?, ?)", [(1, 2), (3,), (4, 5)])
        with db.read() as tx:
            assert tx.execute("SELECT COUNT(*) FROM t") == [(0,)]
    finally:
        db.close()


@pytest.mark.parametrize("count", [0, 1, 5, 64, 100, 1000, 1024, 4097])
def test_chunk_sizes_cover_the_count_with_few_shapes(count: int) -> None:
    sizes = list(chunk_sizes(count, 1024))
    assert sum(sizes) == count
    assert all(size == 1024 or size & (size - 1) == 0 for size in sizes)
    assert len(sizes) <= count // 1024 + 10
