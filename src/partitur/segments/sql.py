"""SQL shapes that differ in cost between the stores, behind one call.

On PostgreSQL a list of ids is one array parameter (``= ANY(?)``) and many rows are one
``unnest`` statement, so the statement text stays the same whatever the count (prepared once,
no per-row round trip); on SQLite ``IN (...)`` lists and multi-row inserts are the fast path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from partitur.store.db import Tx, chunks


def id_chunks(dialect: str, column: str, ids: Sequence[Any]) -> Iterator[tuple[str, list[Any]]]:
    """``(condition, params)`` pairs that together select ``column`` in ``ids``."""
    if not ids:
        return
    if dialect == "postgres":
        yield f"{column} = ANY(?)", [list(ids)]
        return
    for chunk in chunks(list(ids), 400):
        yield f"{column} IN ({','.join('?' * len(chunk))})", list(chunk)


def insert_rows(
    tx: Tx, dialect: str, table: str, columns: Sequence[tuple[str, str]],
    rows: Sequence[tuple[Any, ...]], conflict: str = "",
) -> None:
    """Insert ``rows``; ``columns`` are ``(name, PostgreSQL type)``."""
    if not rows:
        return
    names = ", ".join(name for name, _ in columns)
    if dialect == "postgres":
        arrays = ", ".join(f"?::{kind}[]" for _, kind in columns)
        params = [[row[i] for row in rows] for i in range(len(columns))]
        tx.execute(f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}) {conflict}",
                   params)
        return
    marks = ", ".join("?" * len(columns))
    tx.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}", rows)


def delete_pairs(
    tx: Tx, dialect: str, table: str, first: str, second: str,
    pairs: Sequence[tuple[Any, ...]],
) -> None:
    """Delete the rows whose ``(first, second)`` is one of ``pairs`` (text columns)."""
    if not pairs:
        return
    if dialect == "postgres":
        tx.execute(
            f"DELETE FROM {table} t USING unnest(?::text[], ?::text[]) AS d(a, b) "
            f"WHERE t.{first} = d.a AND t.{second} = d.b",
            [[p[0] for p in pairs], [p[1] for p in pairs]],
        )
        return
    tx.executemany(f"DELETE FROM {table} WHERE {first} = ? AND {second} = ?", pairs)
