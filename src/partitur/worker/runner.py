"""Runs the processor in a thread until stopped."""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("partitur.worker")


class ProfileWorker:
    def __init__(self, services: Any) -> None:
        self.services = services
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="partitur-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.services.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.services.wake.wait(1.0)
            self.services.wake.clear()
