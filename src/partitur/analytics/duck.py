"""DuckDB, in-process and offline: connections for the projector and for queries.

Only DuckDB's built-in Parquet and JSON support is used; extensions are never installed or
auto-loaded (the machine may have no network). Each query gets its own connection with a
thread and memory budget and is interrupted when it runs past its time limit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from partitur.errors import StorageError


def connect(*, threads: int, memory_limit: str, temp_dir: Path | None = None) -> Any:
    """A fresh in-memory DuckDB connection with extension loading off."""
    conn = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "threads": max(1, int(threads)),
            "memory_limit": memory_limit,
        },
    )
    conn.execute("SET TimeZone = 'UTC'")
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        conn.execute(f"SET temp_directory = '{sql_text(str(temp_dir))}'")
    return conn


def sql_text(value: str) -> str:
    """``value`` for use inside a single-quoted SQL literal."""
    return value.replace("'", "''")


def sql_list(paths: list[str]) -> str:
    return "[" + ", ".join(f"'{sql_text(p)}'" for p in paths) + "]"


class QueryTimeout(StorageError):
    """An analytics query ran past ``analytics_query_timeout``."""

    code = "query_timeout"


@contextmanager
def deadline(conn: Any, seconds: float) -> Iterator[None]:
    """Interrupt whatever ``conn`` runs once ``seconds`` have passed."""
    fired = threading.Event()

    def stop() -> None:
        fired.set()
        conn.interrupt()

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        yield
    except duckdb.InterruptException:
        raise QueryTimeout(
            f"the analytics query took longer than {seconds:g} s and was cancelled "
            "(setting analytics_query_timeout)"
        ) from None
    except duckdb.Error as exc:
        if fired.is_set():
            raise QueryTimeout(
                f"the analytics query took longer than {seconds:g} s and was cancelled "
                "(setting analytics_query_timeout)"
            ) from None
        raise StorageError(f"analytics query failed: {exc}") from exc
    finally:
        timer.cancel()
