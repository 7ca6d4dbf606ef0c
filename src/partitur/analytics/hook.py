"""What the profile worker records for analytics, inside each batch's transaction.

The hook does no Parquet work: it adds one narrow row per processed event to
``analytics_outbox`` (seq and resolved profile id) and flattens merges into
``analytics_alias``, so both commit or roll back with the batch. The projector
(:mod:`.projector`) turns the outbox into Parquet files in its own thread.
"""

from __future__ import annotations

from collections.abc import Sequence

from partitur.store.db import Database, Tx, chunks
from partitur.worker.hooks import BatchContext

_INSERT = "INSERT INTO analytics_outbox (seq, profile_id) VALUES (?, ?)"
_INSERT_PG = (
    "INSERT INTO analytics_outbox (seq, profile_id) "
    "SELECT * FROM unnest(?::bigint[], ?::text[])"
)


class AnalyticsHook:
    def __init__(self, db: Database) -> None:
        self.postgres = db.dialect == "postgres"

    def __call__(self, batch: BatchContext) -> None:
        tx = batch.tx
        if batch.events:
            if self.postgres:
                tx.execute(_INSERT_PG, ([e.seq for e in batch.events],
                                        [e.profile_id for e in batch.events]))
            else:
                tx.executemany(_INSERT, [(e.seq, e.profile_id) for e in batch.events])
        if batch.merges:
            record_merges(tx, batch.merges, batch.now_us)


def record_merges(tx: Tx, merges: Sequence[tuple[str, str]], now_us: int) -> None:
    """Flatten each (merged, survivor) pair into the alias table, in order, so every merged
    id maps straight to the profile it lives on now."""
    for merged, survivor in merges:
        tx.execute(
            "UPDATE analytics_alias SET survivor = ?, at = ? WHERE survivor = ?",
            (survivor, now_us, merged),
        )
        tx.execute(
            "INSERT INTO analytics_alias (merged, survivor, at) VALUES (?, ?, ?) "
            "ON CONFLICT (merged) DO UPDATE SET survivor = excluded.survivor, at = excluded.at",
            (merged, survivor, now_us),
        )
    tx.execute("UPDATE analytics_state SET value = value + 1 WHERE key = 'alias_version'")


def record_erasure(tx: Tx, profile_ids: Sequence[str], seqs: Sequence[int],
                   now_us: int) -> None:
    """In the erasing transaction: forget the person's events still waiting for the projector
    and their aliases, and remember that the Parquet files must lose them
    (:func:`partitur.analytics.erase_profiles` does that after the commit)."""
    for chunk in chunks(list(seqs), 500):
        marks = ",".join("?" * len(chunk))
        tx.execute(f"DELETE FROM analytics_outbox WHERE seq IN ({marks})", list(chunk))
    ids = sorted(set(profile_ids))
    for chunk in chunks(ids, 500):
        marks = ",".join("?" * len(chunk))
        tx.execute(
            f"DELETE FROM analytics_alias WHERE merged IN ({marks}) OR survivor IN ({marks})",
            [*chunk, *chunk],
        )
    tx.executemany(
        "INSERT INTO analytics_erasures (profile_id, requested_at) VALUES (?, ?) "
        "ON CONFLICT (profile_id) DO NOTHING",
        [(p, now_us) for p in ids],
    )
    if ids:
        tx.execute("UPDATE analytics_state SET value = value + 1 WHERE key = 'alias_version'")
