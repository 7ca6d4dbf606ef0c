"""Durations and points in time as condition documents write them. Pure: ``now`` is passed in.

Durations are a whole number and a unit: ``30s``, ``10m``, ``24h``, ``14d``, ``2w``. A point in
time is an ISO 8601 date or date-time (``2026-03-01``, ``2026-03-01T09:30:00Z``; no zone means
UTC), or relative to the moment of evaluation: ``now``, ``-30d`` (thirty days ago), ``+2h``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from partitur.clock import to_us

UNITS_US = {
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 7 * 86_400_000_000,
}
DURATION_PATTERN = r"^[1-9][0-9]{0,9}[smhdw]$"
RELATIVE_PATTERN = r"^(now|[+-][1-9][0-9]{0,9}[smhdw])$"
_DURATION = re.compile(DURATION_PATTERN)
_RELATIVE = re.compile(RELATIVE_PATTERN)


def parse_duration(text: Any) -> int | None:
    """``"14d"`` as microseconds, or None when ``text`` is not a duration."""
    if not isinstance(text, str) or not _DURATION.match(text):
        return None
    return int(text[:-1]) * UNITS_US[text[-1]]


@lru_cache(maxsize=65536)
def _parse_iso(text: str) -> int | None:
    if len(text) < 10 or not text[:4].isdigit() or text[4] != "-":
        return None
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return to_us(datetime(d.year, d.month, d.day, tzinfo=UTC))
        return to_us(datetime.fromisoformat(text))
    except ValueError:
        return None


def parse_instant(value: Any) -> int | None:
    """An ISO 8601 date or date-time string as µs since the epoch; None for anything else."""
    if isinstance(value, str):
        return _parse_iso(value)
    return None


@dataclass(frozen=True, slots=True)
class TimeRef:
    """A point in time: absolute (``offset_us`` is the instant) or relative to now."""

    offset_us: int
    relative: bool

    def resolve(self, now_us: int) -> int:
        return now_us + self.offset_us if self.relative else self.offset_us


def parse_time_ref(value: Any) -> TimeRef | None:
    """``now``, ``-30d``, ``+2h`` or an ISO date/date-time; None when it is none of those."""
    if not isinstance(value, str):
        return None
    if _RELATIVE.match(value):
        if value == "now":
            return TimeRef(0, True)
        amount = parse_duration(value[1:])
        assert amount is not None
        return TimeRef(-amount if value[0] == "-" else amount, True)
    instant = parse_instant(value)
    return None if instant is None else TimeRef(instant, False)
