"""Erase one person everywhere Partitur keeps them, in one transaction.

What goes: the events on their timeline and those still waiting for the worker that carry
their identifiers (``events``, ``event_queue``), their profile and every profile merged into
it (``profiles``), the timeline (``profile_events``), the trait index (``profile_traits``),
their identifiers (``identifiers``), the identity log entries about them (``identity_log``)
the rejected-store copies of events that carry their identifiers (``rejected_events``,
with their rows in ``plan_violations``), the failed events the worker set aside that carry
their identifiers (``failed_events``), and their rows in the analytics Parquet files
(recorded here, rewritten by :func:`partitur.analytics.apply_erasures` after the commit).
What stays: a SHA-256 hash of each of their identifiers (``suppressions``), so that the
worker deletes events that still arrive from them instead of building a profile again, and
an audit record with counts and hashes only.

The caller holds the identity lock (``worker.processor.lock_identity``) in the same
transaction, so a worker cannot link, merge or re-create the person half-way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from partitur.analytics.hook import record_erasure
from partitur.channels.privacy import erase_deliveries
from partitur.errors import NotFound
from partitur.identity.extract import Identifier, IdentityRules, extract, identifier_hash
from partitur.privacy.find import (
    find_person,
    identity_log_ids,
    queued_events,
    rejected_events,
    timeline_seqs,
)
from partitur.store.db import Tx
from partitur.store.events import EventLog
from partitur.worker import deadletter


def _delete_in(tx: Tx, table: str, column: str, values: Sequence[Any]) -> None:
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        marks = ",".join("?" * len(chunk))
        tx.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", chunk)


def suppress(tx: Tx, idents: Sequence[Identifier], now_us: int) -> list[str]:
    """Remember the identifiers as hashes; returns the hashes, sorted."""
    hashes = sorted({identifier_hash(i.type, i.value) for i in idents})
    tx.executemany(
        "INSERT INTO suppressions (hash, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [(h, now_us) for h in hashes],
    )
    return hashes


def erase(
    tx: Tx, log: EventLog, rules: IdentityRules, subject: Identifier, now_us: int
) -> dict[str, Any]:
    """Erase the person ``subject`` identifies; :class:`NotFound` if nothing is held."""
    person, queued_rows = queued_events(tx, find_person(tx, subject), rules, "seq")
    queued = [int(row[0]) for row, _ in queued_rows]
    rejected_rows = rejected_events(tx, person, rules, "r.id, r.message_id")
    rejected = [int(row[0]) for row, _ in rejected_rows]
    failed = _failed_events_of(tx, person.every_identifier, rules)
    if person.live is None and not queued and not rejected and not failed:
        raise NotFound(f"nothing is held for that {subject.type}")
    profiles = list(person.profiles)
    timeline = timeline_seqs(tx, profiles)
    seqs = sorted(set(timeline) | set(queued) | set(failed))
    log_ids = identity_log_ids(tx, person)

    log.delete_seqs(tx, seqs)
    deadletter.forget(tx, failed)
    _delete_in(tx, "profile_events", "profile_id", profiles)
    _delete_in(tx, "profile_traits", "profile_id", profiles)
    _delete_in(tx, "identifiers", "profile_id", profiles)
    _delete_in(tx, "identity_log", "id", log_ids)
    _delete_in(tx, "profiles", "id", profiles)
    # Segment memberships, due times, entry/exit history (which keeps trait values seen) and
    # per-person event totals.
    _delete_in(tx, "segment_members", "profile_id", profiles)
    _delete_in(tx, "segment_static_merged", "profile_id", profiles)
    _delete_in(tx, "segment_static_merged", "survivor", profiles)
    _delete_in(tx, "segment_due", "profile_id", profiles)
    _delete_in(tx, "segment_history", "profile_id", profiles)
    _delete_in(tx, "segment_event_counts", "profile_id", profiles)
    # Their journey instances (with the trigger event they keep) and paths (values seen).
    _delete_in(tx, "journey_instances", "profile_id", profiles)
    _delete_in(tx, "journey_path", "profile_id", profiles)
    _delete_in(tx, "rejected_events", "id", rejected)
    # Their violations' summary rows (no personal data, but counted for nobody any more).
    _delete_in(tx, "plan_violations", "message_id", [row[1] for row, _ in rejected_rows])
    # Their messages: the outbox (addresses, rendered variables) and web messages.
    deliveries = erase_deliveries(tx, profiles)
    # Analytics: their events not yet in Parquet go; the files lose them after the commit.
    record_erasure(tx, profiles, seqs, now_us)
    hashes = suppress(tx, person.every_identifier, now_us)
    return {
        "profile": person.live,
        "profiles_erased": len(profiles),
        "events_erased": len(seqs),
        "queued_events_erased": len(set(queued) - set(timeline)),
        "identifiers_erased": len(person.identifiers),
        "pending_identifiers": len(person.pending),
        "identity_log_erased": len(log_ids),
        "rejected_events_erased": len(rejected),
        "failed_events_erased": len(failed),
        **deliveries,
        "suppressed_hashes": len(hashes),
    }


def _failed_events_of(
    tx: Tx, idents: Sequence[Identifier], rules: IdentityRules
) -> list[int]:
    """Seqs of the failed events (few by nature: each is read) carrying one of ``idents``."""
    keys = {ident.key for ident in idents}
    return [
        seq for seq, message in deadletter.bodies(tx)
        if any(ident.key in keys for ident in extract(message, rules))
    ]
