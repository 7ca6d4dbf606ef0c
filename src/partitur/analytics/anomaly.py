"""Anomalies in a time series against a seasonal baseline (pure; no I/O, no clock).

A point's **expected** value is the median of the same slot in the previous seasons (the same
hour on the previous 7 days for hourly series; the same weekday in the previous 4 weeks for
daily ones). Its **expected range** is that median ± ``z`` robust standard deviations
(1.4826 times the median absolute deviation of those values), widened to at least the Poisson
spread √median and to 10 % of the median, so that a flat history does not flag every
wiggle. A point outside the range is an anomaly; points with fewer than 3 earlier seasons,
and the bucket still in progress, are never flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEASONS = {"hour": (24, 7), "day": (7, 4)}  # (season length in buckets, seasons looked back)
MIN_SAMPLES = 3


@dataclass(frozen=True)
class Band:
    expected: float | None
    lower: float | None
    upper: float | None
    anomaly: bool


def bands(values: list[float], interval: str, z: float, first: int) -> list[Band]:
    """Bands for ``values[first:]``; ``values[:first]`` is history only."""
    season, back = SEASONS[interval]
    data = np.asarray(values, dtype=float)
    out = []
    for i in range(first, len(data)):
        idx = [i - season * k for k in range(1, back + 1) if i - season * k >= 0]
        if len(idx) < MIN_SAMPLES:
            out.append(Band(None, None, None, False))
            continue
        past = data[idx]
        median = float(np.median(past))
        mad = float(np.median(np.abs(past - median)))
        spread = max(1.4826 * mad, float(np.sqrt(max(median, 0.0))), 0.1 * abs(median))
        lower = max(0.0, median - z * spread) if median >= 0 else median - z * spread
        upper = median + z * spread
        value = float(data[i])
        out.append(Band(round(median, 6), round(lower, 6), round(upper, 6),
                        bool(value < lower or value > upper)))
    return out


def sentence(label: str, value: float, band: Band, when: str) -> str:
    """E.g. ``"Order Completed (count) dropped 40% below the expected range at ..."``."""
    assert band.lower is not None and band.upper is not None and band.expected is not None
    if value < band.lower:
        edge, word, side = band.lower, "dropped", "below"
        pct = (edge - value) / edge * 100 if edge else 100.0
    else:
        edge, word, side = band.upper, "rose", "above"
        pct = (value - edge) / edge * 100 if edge else 100.0
    return (f"{label} {word} {pct:.0f}% {side} the expected range at {when}: "
            f"{value:g} against {band.lower:g} to {band.upper:g} (usually about "
            f"{band.expected:g})")
