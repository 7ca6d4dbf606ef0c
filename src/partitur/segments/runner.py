"""The segment runner: a thread that fires due memberships and runs backfills.

Started with the profile worker (``partitur serve`` and ``partitur worker``). Each tick
(``segments_tick_seconds``) it calls :func:`~partitur.segments.due.fire_due` with the
clock's time, then spends up to half a second on backfill batches; while a backfill has
work it does not wait for the next tick.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from partitur.segments.backfill import backfill_step
from partitur.segments.due import fire_due

if TYPE_CHECKING:
    from partitur.services import Services

log = logging.getLogger("partitur.segments")


class SegmentRunner:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.kick: threading.Event = services.extra["segments"].kick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="partitur-segments", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.kick.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def tick(self) -> bool:
        """One round; True if a backfill still has work."""
        fire_due(self.services, self.services.clock.now_us())
        deadline = time.monotonic() + 0.5
        more = False
        while time.monotonic() < deadline:
            more = backfill_step(self.services)
            if not more:
                break
        return more

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                more = self.tick()
            except Exception:
                log.exception("segment runner round failed; retrying in %.1fs", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            if not more:
                self.kick.wait(self.services.settings.segments_tick_seconds)
                self.kick.clear()
