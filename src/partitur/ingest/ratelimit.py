"""Per-source token buckets, in memory: each server process enforces its share."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from partitur.errors import RateLimited


class RateLimiter:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}  # source -> (tokens, last)
        self._lock = threading.Lock()

    def take(self, source: str, count: int, rate: float | None) -> None:
        """Take ``count`` tokens or raise :class:`RateLimited` with the wait in seconds.

        The bucket holds one second's worth of events (at least one request's worth).
        """
        if not rate or rate <= 0:
            return
        now = self._monotonic()
        capacity = max(rate, float(count))
        with self._lock:
            tokens, last = self._buckets.get(source, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens < count:
                self._buckets[source] = (tokens, now)
                wait = (count - tokens) / rate
                raise RateLimited(
                    f"source is over its rate limit of {rate:g} events/s", retry_after=wait
                )
            self._buckets[source] = (tokens - count, now)
