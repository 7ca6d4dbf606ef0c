"""Runs the processor in a thread of the server process until stopped.

Embedded (SQLite): one worker owns every partition. The same code runs as its own process
on PostgreSQL (``parts`` selects a partition range); identity writes are serialised there by
an advisory lock, so several workers never resolve the same person at once. On SQLite a
:class:`~partitur.worker.checkpoint.Checkpointer` runs beside it, and batches are worked out
before taking the write lock (``Processor.optimistic``), which the ingest path shares.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from partitur.store.db import SqliteDatabase
from partitur.worker.checkpoint import WORKER_AUTOCHECKPOINT, Checkpointer
from partitur.worker.processor import BatchResult, Processor

log = logging.getLogger("partitur.worker")


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
        self.idle = threading.Event()

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
            result = self.step()
            if result.processed == 0 and result.unattributed == 0 and result.suppressed == 0:
                return total
            total += result.processed

    def step(self) -> BatchResult:
        result = self.processor.run_batch(self.services.settings.worker_batch, self.parts)
        self.processed += result.processed
        self.batches += 1
        return result

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                result = self.step()
            except Exception:
                log.exception("profile worker batch failed; retrying in %.1fs", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            busy = result.processed or result.unattributed or result.suppressed
            if not busy:
                self.idle.set()
                self.services.wake.wait(1.0)
                self.services.wake.clear()
            else:
                self.idle.clear()
                time.sleep(0)
