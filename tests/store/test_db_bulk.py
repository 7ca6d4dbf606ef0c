"""``select_in`` and ``BulkInsert``: one statement for any number of values or rows, with the
same result on both stores as the row-by-row statements they replace."""

from __future__ import annotations

import pytest

from partitur.services import Services
from partitur.store.db import BulkInsert, pipelined, select_in

_UPSERT = BulkInsert(
    "t_bulk",
    [("k", "text"), ("n", "bigint"), ("note", "text")],
    "ON CONFLICT (k) DO UPDATE SET n = t_bulk.n + excluded.n, note = excluded.note",
)


@pytest.fixture
def table(services: Services) -> Services:
    with services.db.transaction() as tx:
        tx.execute("CREATE TABLE t_bulk (k TEXT PRIMARY KEY, n BIGINT NOT NULL, note TEXT)")
        tx.execute(
            "CREATE TABLE t_log (id INTEGER PRIMARY KEY"
            + (" GENERATED ALWAYS AS IDENTITY" if services.db.dialect == "postgres" else "")
            + ", word TEXT NOT NULL)"
        )
    return services


def _all(services: Services) -> list[tuple[object, ...]]:
    with services.db.read() as tx:
        return [tuple(r) for r in tx.execute("SELECT k, n, note FROM t_bulk ORDER BY k")]


@pytest.mark.parametrize("count", [0, 1, 2, 1500])
def test_insert_then_upsert_any_number_of_rows(table: Services, count: int) -> None:
    rows = [(f"k{i:05d}", i, None if i % 3 else f"n'{i},\"{{x}}\\") for i in range(count)]
    with table.db.transaction() as tx:
        _UPSERT.run(tx, rows)
    assert _all(table) == rows
    with table.db.transaction() as tx:
        _UPSERT.run(tx, [(k, 1, "again") for k, _, _ in rows[: count // 2]])
    expected = [
        (k, n + 1, "again") if i < count // 2 else (k, n, note)
        for i, (k, n, note) in enumerate(rows)
    ]
    assert _all(table) == expected


def test_ordered_insert_numbers_rows_in_order(table: Services) -> None:
    words = [f"w{i}" for i in range(700, 0, -1)]
    insert = BulkInsert("t_log", [("word", "text")], ordered=True)
    with table.db.transaction() as tx:
        insert.run(tx, [(w,) for w in words])
        got = [r[0] for r in tx.execute("SELECT word FROM t_log ORDER BY id")]
    assert got == words


def test_rows_of_the_wrong_width_are_refused_and_nothing_is_written(table: Services) -> None:
    with pytest.raises(Exception, match=r"bindings|column|argument"), table.db.transaction() as tx:
        _UPSERT.run(tx, [("a", 1, None), ("b", 2)])
    assert _all(table) == []


@pytest.mark.parametrize("count", [0, 1, 499, 501, 2000])
def test_select_in_finds_exactly_the_values(table: Services, count: int) -> None:
    rows = [(f"k{i:05d}", i, "even" if i % 2 == 0 else "odd") for i in range(2100)]
    with table.db.transaction() as tx:
        _UPSERT.run(tx, rows)
    wanted = [f"k{i:05d}" for i in range(0, 2 * count, 2)] + ["missing", "k'; --"]
    numbers = list(range(1, 2 * count, 2))
    with table.db.read() as tx:
        by_key = select_in(tx, "SELECT k FROM t_bulk WHERE k IN (?...)", wanted, "text")
        by_number = select_in(
            tx, "SELECT k FROM t_bulk WHERE note = ? AND n IN (?...)", numbers, "bigint",
            ("odd",),
        )
        none = select_in(tx, "SELECT k FROM t_bulk WHERE k IN (?...)", [], "text")
    assert sorted(r[0] for r in by_key) == [f"k{i:05d}" for i in range(0, min(2 * count, 2100), 2)]
    assert sorted(r[0] for r in by_number) == [f"k{n:05d}" for n in numbers if n < 2100]
    assert none == []


def test_select_in_needs_its_marker(table: Services) -> None:
    with table.db.read() as tx, pytest.raises(ValueError, match="IN"):
        select_in(tx, "SELECT k FROM t_bulk WHERE k = ?", ["a"], "text")


def test_a_column_of_nothing_but_nulls(table: Services) -> None:
    rows = [("a", 1, None), ("b", 2, None)]
    with table.db.transaction() as tx:
        _UPSERT.run(tx, rows)
    assert _all(table) == rows


def test_a_failing_write_in_a_pipelined_block_fails_the_transaction(table: Services) -> None:
    plain = BulkInsert("t_bulk", [("k", "text"), ("n", "bigint"), ("note", "text")])
    with (
        pytest.raises(Exception, match=r"UNIQUE|unique|duplicate"),
        table.db.transaction() as tx,
        pipelined(tx),
    ):
        plain.run(tx, [("a", 1, None)])
        plain.run(tx, [("a", 2, None)])
        plain.run(tx, [("b", 3, None)])
    assert _all(table) == []
    with table.db.transaction() as tx:  # the store is usable again
        with pipelined(tx):
            plain.run(tx, [("a", 1, None), ("b", 2, "x")])
        assert [r[0] for r in tx.execute("SELECT k FROM t_bulk ORDER BY k")] == ["a", "b"]
    assert _all(table) == [("a", 1, None), ("b", 2, "x")]
