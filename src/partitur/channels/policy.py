"""Send-time policies, pure: consent, frequency caps, quiet hours, retry backoff, rate limits.

Nothing here reads a clock or a database; the dispatcher passes ``now`` and the counts in.
Consent, caps and quiet hours apply to the ``marketing`` category only; ``transactional``
messages (a receipt, a password reset) go out regardless — but never to an erased person.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from partitur.clock import from_us, to_us
from partitur.errors import InvalidInput

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_CAP = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhdw])\s*$")
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class Cap:
    count: int
    window_us: int
    text: str

    @classmethod
    def parse(cls, text: str) -> Cap:
        """``"1/1d"``: at most one per day; ``"3/7d"``, ``"10/h"``, ``"2/12h"``."""
        match = _CAP.match(text)
        if not match:
            raise InvalidInput(f"frequency cap '{text}' is not COUNT/WINDOW like 1/1d or 2/7d")
        count, amount, unit = int(match[1]), int(match[2] or 1), match[3]
        if amount <= 0:
            raise InvalidInput(f"frequency cap '{text}' needs a window longer than zero")
        return cls(count, amount * _UNITS[unit] * 1_000_000, text.strip())


def parse_caps(caps: Mapping[str, str]) -> dict[str, Cap]:
    return {channel: Cap.parse(text) for channel, text in caps.items()}


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time
    text: str

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"21:00-08:00"`` (may wrap past midnight) or ``"12:00-13:30"``."""
        match = _HOURS.match(text)
        if not match:
            raise InvalidInput(f"quiet hours '{text}' are not HH:MM-HH:MM like 21:00-08:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 or (h1, m1) == (h2, m2):
            raise InvalidInput(f"quiet hours '{text}' are not a valid range of the day")
        return cls(time(h1, m1), time(h2, m2), text.strip())

    def quiet_until(self, now_us: int, zone: ZoneInfo) -> int | None:
        """When the quiet period ``now`` falls in ends (µs), or None if ``now`` is not quiet."""
        local = from_us(now_us).astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        wraps = self.start > self.end
        inside = (
            (clock >= self.start or clock < self.end) if wraps else (self.start <= clock < self.end)
        )
        if not inside:
            return None
        day = local.date() + timedelta(days=1 if wraps and clock >= self.start else 0)
        end = datetime.combine(day, self.end, tzinfo=zone)
        # A wall-clock time that does not exist (DST gap) resolves forward through UTC.
        return max(to_us(end), now_us + 1)


def zone_of(name: Any, default: ZoneInfo) -> ZoneInfo:
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return default
    return default


def person_zone(
    traits: Mapping[str, Any], event: Mapping[str, Any] | None, default: ZoneInfo
) -> ZoneInfo:
    """The person's time zone: trait ``timezone``, else the triggering event's
    ``context.timezone``, else ``default``."""
    for candidate in (traits.get("timezone"), traits.get("time_zone")):
        if isinstance(candidate, str) and candidate:
            return zone_of(candidate, default)
    context = (event or {}).get("context")
    if isinstance(context, Mapping):
        return zone_of(context.get("timezone"), default)
    return default


def consent_problem(
    channel: str,
    consent: Mapping[str, Mapping[str, Any]],
    purposes: Mapping[str, str],
) -> str | None:
    """Why a marketing message may not go out on ``channel`` (None: it may)."""
    purpose = purposes.get(channel)
    if purpose is None:
        return None
    entry = consent.get(purpose)
    if entry is None:
        return f"no {purpose} consent"
    if not entry.get("granted"):
        return f"{purpose} consent withdrawn"
    return None


def backoff_seconds(
    attempt: int,
    *,
    base: float,
    cap: float,
    rng: random.Random,
    retry_after: float | None = None,
) -> float:
    """How long to wait before attempt ``attempt + 1``: exponential (``base * 2^(attempt-1)``,
    at most ``cap``) with jitter (between half and all of it); what the receiver asked for in
    ``Retry-After`` instead when it said (at least a second, at most a day)."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    jittered: float = delay / 2 + rng.random() * delay / 2
    if retry_after is not None:
        return float(min(max(retry_after, 1.0), 86_400.0))
    return jittered


class TokenBucket:
    """``rate`` messages a second, bursts of up to ``burst``; time is passed in."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise InvalidInput("a send rate limit must be above zero")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self.tokens = self.burst
        self.at: float | None = None

    def _fill(self, now_s: float) -> None:
        if self.at is not None and now_s > self.at:
            self.tokens = min(self.burst, self.tokens + (now_s - self.at) * self.rate)
        self.at = now_s if self.at is None else max(self.at, now_s)

    def available(self, now_s: float) -> int:
        self._fill(now_s)
        return int(self.tokens)

    def take(self, now_s: float, count: int) -> None:
        self._fill(now_s)
        self.tokens -= count

    def wait_s(self, now_s: float) -> float:
        """Seconds until one more token is there."""
        self._fill(now_s)
        return max(0.0, (1 - self.tokens) / self.rate)
