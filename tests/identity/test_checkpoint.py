"""SQLite: while the worker runs in the server, WAL checkpoints happen in a thread of their own."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from partitur.services import Services
from partitur.store.db import SqliteDatabase
from partitur.worker import ProfileWorker
from partitur.worker.checkpoint import WORKER_AUTOCHECKPOINT, Checkpointer
from tests.identity.test_worker import ingest

pytestmark = pytest.mark.store("sqlite")


@pytest.fixture
def sqlite_services(services: Services) -> Services:
    if not isinstance(services.db, SqliteDatabase):
        pytest.skip("WAL checkpoints are SQLite's")
    return services


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


def test_a_running_worker_leaves_checkpoints_to_the_checkpointer(
    sqlite_services: Services,
) -> None:
    services = sqlite_services
    worker = ProfileWorker(services)
    worker.start()
    try:
        assert "partitur-checkpoint" in _threads()
        assert worker.checkpointer is not None
        ingest(services, *[{"type": "track", "anonymousId": f"a-{i}", "event": "E"}
                           for i in range(50)])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with services.db.read() as tx:
                if services.events.backlog(tx) == 0:
                    break
            time.sleep(0.05)
        assert worker.processed == 50
        while worker.checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.checkpointer.checkpoints > 0
        assert worker.processor.wal_autocheckpoint == WORKER_AUTOCHECKPOINT
    finally:
        worker.stop()
    assert "partitur-checkpoint" not in _threads()
    assert worker.checkpointer is None


def test_the_processor_connection_checkpoints_rarely_only_when_told(
    sqlite_services: Services,
) -> None:
    services = sqlite_services
    db = services.db
    assert isinstance(db, SqliteDatabase)
    ingest(services, {"type": "track", "anonymousId": "a-1", "event": "E"},
           {"type": "track", "anonymousId": "a-2", "event": "E"})
    worker = ProfileWorker(services)
    services.settings = services.settings.model_copy(update={"worker_batch": 1})
    worker.step()  # in this thread, on this thread's connection
    assert db._conn().execute("PRAGMA wal_autocheckpoint").fetchone() == (1000,)
    worker.processor.wal_autocheckpoint = WORKER_AUTOCHECKPOINT
    worker.step()
    assert db._conn().execute("PRAGMA wal_autocheckpoint").fetchone() == (WORKER_AUTOCHECKPOINT,)
    assert worker.processed == 2


def _rows_in_the_database_file(db: SqliteDatabase, tmp: Path) -> int | None:
    """How many rows of t_ck the database file itself holds (the log left out)."""
    copy = tmp / "copy.db"
    shutil.copyfile(db.path, copy)
    with sqlite3.connect(copy) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM t_ck").fetchone()[0])
        except sqlite3.OperationalError:
            return None


def test_a_checkpoint_copies_the_log_into_the_database(
    sqlite_services: Services, tmp_path: Path
) -> None:
    db = sqlite_services.db
    assert isinstance(db, SqliteDatabase)
    with db.transaction() as tx:
        tx.execute("PRAGMA wal_autocheckpoint=0")
        tx.execute("CREATE TABLE t_ck (n INTEGER)")
        tx.executemany("INSERT INTO t_ck (n) VALUES (?)", [(i,) for i in range(5000)])
    assert _rows_in_the_database_file(db, tmp_path) is None  # still only in the log
    checkpointer = Checkpointer(db)
    checkpointer.checkpoint()
    checkpointer.stop()
    assert checkpointer.checkpoints == 1
    assert _rows_in_the_database_file(db, tmp_path) == 5000
