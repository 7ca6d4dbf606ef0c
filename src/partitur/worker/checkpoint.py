"""SQLite WAL checkpoints in a thread of their own, mostly off the profile worker's commits.

By default SQLite checkpoints in the commit that takes the write-ahead log past 1,000 pages
(4 MiB): it copies the log into the database file and syncs it while the committing thread
waits. A worker batch writes several MiB (every new person dirties pages all over the indexes),
so nearly every batch paid for a checkpoint of its own. While the worker runs in the server,
this thread checkpoints every ``interval`` seconds in ``PASSIVE`` mode (it never waits for
writers or readers, and does nothing when the log holds nothing new), copying the log while the
worker computes its next batch. The log can only start over from its beginning once it has been
copied completely before a write transaction begins, which a writer that is always busy never
sees; so the worker's connection still checkpoints in a commit, but only past
:data:`WORKER_AUTOCHECKPOINT` pages, and then has little left to copy. The log stays under
about that size plus one batch. Other connections keep SQLite's default.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

from partitur.store.db import SqliteDatabase

log = logging.getLogger("partitur.worker")
WORKER_AUTOCHECKPOINT = 5000  # pages (20 MiB of 4 KiB pages)


class Checkpointer:
    def __init__(self, db: SqliteDatabase, *, interval: float = 0.5) -> None:
        self.db = db
        self.interval = interval
        self.checkpoints = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="partitur-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def checkpoint(self) -> None:
        """One passive checkpoint (on this object's own connection)."""
        if self._conn is None:
            self._conn = sqlite3.connect(
                self.db.path, isolation_level=None, check_same_thread=False, timeout=30
            )
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self.checkpoints += 1

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.checkpoint()
                except sqlite3.Error as exc:
                    log.warning("WAL checkpoint failed: %s", exc)
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
