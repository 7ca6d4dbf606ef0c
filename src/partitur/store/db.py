"""The storage interface's lowest layer: a database that runs portable SQL.

Repositories (``partitur.store.*``) write SQL once with ``?`` placeholders and ``ON CONFLICT``
upserts, which both SQLite (>= 3.35) and PostgreSQL understand. The two implementations of
:class:`Database` differ in connections, placeholders and a few capabilities (time partitions,
advisory locks), which they expose as methods rather than as ``if dialect`` branches in callers.
"""

from __future__ import annotations

import collections
import fcntl
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from itertools import chain
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec

from partitur.errors import StorageError

Params = Sequence[Any]
Row = tuple[Any, ...]


def chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """``items`` in slices small enough for one ``IN (?, ...)`` list on either backend."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
    __slots__ = ("_conn", "_many", "after_commit", "notes")

    def __init__(self, conn: sqlite3.Connection, many: _MultiRow) -> None:
        self._conn = conn
        self._many = many
        # Run, in order, once this transaction has committed (not after a rollback): how
        # in-process caches learn of what the transaction wrote, and only if it stayed.
        self.after_commit: list[Callable[[], None]] = []
        self.notes: dict[str, Any] = {}  # per-transaction scratch space for those caches

    def execute(self, sql: str, params: Params = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        if not isinstance(rows, list | tuple):
            rows = list(rows)
        if not self._many.run(self._conn, sql, rows):
            self._conn.executemany(sql, rows)

    def one(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = self._conn.execute(sql, params).fetchone()
        return row


_INSERT_VALUES = re.compile(
    r"^(\s*INSERT\s.*?\bVALUES\s*)(\(\s*\?(?:\s*,\s*\?)*\s*\))([^?]*)$", re.I | re.S
)


def chunk_sizes(count: int, most: int) -> Iterator[int]:
    """``count`` split into chunks of ``most`` (a power of two) and then of smaller powers of
    two, so that a handful of statement shapes, each prepared once, cover any count."""
    while count >= most:
        yield most
        count -= most
    size = most // 2
    while count:
        if count >= size:
            yield size
            count -= size
        size //= 2


class _MultiRow:
    """``executemany`` of a plain ``INSERT ... VALUES (?, ...)`` as multi-row inserts.

    Python's sqlite3 releases the GIL around every step of a statement, that is for every row
    of an ``executemany``. While other threads run Python (the event loop, the worker), each of
    those hand-offs can wait up to the interpreter's switch interval (5 ms), and a writer that
    inserts thousands of rows crawls. One statement per chunk (up to 4096 rows, or SQLite's
    limit of bound values) needs a few hand-offs per table instead of one per row, and is about
    a third faster on its own too. Chunks are a full size or a power of two, so that a dozen
    statement shapes, each prepared once and kept in the connection's statement cache, serve
    any count. Statements whose shape is not recognised (a ``?`` after ``VALUES``,
    ``RETURNING``) run row by row as before; the result is the same either way.
    """

    MOST_ROWS = 4096

    def __init__(self, max_variables: int) -> None:
        self.max_variables = max_variables
        self._shapes: dict[str, tuple[str, str, str, int, int] | None] = {}
        self._sql: dict[tuple[str, int], str] = {}

    def _shape(self, sql: str) -> tuple[str, str, str, int, int] | None:
        if sql in self._shapes:
            return self._shapes[sql]
        shape = None
        match = _INSERT_VALUES.match(sql)
        if match and "returning" not in match.group(3).lower():
            head, group, tail = match.groups()
            width = group.count("?")
            most = 1
            while most * 2 <= self.MOST_ROWS and most * 2 * width <= self.max_variables:
                most *= 2
            shape = (head, group, tail, width, most)
        self._shapes[sql] = shape
        return shape

    def run(self, conn: sqlite3.Connection, sql: str, rows: Sequence[Params]) -> bool:
        """Insert ``rows``; False when ``sql`` is not a plain multi-row-able INSERT."""
        shape = self._shape(sql)
        if shape is None or len(rows) < 2:
            return False
        if len(self._sql) > 4096:  # statements are constants in the code; a bound all the same
            self._sql.clear()
            self._shapes.clear()
        head, group, tail, width, most = shape
        if any(len(row) != width for row in rows):
            row = next(row for row in rows if len(row) != width)
            raise sqlite3.ProgrammingError(
                f"Incorrect number of bindings supplied. The current statement uses "
                f"{width}, and there are {len(row)} supplied."
            )
        start = 0
        for size in chunk_sizes(len(rows), most):
            key = (sql, size)
            text = self._sql.get(key)
            if text is None:
                text = self._sql[key] = head + ",".join([group] * size) + tail
            conn.execute(text, list(chain.from_iterable(rows[start : start + size])))
            start += size
        return True


WRITER_WAIT = 60.0  # seconds a write transaction waits for this process's other writers


class FairLock:
    """A lock handed to its waiters in the order they came (``threading.Lock`` wakes any of
    them, and a thread that releases and at once asks again usually wins: the profile
    worker then kept the store from the group commit and the dispatcher)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held = False
        self._waiters: collections.deque[threading.Lock] = collections.deque()

    def acquire(self, timeout: float) -> bool:
        with self._guard:
            if not self._held:
                self._held = True
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        if waiter.acquire(timeout=timeout):
            return True  # handed over by release(): held
        with self._guard:
            try:
                self._waiters.remove(waiter)
            except ValueError:
                return True  # handed over just as the wait ended
            return False

    def release(self) -> None:
        with self._guard:
            if self._waiters:
                self._waiters.popleft().release()  # still held: now by that waiter
            else:
                self._held = False


class ProcessLock:
    """The write lock between processes sharing one SQLite file (``partitur serve`` and its
    ``partitur worker`` children): an ``flock`` on a file beside the database, taken after
    this process's :class:`FairLock`, so it is held by one thread of a process at a time.

    Without it a writer of another process waits in SQLite's busy handler, which sleeps up
    to 100 ms between tries whatever happens to the lock meanwhile: with the server and a
    worker process writing, messages waited hundreds of milliseconds in the outbox. Here a
    waiter tries again after at most a millisecond. The kernel drops the lock of a process
    that dies, so a crash never leaves it held."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout: float) -> bool:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        deadline = time.monotonic() + timeout
        pause = 0.0001
        while time.monotonic() < deadline:
            time.sleep(pause)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pause = min(pause * 2, 0.001)
        return False

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            with suppress(OSError):
                os.close(self._fd)
            self._fd = None


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
        # Write transactions of this process's threads queue here. SQLite's own busy handler
        # (for other processes) polls with sleeps of up to 100 ms instead of waking a waiter
        # when the lock is free: with the group commit, the worker, the dispatcher and the
        # timers all writing, threads spent most of their time asleep in it.
        self._writer = FairLock()
        self._others = None if self.path == ":memory:" else ProcessLock(self.path + "-writer")
        self._many: _MultiRow | None = None

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, timeout=30,
                    cached_statements=512,
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
                if self._many is None:
                    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
                    self._many = _MultiRow(limit)
        return conn

    def _tx(self, conn: sqlite3.Connection) -> _SqliteTx:
        assert self._many is not None
        return _SqliteTx(conn, self._many)

    @contextmanager
    def transaction(self) -> Iterator[_SqliteTx]:
        conn = self._conn()
        if not self._writer.acquire(timeout=WRITER_WAIT):
            raise StorageError(f"no write lock on {self.path} within {WRITER_WAIT:g} s")
        try:
            if self._others is not None and not self._others.acquire(timeout=WRITER_WAIT):
                raise StorageError(
                    f"no write lock on {self.path} within {WRITER_WAIT:g} s: another process "
                    "holds it")
            try:
                conn.execute("BEGIN IMMEDIATE")
                tx = self._tx(conn)
                try:
                    yield tx
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                if self._others is not None:
                    self._others.release()
        finally:
            self._writer.release()
        for callback in tx.after_commit:
            callback()

    @contextmanager
    def read(self) -> Iterator[_SqliteTx]:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield self._tx(conn)
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
        if self._others is not None:
            self._others.close()
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


# -- set-at-a-time helpers (both dialects) ------------------------------------------------------
_JSON_ENCODE = msgspec.json.Encoder().encode
_HAS_JSON_EACH: dict[str, bool] = {}
_IN_MARKER = "IN (?...)"
_PG_IN: dict[tuple[str, str], str] = {}


def pg_json_param(values: Any) -> str:
    """Many values as one PostgreSQL parameter: a JSON document, expanded by the server
    (``jsonb_array_elements``). Encoding a list as JSON costs a few nanoseconds a value in C,
    where psycopg's array dumpers spend a microsecond or more per element in Python: on the
    worker's batches that was a fifth of its time."""
    return _JSON_ENCODE(values).decode()


def pg_int_array(values: Iterable[int]) -> str:
    """Integers as one PostgreSQL array parameter in its text form (``{1,2,3}``, cast with
    ``?::bigint[]``): for numbers this is cheaper than JSON to build and, for the server, to
    read (``unnest`` of arrays instead of ``jsonb_array_elements`` and a cast per field)."""
    return "{" + ",".join(map(str, values)) + "}"


def pg_json_array(placeholder: str, pg_type: str) -> str:
    """SQL for a ``pg_type[]`` built server-side from a JSON array parameter."""
    element = "e" if pg_type == "text" else f"e::{pg_type}"
    return f"ARRAY(SELECT {element} FROM jsonb_array_elements_text({placeholder}::jsonb) AS j(e))"


def _pg_rows(tx: _PgTx, query: str, params: Params) -> list[Row]:
    """Run psycopg's own query text (many values go as one JSON parameter: ``pg_json_param``)."""
    cur = tx.raw.execute(query, params)
    return [] if cur.description is None else list(cur.fetchall())


def _sqlite_json_each(tx: _SqliteTx) -> bool:
    """Whether this SQLite has ``json_each`` (built in since 3.38; usually there before)."""
    found = _HAS_JSON_EACH.get("sqlite")
    if found is None:
        try:
            tx.execute("SELECT value FROM json_each('[1]')")
            found = True
        except sqlite3.OperationalError:
            found = False
        _HAS_JSON_EACH["sqlite"] = found
    return found


def select_in(
    tx: Tx, sql: str, values: Sequence[Any], pg_type: str, params: Params = ()
) -> list[Row]:
    """The rows of ``sql``, whose one ``IN (?...)`` stands for ``values`` (after ``params``).

    One statement of constant text, whatever the number of values: ``= ANY(?::type[])`` on
    PostgreSQL, ``IN (SELECT value FROM json_each(?))`` on SQLite (``IN`` lists of at most
    500 where SQLite has no ``json_each``). ``values`` must be ``str`` or ``int``; ``pg_type``
    is their PostgreSQL type (``text``, ``bigint``). Nothing is run for no values.
    """
    if not values:
        return []
    if _IN_MARKER not in sql:
        raise ValueError(f"select_in needs {_IN_MARKER!r} in {sql!r}")
    if isinstance(tx, _PgTx):
        query = _PG_IN.get((sql, pg_type))
        if query is None:
            array = pg_json_array("\x01", pg_type)
            query = _to_pyformat(sql.replace(_IN_MARKER, f"= ANY({array})"))
            query = _PG_IN[(sql, pg_type)] = query.replace("\x01", "%t")
        return _pg_rows(tx, query, [*params, pg_json_param(list(values))])
    if isinstance(tx, _SqliteTx) and _sqlite_json_each(tx):
        return tx.execute(
            sql.replace(_IN_MARKER, "IN (SELECT value FROM json_each(?))"),
            [*params, _JSON_ENCODE(values).decode()],
        )
    out: list[Row] = []
    for chunk in chunks(list(values)):
        out.extend(
            tx.execute(sql.replace(_IN_MARKER, f"IN ({','.join('?' * len(chunk))})"),
                       [*params, *chunk])
        )
    return out


class BulkInsert:
    """An ``INSERT`` of many rows as one statement on either dialect.

    ``columns`` are ``(name, PostgreSQL type)``; ``tail`` follows the rows (``ON CONFLICT
    ...``). PostgreSQL gets ``INSERT ... SELECT (r->>0)::type, ... FROM jsonb_array_elements(?)``:
    one statement of constant text whose one parameter is the rows as a JSON array of arrays,
    whatever the count (``ordered`` keeps the rows' order, for serial ids). Values must be
    ``str``, ``int``, ``float``, ``bool`` or ``None``. SQLite gets multi-row ``VALUES``
    (``Tx.executemany``). On PostgreSQL, rows of one call must not hit the same conflict
    target twice with ``DO UPDATE`` (one statement cannot change a row twice); SQLite applies
    them in order.
    """

    __slots__ = ("_pg_query", "pg_sql", "sqlite_sql", "width")

    def __init__(
        self, table: str, columns: Sequence[tuple[str, str]], tail: str = "",
        *, ordered: bool = False,
    ) -> None:
        names = ", ".join(name for name, _ in columns)
        fields = ", ".join(
            f"r->>{n}" if kind == "text" else f"(r->>{n})::{kind}"
            for n, (_, kind) in enumerate(columns)
        )
        self.width = len(columns)
        self.sqlite_sql = (
            f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * self.width)}) {tail}"
        ).rstrip()
        if ordered:
            source = (
                f"SELECT {fields} FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY "
                "AS u(r, ord_) ORDER BY ord_"
            )
        else:
            source = f"SELECT {fields} FROM jsonb_array_elements(?::jsonb) AS u(r)"
        self.pg_sql = f"INSERT INTO {table} ({names}) {source} {tail}".rstrip()
        self._pg_query = _to_pyformat(self.pg_sql).replace("%s", "%t")

    def run(self, tx: Tx, rows: Sequence[Params]) -> None:
        if not rows:
            return
        if isinstance(tx, _PgTx):
            widths = {len(row) for row in rows}
            if widths != {self.width}:
                raise StorageError(f"{self.width} columns expected, got {sorted(widths)}")
            _pg_rows(tx, self._pg_query, (pg_json_param(rows),))
        else:
            tx.executemany(self.sqlite_sql, rows)


@contextmanager
def pipelined(tx: Tx) -> Iterator[None]:
    """Writes whose results nobody reads, sent without waiting for each to finish.

    On PostgreSQL the block runs in psycopg's pipeline mode: each statement goes out at once and
    the server works on it while Python prepares the next; the block waits for all of them when
    it ends, and an error in any of them is raised there (the transaction is then failed).
    Only for statements that return nothing: a read inside the block sees no rows. Elsewhere a
    plain block."""
    if isinstance(tx, _PgTx):
        with tx.raw.pipeline():
            yield
    else:
        yield
