"""Group commit: many requests' events in one transaction, answered after it commits.

Request handlers hand their rows to :meth:`GroupCommitter.submit` and await the result. A
writer thread (one on SQLite, two on PostgreSQL) drains whatever has queued up (up to
``max_events``) into a single transaction, so under load each commit (and each fsync) serves
many requests, and when idle a lone request is committed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from partitur.errors import StorageError
from partitur.store.db import Database, Tx
from partitur.store.events import EventLog

log = logging.getLogger("partitur.ingest")

RejectedWriter = Callable[[Tx, Sequence[tuple[Any, ...]]], None]
# Removes, in place, the rows and rejected records of erased people from the requests' items
# (``privacy.SuppressionCheck``); returns how many it removed.
SuppressionFilter = Callable[[Tx, Sequence[Any]], int]


@dataclass(slots=True)
class _Item:
    rows: Sequence[Sequence[Any]]
    rejected: Sequence[tuple[Any, ...]]
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[int] | None
    done: threading.Event | None = None
    result: int = 0
    error: BaseException | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_STOP = object()


class GroupCommitter:
    def __init__(
        self,
        db: Database,
        log_: EventLog,
        *,
        write_rejected: RejectedWriter | None = None,
        drop_suppressed: SuppressionFilter | None = None,
        max_events: int = 20_000,
        on_commit: Callable[[], None] | None = None,
        switch_interval: float | None = 0.0005,
        writers: int | None = None,
    ) -> None:
        self.db = db
        self.log = log_
        self.write_rejected = write_rejected
        self.drop_suppressed = drop_suppressed
        self.max_events = max_events
        self.on_commit = on_commit
        # SQLite has one writer at a time whatever we do; PostgreSQL commits several groups at
        # once, and while one writer waits for the server another fills the next group.
        self.writers = writers or (1 if db.dialect == "sqlite" else 2)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.switch_interval = switch_interval
        self._saved_interval: float | None = None
        self.commits = 0
        self.events = 0

    def start(self) -> None:
        if not self._threads:
            self._shorten_switch_interval()
            for n in range(self.writers):
                thread = threading.Thread(
                    target=self._run, name=f"partitur-commit-{n}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        if self._threads:
            for _ in self._threads:
                self._queue.put(_STOP)
            for thread in self._threads:
                thread.join(timeout=30)
            self._threads = []
            if self._saved_interval is not None:
                if sys.getswitchinterval() == self.switch_interval:
                    sys.setswitchinterval(self._saved_interval)
                self._saved_interval = None

    def _shorten_switch_interval(self) -> None:
        """The writer lets go of the GIL around every database call and then waits to get it
        back from the event loop's thread, which, while busy, keeps it for up to the switch
        interval: 5 ms by default, a dozen times per commit. A shorter interval makes each
        commit that much shorter (about a third more events/s in ``bench/ingest.py``), at the
        price of a few more thread switches."""
        current = sys.getswitchinterval()
        if self.switch_interval and current > self.switch_interval:
            self._saved_interval = current
            sys.setswitchinterval(self.switch_interval)

    async def submit(
        self, rows: Sequence[Sequence[Any]], rejected: Sequence[tuple[Any, ...]] = ()
    ) -> int:
        """Write the rows durably; returns how many were new (not duplicates)."""
        if not rows and not rejected:
            return 0
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._queue.put(_Item(rows, rejected, loop, future))
        return await future

    def submit_sync(
        self, rows: Sequence[Sequence[Any]], rejected: Sequence[tuple[Any, ...]] = ()
    ) -> int:
        item = _Item(rows, rejected, None, None, threading.Event())
        self._queue.put(item)
        assert item.done is not None
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item.result

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            items = [first]
            count = len(first.rows)
            stop = False
            while count < self.max_events:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                items.append(nxt)
                count += len(nxt.rows)
            self._commit(items)
            if stop:
                return

    def _commit(self, items: list[_Item]) -> None:
        try:
            with self.db.transaction() as tx:
                if self.drop_suppressed is not None:
                    # Erased people stay out: neither the log nor the rejected store sees them.
                    self.drop_suppressed(tx, items)
                # One append for the whole group: a few statements per commit rather than a
                # few per request, whatever the number of requests waiting.
                counts = self.log.append_groups(tx, [item.rows for item in items])
                for item, count in zip(items, counts, strict=True):
                    item.result = count
                    if item.rejected and self.write_rejected is not None:
                        self.write_rejected(tx, item.rejected)
        except BaseException as exc:  # every waiting request learns of the failure
            log.exception("group commit of %d requests failed", len(items))
            error: BaseException = exc
            if isinstance(exc, Exception) and not isinstance(exc, StorageError):
                error = StorageError(f"the event log could not be written: {exc}")
            for item in items:
                item.error = error
        else:
            with self._lock:
                self.commits += 1
                self.events += sum(i.result for i in items)
            if self.on_commit is not None:
                self.on_commit()
        # One wake-up per event loop for the whole group, not one per request.
        by_loop: dict[asyncio.AbstractEventLoop, list[_Item]] = {}
        for item in items:
            if item.future is not None and item.loop is not None:
                by_loop.setdefault(item.loop, []).append(item)
            elif item.done is not None:
                item.done.set()
        for loop, waiting in by_loop.items():
            # A loop that has closed has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, waiting)


def _resolve(items: list[_Item]) -> None:
    for item in items:
        future = item.future
        if future is None or future.done():
            continue
        if item.error is not None:
            future.set_exception(item.error)
        else:
            future.set_result(item.result)
