"""Per-channel send rate limits: in the process (SQLite), or shared through the store.

With SQLite one process sends, so each channel's :class:`~.policy.TokenBucket` lives in the
dispatcher's memory (:class:`LocalLimits`). On PostgreSQL any number of dispatchers send, and
a limit of 10 messages a second must hold for all of them together, so the bucket is a row
(``channel_rate_buckets``, :class:`SharedLimits`): the claim transaction locks the rows of the
rate-limited channels (in channel order, so two claims cannot deadlock), sees how many tokens
they hold now, claims at most that many rows of each channel, and writes back what it took.
Two dispatchers therefore take turns on a channel's tokens, and their sends add up to the
limit. The time is a seconds clock shared by the processes (wall time by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from partitur.channels.policy import TokenBucket
from partitur.store.db import Tx


class LocalLimits:
    """Token buckets in this process's memory."""

    def __init__(self, rates: Mapping[str, float]) -> None:
        self.buckets = {c: TokenBucket(r) for c, r in rates.items()}

    def open(self, tx: Tx, now_s: float) -> Mapping[str, TokenBucket]:
        return self.buckets

    def save(self, tx: Tx, buckets: Mapping[str, TokenBucket]) -> None:
        pass


class SharedLimits:
    """Token buckets kept as rows in the store, read and written in the claim's transaction."""

    def __init__(self, rates: Mapping[str, float]) -> None:
        self.rates = dict(rates)
        self.channels = sorted(self.rates)
        self._created = False

    def _lock(self, tx: Tx) -> list[tuple[str, float, float]]:
        marks = ",".join("?" * len(self.channels))
        rows = tx.execute(
            f"SELECT channel, tokens, at_s FROM channel_rate_buckets WHERE channel IN ({marks}) "
            "ORDER BY channel FOR UPDATE", self.channels)
        return [(str(c), float(t), float(a)) for c, t, a in rows]

    def open(self, tx: Tx, now_s: float) -> Mapping[str, TokenBucket]:
        """The buckets as they are now, their rows locked until ``tx`` ends."""
        if not self.channels:
            return {}
        rows = self._lock(tx)
        if len(rows) < len(self.channels):
            have = {r[0] for r in rows}
            tx.executemany(
                "INSERT INTO channel_rate_buckets (channel, tokens, at_s) VALUES (?, ?, ?) "
                "ON CONFLICT (channel) DO NOTHING",
                [(c, TokenBucket(self.rates[c]).burst, now_s) for c in self.channels
                 if c not in have])
            rows = self._lock(tx)
        buckets: dict[str, TokenBucket] = {}
        for channel, tokens, at_s in rows:
            bucket = TokenBucket(self.rates[channel])
            bucket.tokens = min(bucket.burst, tokens)  # the rate may have been lowered
            bucket.at = at_s
            buckets[channel] = bucket
        return buckets

    def save(self, tx: Tx, buckets: Mapping[str, TokenBucket]) -> None:
        tx.executemany("UPDATE channel_rate_buckets SET tokens = ?, at_s = ? WHERE channel = ?",
                       [(b.tokens, b.at, c) for c, b in sorted(buckets.items())])


Limits = LocalLimits | SharedLimits


def limits_for(dialect: str, rates: Mapping[str, float]) -> Limits:
    return SharedLimits(rates) if dialect == "postgres" else LocalLimits(rates)


def take(buckets: Mapping[str, TokenBucket], channels: Iterable[str], now_s: float) -> None:
    """One token from each claimed message's channel bucket."""
    for channel in channels:
        bucket = buckets.get(channel)
        if bucket is not None:
            bucket.take(now_s, 1)
