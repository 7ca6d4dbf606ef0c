"""The SQLite store's writer locks: in a process, handed over in arrival order; between
processes, handed over as soon as it is free."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from partitur.store.db import FairLock


def test_waiters_get_the_lock_in_the_order_they_came() -> None:
    lock = FairLock()
    assert lock.acquire(timeout=1)
    order: list[int] = []
    threads = []
    for n in range(5):
        def take(n: int = n) -> None:
            assert lock.acquire(timeout=10)
            order.append(n)
            lock.release()
        t = threading.Thread(target=take)
        t.start()
        threads.append(t)
        time.sleep(0.05)  # queued one after the other
    lock.release()
    for t in threads:
        t.join(timeout=10)
    assert order == [0, 1, 2, 3, 4]


def test_a_wait_can_time_out_and_the_lock_still_works() -> None:
    lock = FairLock()
    assert lock.acquire(timeout=1)
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(lock.acquire(timeout=0.1)))
    t.start()
    t.join(timeout=5)
    assert got == [False]
    lock.release()
    assert lock.acquire(timeout=0.1)  # nobody left waiting: free again
    lock.release()


def _hold_in_another_process(path: str, seconds: float, ready: Any, done: Any) -> None:
    from partitur.store.db import SqliteDatabase

    db = SqliteDatabase(path)
    with db.transaction() as tx:
        tx.execute("INSERT INTO t (v) VALUES (1)")
        ready.set()
        time.sleep(seconds)
    done.value = time.monotonic()  # (CLOCK_MONOTONIC: one clock for all processes)
    db.close()


def test_a_writer_of_another_process_gets_the_lock_as_soon_as_it_is_free(tmp_path: Path
                                                                           ) -> None:
    # SQLite's own busy handler would sleep up to 100 ms between tries; the lock file wakes
    # the waiter within a millisecond or two of the other process's commit.
    from partitur.store.db import SqliteDatabase

    path = str(tmp_path / "x.db")
    db = SqliteDatabase(path)
    with db.transaction() as tx:
        tx.execute("CREATE TABLE t (v INTEGER)")
    ctx = multiprocessing.get_context("spawn")
    waits, lates = [], []
    for _ in range(5):
        ready, done = ctx.Event(), ctx.Value("d", 0.0)
        other = ctx.Process(target=_hold_in_another_process, args=(path, 0.45, ready, done))
        other.start()
        assert ready.wait(timeout=30)
        started = time.monotonic()
        with db.transaction() as tx:
            got = time.monotonic()
            tx.execute("INSERT INTO t (v) VALUES (2)")
        other.join(timeout=30)
        assert other.exitcode == 0
        waits.append(got - started)
        lates.append(got - done.value)
    db.close()
    # We waited for the other process's transaction (0.45 s) ...
    assert all(w > 0.3 for w in waits), waits
    # ... and got the lock within milliseconds of its end (SQLite's busy handler alone: up
    # to 100 ms later). The best of five, as a loaded machine may delay any one wake-up.
    assert min(lates) < 0.03, lates
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT v, count(*) FROM t GROUP BY v").fetchall() == [(1, 5),
                                                                                  (2, 5)]


def test_the_lock_of_a_killed_process_is_free_at_once(tmp_path: Path) -> None:
    from partitur.store.db import ProcessLock

    path = str(tmp_path / "x.db-writer")
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    other = ctx.Process(target=_lock_forever, args=(path, ready))
    other.start()
    assert ready.wait(timeout=30)
    lock = ProcessLock(path)
    assert not lock.acquire(timeout=0.05)  # held by the other process
    os.kill(other.pid, signal.SIGKILL)  # type: ignore[arg-type]
    other.join(timeout=30)
    assert lock.acquire(timeout=5)
    lock.release()
    lock.close()


def _lock_forever(path: str, ready: Any) -> None:
    from partitur.store.db import ProcessLock

    lock = ProcessLock(path)
    assert lock.acquire(timeout=5)
    ready.set()
    time.sleep(600)
