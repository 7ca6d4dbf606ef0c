"""The dispatcher: claims due outbox rows, sends them, records the results.

It runs in a thread of its own with its own event loop (``start``/``stop``), inside
``partitur serve`` and ``partitur worker``; ``drain()`` runs it in the calling thread until
nothing is due (tests, the CLI). Each turn of the loop:

1. records the results of the sends that have finished (one transaction for all of them,
   with their delivery events);
2. claims as many due rows as there is room for (``dispatcher_concurrency`` in flight,
   ``dispatcher_batch`` per claim, each channel's rate limit) — see :mod:`.claim`;
3. starts a task per claimed message on its channel's transport;
4. sleeps until woken: by a finished send, by :func:`partitur.channels.outbox.notify`
   (called after a transaction that enqueued messages commits; on PostgreSQL a ``NOTIFY``
   reaches every process), by the next due time, or after a second at most.

Rows are leased while being sent: if this process dies mid-send, another dispatcher (or this
one, restarted) claims the row when the lease ends and sends it again with the same
idempotency key, which the receiver uses to drop the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from partitur.channels.base import DeliveryError, Receipt, Transport
from partitur.channels.claim import Claimer, Job
from partitur.channels.config import ChannelConfig, build_transports
from partitur.channels.events import SOURCE_NAME
from partitur.channels.outbox import NOTIFY_CHANNEL, add_listener, remove_listener
from partitur.channels.policy import TokenBucket
from partitur.channels.ratelimit import limits_for, take
from partitur.channels.record import Finisher
from partitur.channels.unsubscribe import load_secret
from partitur.templates.document import CHANNELS

log = logging.getLogger("partitur.channels")
Result = tuple[Job, Receipt | DeliveryError]


class Dispatcher:
    POLL_S = 1.0

    def __init__(
        self,
        services: Any,
        *,
        transports: Mapping[str, Transport] | None = None,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.services = services
        self.db = services.db
        self.clock = services.clock
        self.config = ChannelConfig.from_settings(services.settings)
        source_id = services.keys.ensure_source(SOURCE_NAME).id
        self.finisher = Finisher(
            self.config,
            services.events,
            source_id=lambda: source_id,
            partitions=services.settings.partitions,
            secret=load_secret(services.db, services.settings.unsubscribe_secret),
            rng=rng or random.Random(),
            dialect=self.db.dialect,
        )
        self.claimer = Claimer(self.config, self.finisher, self.db.dialect)
        self._given = dict(transports or {})
        self.transports: dict[str, Transport] = {}
        # rate limits: in this process on SQLite, shared through the store on PostgreSQL,
        # where the seconds clock must be one that every dispatcher reads alike
        self.limits = limits_for(self.db.dialect, self.config.rate_limits)
        self.monotonic = monotonic or (time.time if self.db.dialect == "postgres"
                                       else time.monotonic)
        self._turn = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self.idle = threading.Event()
        self.errors = 0

    # -- the database side (sync, run in a worker thread) --------------------------------------
    def _limits(self, room: int, buckets: Mapping[str, TokenBucket], now_s: float
                ) -> tuple[dict[str, int], float | None]:
        """Rows to claim per channel, in rotating order; and the wait until a rate-limited
        channel has room again (None if none is held back)."""
        self._turn += 1
        order = [CHANNELS[(self._turn + i) % len(CHANNELS)] for i in range(len(CHANNELS))]
        limits: dict[str, int] = {}
        held: float | None = None
        for channel in order:
            bucket = buckets.get(channel)
            limit = room
            if bucket is not None:
                limit = min(limit, bucket.available(now_s))
                if limit <= 0:
                    wait = bucket.wait_s(now_s)
                    held = wait if held is None else min(held, wait)
            limits[channel] = limit
        return limits, held

    def claim(self, room: int) -> tuple[list[Job], float]:
        """Claim up to ``room`` messages; returns them and how long to sleep if idle."""
        return self.turn([], room)

    def record(self, results: list[Result]) -> None:
        self.turn(results, 0)

    def turn(self, results: list[Result], room: int) -> tuple[list[Job], float]:
        """Record ``results`` and claim up to ``room`` more messages, in one transaction (one
        wait for the store's write lock and one commit per turn, not two); returns the
        claimed messages and how long to sleep if there were none."""
        now_us = self.clock.now_us()
        jobs: list[Job] = []
        wait = self.POLL_S
        held = None
        written = 0
        with self.db.transaction() as tx:
            if results:
                self.finisher.outcomes(tx, results, now_us)
                written = self.finisher.flush(tx, now_us)
            if room > 0:
                now_s = self.monotonic()
                buckets = self.limits.open(tx, now_s)
                limits, held = self._limits(min(room, self.config.batch), buckets, now_s)
                jobs = self.claimer.claim(tx, limits, min(room, self.config.batch), now_us)
                if buckets:
                    take(buckets, (job.row.channel for job in jobs), now_s)
                    self.limits.save(tx, buckets)
                if not jobs:
                    found = tx.one("SELECT MIN(due_at) FROM outbox WHERE due_at IS NOT NULL")
                    if found and found[0] is not None:
                        wait = min(wait, max(0.0, (int(found[0]) - now_us) / 1e6))
        if written:
            self.services.wake.set()  # the profile worker: delivery events are queued
        if held is not None:
            wait = min(wait, max(0.005, held))
        return jobs, wait

    # -- sending ---------------------------------------------------------------------------------
    def _ensure_transports(self) -> None:
        if not self.transports:
            built = build_transports(self.services, lambda: self.clock.now_us() / 1e6)
            built.update(self._given)
            self.transports = built

    async def _send(self, job: Job) -> Result:
        transport = self.transports[job.row.channel]
        try:
            return job, await transport.send(job.envelope)
        except DeliveryError as exc:
            return job, exc
        except Exception as exc:  # a transport bug must not lose the message
            log.exception("transport %s failed on %s", job.row.channel, job.row.key)
            return job, DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)

    async def _close_transports(self) -> None:
        transports, self.transports = self.transports, {}
        for channel, transport in transports.items():
            if channel in self._given:
                continue  # the caller's to close
            with contextlib.suppress(Exception):
                await transport.aclose()

    def drain(self) -> int:
        """Send everything due now, in this thread, until nothing is due or in flight; returns
        how many messages were handed to a transport."""
        return asyncio.run(self._loop(until_idle=True))

    # -- running in the background ---------------------------------------------------------------
    def wake(self) -> None:
        loop, event = self._loop_ref, self._event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(event.set)

    async def _loop(self, *, until_idle: bool = False) -> int:
        self._loop_ref = asyncio.get_running_loop()
        event = self._event = asyncio.Event()
        self._ensure_transports()
        inflight: set[asyncio.Task[Result]] = set()
        finished: list[Result] = []
        handed = 0

        def done(task: asyncio.Task[Result]) -> None:
            inflight.discard(task)
            if not task.cancelled():
                finished.append(task.result())
            event.set()

        backoff = 0.5
        try:
            while not self._stop.is_set():
                event.clear()
                try:
                    batch = list(finished)
                    room = self.config.concurrency - len(inflight)
                    jobs: list[Job] = []
                    wait = self.POLL_S
                    if batch or room > 0:
                        jobs, wait = await asyncio.to_thread(self.turn, batch, room)
                        del finished[: len(batch)]
                    for job in jobs:
                        task = asyncio.create_task(self._send(job))
                        inflight.add(task)
                        task.add_done_callback(done)
                    handed += len(jobs)
                    backoff = 0.5
                except Exception:
                    if until_idle:
                        raise
                    self.errors += 1
                    log.exception("dispatcher turn failed; retrying in %.1fs", backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                if jobs and len(jobs) >= min(room, self.config.batch):
                    continue  # more may be due right away
                if not inflight and not finished:
                    if until_idle and not jobs:
                        break
                    self.idle.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), timeout=wait)
                self.idle.clear()
        finally:
            if inflight:  # let sends under way finish, then record them
                await asyncio.wait(inflight, timeout=10)
            if finished:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.record, list(finished))
            await self._close_transports()
            self._loop_ref = self._event = None
        return handed

    def _run(self) -> None:
        try:
            asyncio.run(self._loop())
        except Exception:
            log.exception("dispatcher stopped on an error")

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        add_listener(self.wake)
        self._thread = threading.Thread(target=self._run, name="partitur-dispatch", daemon=True)
        self._thread.start()
        if self.db.dialect == "postgres":
            self._listener = threading.Thread(
                target=self._listen, name="partitur-dispatch-listen", daemon=True
            )
            self._listener.start()

    def stop(self) -> None:
        remove_listener(self.wake)
        self._stop.set()
        self.wake()
        for thread in (self._thread, self._listener):
            if thread is not None:
                thread.join(timeout=30)
        self._thread = self._listener = None

    def _listen(self) -> None:
        """PostgreSQL: wake on ``NOTIFY partitur_outbox`` from any process's enqueue."""
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.db.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self.wake()
            except psycopg.Error:
                log.warning("outbox listener lost its connection; polling until it is back")
                self._stop.wait(2.0)
