"""Sends the simulated population's events to the server's own tracking API, over real HTTP.

A daemon thread: it waits until ``/health`` answers, then posts one ``/v1/batch`` per touchpoint
each interval, paced by a token bucket so the average rate stays at ``rate`` events a second.
It only ever talks to a loopback address, and stops when told to (the app's shutdown) or after
``max_events``.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

from partitur.clock import Clock, iso
from partitur.demo.population import Outgoing, Population

log = logging.getLogger("partitur.demo")


def loopback_url(host: str, port: int) -> str:
    """The URL the simulator uses to reach a server bound to ``host``; loopback or an error."""
    if host == "localhost":
        return f"http://127.0.0.1:{port}"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ValueError(f"'{host}' is not a loopback address") from None
    if not address.is_loopback:
        raise ValueError(f"'{host}' is not a loopback address")
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{shown}:{port}"


class Simulator:
    def __init__(
        self,
        base_url: str,
        keys: Mapping[str, str],
        population: Population,
        clock: Clock,
        *,
        rate: float = 4.0,
        interval: float = 1.0,
        max_events: int = 100_000,
    ) -> None:
        host = urlsplit(base_url).hostname or ""
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"the simulator only sends to a loopback address, not '{host}'")
        if rate <= 0 or interval <= 0:
            raise ValueError("rate and interval must be positive")
        self.base_url = base_url.rstrip("/")
        self.keys = dict(keys)
        self.population = population
        self.clock = clock
        self.rate = rate
        self.interval = interval
        self.max_events = max_events
        self.accepted = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error = ""

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="partitur-demo", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        if not self._wait_for_health():
            return
        log.info("simulated population: about %g events/s to %s", self.rate, self.base_url)
        credit, last = 0.0, time.monotonic()
        while not self._stop.is_set() and self.accepted + self.failed < self.max_events:
            now = time.monotonic()
            credit = min(credit + self.rate * (now - last), self.rate * 5)
            last = now
            if credit >= 1:
                batch = self.population.tick(self.clock.now_us(), int(credit))
                credit -= len(batch)
                self._send(batch)
            self._stop.wait(self.interval)
        if not self._stop.is_set():
            log.info("simulated population finished after %d events", self.max_events)

    def _wait_for_health(self) -> bool:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(f"{self.base_url}/health", timeout=5) as response:
                    if response.status == 200:
                        return True
            except (OSError, ValueError):
                pass
            self._stop.wait(0.2)
        return False

    def _send(self, batch: list[Outgoing]) -> None:
        by_source: dict[str, list[dict[str, object]]] = {}
        for item in batch:
            by_source.setdefault(item.source, []).append(item.message)
        for source, messages in by_source.items():
            if self._stop.is_set():
                return
            body = {"batch": messages, "sentAt": iso(self.clock.now_us())}
            if self._post(self.keys[source], body):
                self.accepted += len(messages)
            else:
                self.failed += len(messages)

    def _post(self, key: str, body: object) -> bool:
        auth = base64.b64encode(f"{key}:".encode()).decode()
        request = urllib.request.Request(
            f"{self.base_url}/v1/batch",
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Basic {auth}",
                "User-Agent": "partitur-demo",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError as exc:
            self._warn(f"the server answered {exc.code}: {exc.read()[:300]!r}")
        except (OSError, ValueError) as exc:
            if not self._stop.is_set():
                self._warn(f"could not reach the server: {exc}")
        return False

    def _warn(self, message: str) -> None:
        if message != self._last_error:  # say it once, not every second
            log.warning("simulated population: %s", message)
            self._last_error = message
