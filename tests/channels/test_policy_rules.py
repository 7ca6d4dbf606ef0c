"""The pure send-time rules: caps, quiet hours in a person's time zone, backoff, buckets."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from partitur.channels.policy import (
    Cap,
    QuietHours,
    TokenBucket,
    backoff_seconds,
    consent_problem,
    person_zone,
)
from partitur.clock import to_us
from partitur.errors import InvalidInput

OSLO = ZoneInfo("Europe/Oslo")
UTC_ZONE = ZoneInfo("UTC")


def at(text: str) -> int:
    return to_us(datetime.fromisoformat(text).astimezone(UTC))


def test_caps_parse() -> None:
    assert Cap.parse("1/1d") == Cap(1, 86_400_000_000, "1/1d")
    assert Cap.parse("2 / 7d").window_us == 7 * 86_400_000_000
    assert Cap.parse("10/h").window_us == 3_600_000_000
    for bad in ("1", "1/0d", "x/1d", "1/1y"):
        with pytest.raises(InvalidInput, match="frequency cap"):
            Cap.parse(bad)


@pytest.mark.parametrize(
    ("local", "until"),
    [
        ("2026-03-10T22:30:00+01:00", "2026-03-11T08:00:00+01:00"),  # evening: next morning
        ("2026-03-10T03:00:00+01:00", "2026-03-10T08:00:00+01:00"),  # night: this morning
        ("2026-03-10T21:00:00+01:00", "2026-03-11T08:00:00+01:00"),  # start is inside
        ("2026-03-10T08:00:00+01:00", None),  # end is outside
        ("2026-03-10T12:00:00+01:00", None),
        # the night of the switch to summer time: 08:00 is then UTC+2
        ("2026-03-28T23:00:00+01:00", "2026-03-29T08:00:00+02:00"),
    ],
)
def test_quiet_hours_across_midnight_in_the_persons_zone(local: str, until: str | None) -> None:
    quiet = QuietHours.parse("21:00-08:00")
    found = quiet.quiet_until(at(local), OSLO)
    assert found == (None if until is None else at(until))


def test_quiet_hours_within_a_day_and_bad_ranges() -> None:
    lunch = QuietHours.parse("12:00-13:30")
    assert lunch.quiet_until(at("2026-01-05T12:10:00+00:00"), UTC_ZONE) == at(
        "2026-01-05T13:30:00+00:00")
    assert lunch.quiet_until(at("2026-01-05T13:30:00+00:00"), UTC_ZONE) is None
    for bad in ("21-08", "25:00-08:00", "08:00-08:00"):
        with pytest.raises(InvalidInput, match="quiet hours"):
            QuietHours.parse(bad)


def test_person_zone_order() -> None:
    default = ZoneInfo("America/New_York")
    assert person_zone({"timezone": "Europe/Oslo"}, {"context": {"timezone": "Asia/Tokyo"}},
                       default) == OSLO
    assert person_zone({}, {"context": {"timezone": "Asia/Tokyo"}}, default) == ZoneInfo(
        "Asia/Tokyo")
    assert person_zone({"timezone": "Mars/Olympus"}, None, default) == default
    assert person_zone({}, None, default) == default


def test_consent() -> None:
    purposes = {"email": "marketing_email", "sms": "sms"}
    assert consent_problem("email", {}, purposes) == "no marketing_email consent"
    assert consent_problem("email", {"marketing_email": {"granted": False}}, purposes) == (
        "marketing_email consent withdrawn")
    assert consent_problem("email", {"marketing_email": {"granted": True}}, purposes) is None
    assert consent_problem("webhook", {}, purposes) is None


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    rng = random.Random(7)
    waits = [backoff_seconds(n, base=2, cap=60, rng=rng) for n in range(1, 8)]
    for n, wait in enumerate(waits, 1):
        full = min(60, 2 * 2 ** (n - 1))
        assert full / 2 <= wait <= full
    assert len(set(waits)) == len(waits)
    assert backoff_seconds(1, base=2, cap=60, rng=rng, retry_after=30) == 30
    assert backoff_seconds(1, base=2, cap=60, rng=rng, retry_after=0) == 1
    assert backoff_seconds(1, base=2, cap=60, rng=rng, retry_after=10**9) == 86_400


def test_token_bucket() -> None:
    bucket = TokenBucket(2)
    assert bucket.available(100.0) == 2
    bucket.take(100.0, 2)
    assert bucket.available(100.0) == 0
    assert bucket.wait_s(100.0) == pytest.approx(0.5)
    assert bucket.available(100.5) == 1
    assert bucket.available(110.0) == 2  # never more than a burst
