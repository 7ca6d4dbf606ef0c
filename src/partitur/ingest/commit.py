"""Group commit: many requests' events in one transaction, answered after it commits.

Request handlers hand their rows to :meth:`GroupCommitter.submit` and await the result. One
writer thread drains whatever has queued up (up to ``max_events``) into a single transaction, so
under load each commit (and each fsync) serves many requests, and when idle a lone request is
committed at once.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from partitur.errors import StorageError
from partitur.store.db import Database, Tx
from partitur.store.events import EventLog

log = logging.getLogger("partitur.ingest")

RejectedWriter = Callable[[Tx, Sequence[tuple[Any, ...]]], None]


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
        max_events: int = 20_000,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.log = log_
        self.write_rejected = write_rejected
        self.max_events = max_events
        self.on_commit = on_commit
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.commits = 0
        self.events = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="partitur-commit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=30)
            self._thread = None

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
                for item in items:
                    item.result = self.log.append(tx, item.rows) if item.rows else 0
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
            self.commits += 1
            self.events += sum(i.result for i in items)
            if self.on_commit is not None:
                self.on_commit()
        for item in items:
            if item.future is not None and item.loop is not None:
                item.loop.call_soon_threadsafe(_resolve, item)
            elif item.done is not None:
                item.done.set()


def _resolve(item: _Item) -> None:
    future = item.future
    if future is None or future.done():
        return
    if item.error is not None:
        future.set_exception(item.error)
    else:
        future.set_result(item.result)
