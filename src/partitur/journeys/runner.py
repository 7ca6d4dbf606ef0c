"""The timer runner: a thread that fires due waits on time.

Started with the profile worker (``partitur serve`` and ``partitur worker``). It keeps an
in-memory heap of the wake times of the next few minutes (``journeys_lookahead_seconds``),
read from the due index every ``journeys_tick_seconds`` and pushed to by this process's own
commits, and sleeps until the earliest of them or the next tick, so a wait fires within a
tick of its ``wake_at`` (well under a second by default) without polling the store more often.
The store stays the truth: every firing claims rows with :func:`~.timers.fire_due`.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from typing import TYPE_CHECKING

from partitur.journeys.timers import fire_due, fire_schedules

if TYPE_CHECKING:
    from partitur.journeys.service import JourneyService

log = logging.getLogger("partitur.journeys")
HEAP_MAX = 50_000


class JourneyRunner:
    def __init__(self, service: JourneyService) -> None:
        self.service = service
        self.clock = service.clock
        self.kick = threading.Event()
        self._lock = threading.Lock()
        self._heap: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refreshed = 0.0
        self.fired = 0

    def start(self) -> None:
        self.service.listeners.append(self.push)
        self._thread = threading.Thread(target=self._run, name="partitur-journeys", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.kick.set()
        if self.push in self.service.listeners:
            self.service.listeners.remove(self.push)
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def push(self, wakes: list[tuple[int, str, int]]) -> None:
        """New wake times committed by this process (called after the commit)."""
        horizon = self.clock.now_us() + int(self.service.settings.journeys_lookahead_seconds
                                            * 1e6)
        soonest = self._heap[0][0] if self._heap else None
        with self._lock:
            for at, iid, _ in wakes:
                if at <= horizon and len(self._heap) < HEAP_MAX:
                    heapq.heappush(self._heap, (at, iid))
        if wakes and (soonest is None or min(w[0] for w in wakes) < soonest):
            self.kick.set()

    def refresh(self) -> None:
        now = self.clock.now_us()
        horizon = now + int(self.service.settings.journeys_lookahead_seconds * 1e6)
        with self.service.db.read() as tx:
            rows = tx.execute(
                "SELECT wake_at, id FROM journey_instances WHERE wake_at IS NOT NULL "
                "AND wake_at <= ? ORDER BY wake_at LIMIT ?", (horizon, HEAP_MAX),
            )
        heap = [(int(at), iid) for at, iid in rows]
        heapq.heapify(heap)
        with self._lock:
            self._heap = heap
        self._refreshed = time.monotonic()

    def next_wake(self) -> int | None:
        with self._lock:
            return self._heap[0][0] if self._heap else None

    def tick(self) -> int:
        now = self.clock.now_us()
        fired = fire_due(self.service, now)
        fire_schedules(self.service, now)
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                heapq.heappop(self._heap)
        self.fired += fired
        return fired

    def _run(self) -> None:
        backoff = 0.5
        tick = self.service.settings.journeys_tick_seconds
        while not self._stop.is_set():
            try:
                self.tick()
                if time.monotonic() - self._refreshed >= tick:
                    self.refresh()
            except Exception:
                log.exception("journey timers failed; retrying in %.1fs", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            delay = tick
            soonest = self.next_wake()
            if soonest is not None:
                delay = min(delay, max(0.0, (soonest - self.clock.now_us()) / 1e6))
            if delay > 0:
                self.kick.wait(delay)
            self.kick.clear()
