"""``partitur worker``: the background work of ``partitur serve`` without the HTTP server.

A role picks what runs: ``events`` (the profile worker with its segment, journey and delivery
runners), ``analytics`` (the Parquet projector, one per analytics directory) or ``all``. Run
by hand beside ``partitur serve --no-worker``, or started by ``partitur serve`` itself when
``worker_processes`` is set (:mod:`partitur.worker.processes`), to use more than one core.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any, Literal

log = logging.getLogger("partitur.worker")

Role = Literal["all", "events", "analytics"]
ROLES: tuple[Role, ...] = ("all", "events", "analytics")


def run(
    services: Any,
    *,
    parts: tuple[int, int] | None,
    role: Role,
    stop: threading.Event,
    parent_pid: int | None = None,
    poll: float | None = None,
    started: Callable[[], None] | None = None,
    nudges: int | None = None,
) -> None:
    """Run until ``stop`` is set (or the parent process ``parent_pid`` has gone). ``nudges``:
    a file descriptor whose every byte wakes the profile worker (the server writes one after
    each commit, :mod:`partitur.worker.processes`); its end stops the run."""
    from partitur.journeys import JourneyRunner
    from partitur.segments import SegmentRunner
    from partitur.worker.runner import ProfileWorker

    stoppers: list[Callable[[], None]] = []
    if role in ("all", "events"):
        runner = ProfileWorker(services, parts=parts)
        if poll is not None:
            runner.poll = poll
        segment_runner = SegmentRunner(services)
        journey_runner = JourneyRunner(services.extra["journeys"])
        runner.start()
        segment_runner.start()
        journey_runner.start()
        stoppers += [runner.stop, segment_runner.stop, journey_runner.stop]
        if services.settings.dispatcher_enabled:
            from partitur.channels import Dispatcher

            dispatcher = Dispatcher(services)
            dispatcher.start()
            stoppers.append(dispatcher.stop)
    if role in ("all", "analytics") and services.settings.analytics_enabled:
        analytics = services.extra["analytics"]
        analytics.start()  # the Parquet projector; it locks its directory, so one at a time
        stoppers.append(analytics.stop)
    if nudges is not None:
        threading.Thread(target=_read_nudges, args=(nudges, services.wake, stop),
                         name="partitur-nudges", daemon=True).start()
    if started is not None:
        started()
    try:
        while not stop.wait(1.0):
            if parent_pid is not None and os.getppid() != parent_pid:
                log.warning("partitur serve (pid %d) has gone; stopping", parent_pid)
                break
    finally:
        for stop_one in reversed(stoppers):
            stop_one()


def _read_nudges(fd: int, wake: threading.Event, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            log.warning("partitur serve has closed the worker's pipe; stopping")
            stop.set()
            return
        wake.set()
