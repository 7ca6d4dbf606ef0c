"""Runs the processor in a thread of the server process until stopped.

Embedded (SQLite): one worker owns every partition. The same code runs as its own process
on PostgreSQL (``parts`` selects a partition range); identity writes are serialised there by
an advisory lock, so several workers never resolve the same person at once. On SQLite a
:class:`~partitur.worker.checkpoint.Checkpointer` runs beside it, and batches are worked out
before taking the write lock (``Processor.optimistic``), which the ingest path shares.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

from partitur.errors import StorageError
from partitur.store.db import SqliteDatabase
from partitur.worker import deadletter
from partitur.worker.checkpoint import WORKER_AUTOCHECKPOINT, Checkpointer
from partitur.worker.processor import BatchResult, Processor

log = logging.getLogger("partitur.worker")


def _transient(exc: BaseException) -> bool:
    """Failures of the store rather than of the events: try the same batch again later."""
    if isinstance(exc, StorageError | sqlite3.OperationalError):
        return True
    try:
        import psycopg
        import psycopg_pool
    except ImportError:  # pragma: no cover - PostgreSQL extras not installed
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg_pool.PoolTimeout)


class ProfileWorker:
    def __init__(self, services: Any, parts: tuple[int, int] | None = None) -> None:
        self.services = services
        self.parts = parts
        self.processor = Processor(
            services.db,
            services.events,
            services.settings,
            services.clock,
            hooks=services.batch_hooks,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpointer: Checkpointer | None = None
        self.processed = 0
        self.batches = 0
        self.set_aside = 0  # events moved to failed_events
        self._limit: int | None = None  # smaller than worker_batch while narrowing a failure
        self._strikes = 0  # failures of a batch of one event in a row
        self.idle = threading.Event()
        # Longest idle wait for new events. In the server's process the ingest path wakes the
        # worker at each commit; a worker in a process of its own can only look (see
        # ``worker.processes``), so it looks more often.
        self.poll = 1.0

    def start(self) -> None:
        db = self.services.db
        if isinstance(db, SqliteDatabase) and db.path != ":memory:":
            self.checkpointer = Checkpointer(db)
            self.checkpointer.start()
            self.processor.wal_autocheckpoint = WORKER_AUTOCHECKPOINT
            self.processor.optimistic = True  # the ingest path needs the write lock too
        self._thread = threading.Thread(target=self._run, name="partitur-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.services.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self.checkpointer is not None:
            self.checkpointer.stop()
            self.checkpointer = None

    def drain(self) -> int:
        """Process until the queue is empty (used by tests and the CLI); returns the count."""
        total = 0
        while True:
            try:
                result = self.step()
            except Exception as exc:
                if _transient(exc):
                    raise
                continue  # narrowing down to the event at fault, which is then set aside
            if result.processed == 0 and result.unattributed == 0 and result.suppressed == 0:
                return total
            total += result.processed

    def step(self) -> BatchResult:
        """One batch. A batch that fails for a reason other than the store is tried again in
        smaller pieces, down to one event, which after ``worker_failed_attempts`` failures
        on its own is set aside (:mod:`partitur.worker.deadletter`); the error is raised
        either way, so the caller can log it and decide when to go on."""
        full = self.services.settings.worker_batch
        limit = self._limit or full
        try:
            result = self.processor.run_batch(limit, self.parts)
        except Exception as exc:
            if not _transient(exc):
                self._failed(exc, limit)
            raise
        self._strikes = 0
        if self._limit is not None:  # back towards full batches after the bad event
            self._limit = None if self._limit * 4 >= full else self._limit * 4
        self.processed += result.processed
        self.batches += 1
        return result

    def _failed(self, exc: Exception, limit: int) -> None:
        if limit > 1:
            self._limit = max(1, limit // 8)
            return
        self._strikes += 1
        if self._strikes < self.services.settings.worker_failed_attempts:
            return
        with self.services.db.transaction() as tx:
            found = deadletter.head(tx, self.parts)
            if found is None:
                return
            seq, part = found
            deadletter.set_aside(tx, seq, part, deadletter.describe(exc), self._strikes,
                                 self.services.clock.now_us())
        log.error("event %d set aside after %d failures: %s (GET /api/v1/events/failed)",
                  seq, self._strikes, deadletter.describe(exc))
        self.set_aside += 1
        self._strikes = 0

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                result = self.step()
            except Exception as exc:
                if _transient(exc):
                    log.exception("profile worker batch failed; retrying in %.1fs", backoff)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
                else:  # narrowing down to the event at fault: go on at once
                    log.warning("profile worker batch failed (%s); trying %d events",
                                deadletter.describe(exc), self._limit or 1)
                    self._stop.wait(0.05)
                continue
            backoff = 0.5
            busy = result.processed or result.unattributed or result.suppressed
            if not busy:
                self.idle.set()
                self.services.wake.wait(self.poll)
                self.services.wake.clear()
            else:
                self.idle.clear()
                time.sleep(0)
