"""The storage interface's lowest layer: a database that runs portable SQL.

Repositories (``partitur.store.*``) write SQL once with ``?`` placeholders and ``ON CONFLICT``
upserts, which both SQLite (>= 3.35) and PostgreSQL understand. The two implementations of
:class:`Database` differ in connections, placeholders and a few capabilities (time partitions,
advisory locks), which they expose as methods rather than as ``if dialect`` branches in callers.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal, Protocol

from partitur.errors import StorageError

Params = Sequence[Any]
Row = tuple[Any, ...]


class Tx(Protocol):
    """One open transaction."""

    def execute(self, sql: str, params: Params = ()) -> list[Row]: ...

    def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...

    def one(self, sql: str, params: Params = ()) -> Row | None: ...


class Database(Protocol):
    dialect: Literal["sqlite", "postgres"]

    def transaction(self) -> Any:
        """A context manager yielding a :class:`Tx`; commits on success."""
        ...

    def read(self) -> Any:
        """A context manager yielding a :class:`Tx` for reads."""
        ...

    def executescript(self, script: str) -> None: ...

    def close(self) -> None: ...


class _SqliteTx:
    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Params = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self._conn.executemany(sql, rows)

    def one(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = self._conn.execute(sql, params).fetchone()
        return row


class SqliteDatabase:
    """SQLite in WAL mode; one connection per thread; writers serialise on SQLite's lock."""

    dialect: Literal["sqlite", "postgres"] = "sqlite"

    def __init__(self, path: Path | str, *, synchronous: str = "FULL") -> None:
        self.path = str(path)
        self.synchronous = synchronous.upper()
        if self.synchronous not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise StorageError(
                f"sqlite_synchronous must be OFF/NORMAL/FULL/EXTRA, not {synchronous}"
            )
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, timeout=30
                )
            except sqlite3.Error as exc:
                raise StorageError(f"cannot open SQLite database {self.path}: {exc}") from exc
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA foreign_keys=OFF")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA cache_size=-65536")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[_SqliteTx]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _SqliteTx(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[_SqliteTx]:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield _SqliteTx(conn)
        finally:
            conn.execute("COMMIT")

    def executescript(self, script: str) -> None:
        self._conn().executescript(script)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()


_QMARK = re.compile(r"\?")


def _to_pyformat(sql: str) -> str:
    return _QMARK.sub("%s", sql.replace("%", "%%"))


class _PgTx:
    __slots__ = ("_cache", "_conn")

    def __init__(self, conn: Any, cache: dict[str, str]) -> None:
        self._conn = conn
        self._cache = cache

    def _sql(self, sql: str) -> str:
        out = self._cache.get(sql)
        if out is None:
            out = self._cache[sql] = _to_pyformat(sql)
        return out

    def execute(self, sql: str, params: Params = ()) -> list[Row]:
        cur = self._conn.execute(self._sql(sql), params or None)
        if cur.description is None:
            return []
        return list(cur.fetchall())

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        if rows:
            with self._conn.cursor() as cur:
                cur.executemany(self._sql(sql), rows)

    def one(self, sql: str, params: Params = ()) -> Row | None:
        cur = self._conn.execute(self._sql(sql), params or None)
        if cur.description is None:
            return None
        row: Row | None = cur.fetchone()
        return row

    @property
    def raw(self) -> Any:
        """The psycopg connection, for COPY."""
        return self._conn


class PostgresDatabase:
    """PostgreSQL through psycopg 3 with a small connection pool."""

    dialect: Literal["sqlite", "postgres"] = "postgres"

    def __init__(self, url: str, *, max_size: int = 8) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError as exc:  # pragma: no cover - both are dependencies
            raise StorageError("PostgreSQL needs psycopg and psycopg-pool installed") from exc
        self.url = url
        self._psycopg = psycopg
        try:
            with psycopg.connect(url, connect_timeout=5) as probe:
                probe.execute("SELECT 1")
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to PostgreSQL at {_redact(url)}: {exc}") from exc
        self._pool = ConnectionPool(
            url, min_size=1, max_size=max_size, open=True, kwargs={"autocommit": False}
        )
        self._cache: dict[str, str] = {}

    @contextmanager
    def transaction(self) -> Iterator[_PgTx]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield _PgTx(conn, self._cache)
        except self._psycopg.OperationalError as exc:
            raise StorageError(f"PostgreSQL error: {exc}") from exc

    read = transaction

    def executescript(self, script: str) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(script)

    def close(self) -> None:
        self._pool.close()


def _redact(url: str) -> str:
    return re.sub(r"//([^:@/]+):[^@/]*@", r"//\1:***@", url)


def open_database(
    *, database_url: str | None, sqlite_path: Path, synchronous: str = "FULL"
) -> SqliteDatabase | PostgresDatabase:
    if database_url:
        return PostgresDatabase(database_url)
    return SqliteDatabase(sqlite_path, synchronous=synchronous)
