"""One batch of the event log through identity and profiles, in one transaction.

Load the oldest queued events, resolve each to a profile (``identity.resolve``), fold it into
that profile (``profiles.state``), then write the graph changes, the profiles, the timeline
and the identity log, and remove the events from the queue — all in the same transaction, so
a crash at any point leaves either none or all of a batch processed.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from partitur.clock import Clock
from partitur.identity import store as graph_store
from partitur.identity.extract import Identifier, IdentityRules, extract, identifier_hash
from partitur.identity.resolve import BatchGraph
from partitur.profiles import store as profile_store
from partitur.profiles.state import ProfileState, apply_event, merge_into
from partitur.settings import Settings
from partitur.store.db import Database, Tx
from partitur.store.events import EventLog

log = logging.getLogger("partitur.worker")
_DEC = msgspec.json.Decoder()
IDENTITY_LOCK = 0x4944_454E  # "IDEN": one identity writer at a time on PostgreSQL


def rules_from(settings: Settings) -> IdentityRules:
    return IdentityRules(
        blocked=frozenset(v.strip().lower() for v in settings.identity_blocked_values),
        limits=dict(settings.identity_limits),
        max_identifiers=settings.identity_max_identifiers,
        custom_types=dict(settings.identity_custom_types),
        priority=tuple(settings.identity_priority)
        + tuple(t for t in settings.identity_custom_types if t not in settings.identity_priority),
        phone_region=settings.default_phone_region,
    )


def lock_identity(db: Database, tx: Tx) -> None:
    """Serialise identity writers (SQLite's write lock already does)."""
    if db.dialect == "postgres":
        tx.execute("SELECT pg_advisory_xact_lock(?)", (IDENTITY_LOCK,))


@dataclass
class BatchResult:
    processed: int = 0
    unattributed: int = 0
    suppressed: int = 0
    merges: int = 0
    created: int = 0


def suppressed_keys(tx: Tx, idents: list[Identifier]) -> set[str]:
    if not idents:
        return set()
    hashes = {identifier_hash(i.type, i.value): i.key for i in idents}
    found: set[str] = set()
    items = list(hashes)
    for start in range(0, len(items), 500):
        chunk = items[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for (h,) in tx.execute(f"SELECT hash FROM suppressions WHERE hash IN ({marks})", chunk):
            found.add(hashes[h])
    return found


class Processor:
    def __init__(
        self, db: Database, events: EventLog, settings: Settings, clock: Clock
    ) -> None:
        self.db = db
        self.events = events
        self.settings = settings
        self.clock = clock
        self.rules = rules_from(settings)
        self.trait_rules: Mapping[str, str] = dict(settings.trait_survivorship)

    def run_batch(self, limit: int, parts: tuple[int, int] | None = None) -> BatchResult:
        result = BatchResult()
        with self.db.transaction() as tx:
            lock_identity(self.db, tx)
            rows = self.events.pending(tx, limit, parts)
            if not rows:
                return result
            self._process(tx, rows, result)
        return result

    def _process(self, tx: Tx, rows: list[tuple[Any, ...]], result: BatchResult) -> None:
        now = self.clock.now_us()
        batch: list[tuple[int, int, str, dict[str, Any], list[Identifier]]] = []
        all_idents: dict[str, Identifier] = {}
        for row in rows:
            seq, ts, source_id, body = row[0], row[7], row[2], row[10]
            try:
                message = _DEC.decode(body)
            except msgspec.DecodeError:
                log.error("event %s has an undecodable body; skipped", seq)
                continue
            idents = extract(message, self.rules)
            for ident in idents:
                all_idents[ident.key] = ident
            batch.append((seq, ts, source_id, message, idents))

        any_erased = tx.one("SELECT 1 FROM suppressions LIMIT 1") is not None
        blocked = suppressed_keys(tx, list(all_idents.values())) if any_erased else set()
        if blocked:
            erase = [b[0] for b in batch if any(i.key in blocked for i in b[4])]
            self.events.delete_seqs(tx, erase)
            result.suppressed = len(erase)
            batch = [b for b in batch if not any(i.key in blocked for i in b[4])]

        owner = graph_store.owners(tx, list(all_idents))
        known = sorted(set(owner.values()))
        members = graph_store.members(tx, known)
        states = profile_store.load(tx, known)
        graph = BatchGraph(
            owner=owner,
            members=members,
            created_at={p: s.created_at for p, s in states.items()},
            rules=self.rules,
            now_us=now,
            split_apart=lambda a, b: _split_apart(tx, a, b),
        )
        timeline: list[tuple[str, int, int]] = []
        merges_seen = 0
        touched: dict[str, ProfileState] = {}
        for seq, ts, source_id, message, idents in batch:
            profile_id = graph.resolve(idents, seq, message.get("messageId"))
            for merge in graph.merges[merges_seen:]:
                survivor = self._state(states, merge.survivor, now)
                other = self._state(states, merge.merged, now)
                merge_into(survivor, other, self.trait_rules)
                touched[other.id] = other
                touched[survivor.id] = survivor
            merges_seen = len(graph.merges)
            if profile_id is None:
                result.unattributed += 1
                continue
            state = self._state(states, profile_id, now)
            apply_event(state, message, ts=ts, seq=seq, source_id=source_id,
                        rules=self.trait_rules)
            touched[profile_id] = state
            timeline.append((profile_id, ts, seq))
            result.processed += 1

        for merge in graph.merges:
            graph_store.move(tx, merge.merged, merge.survivor)
            profile_store.move_timeline(tx, merge.merged, merge.survivor)
        graph_store.add(
            tx,
            [(k, t, v, graph.final(p), at, s) for k, t, v, p, at, s in graph.new_identifiers],
        )
        profile_store.save(tx, touched.values(), now)
        profile_store.add_timeline(tx, [(graph.final(p), ts, seq) for p, ts, seq in timeline])
        graph_store.append_log(tx, graph.log, now)
        self.events.done(tx, [row[0] for row in rows])
        result.merges = len(graph.merges)
        result.created = len(graph.created)

    def _state(self, states: dict[str, ProfileState], profile_id: str, now: int) -> ProfileState:
        state = states.get(profile_id)
        if state is None:
            state = ProfileState(
                id=profile_id,
                part=zlib.crc32(profile_id.encode()) % self.settings.partitions,
                created_at=now,
            )
            states[profile_id] = state
        return state


def _split_apart(tx: Tx, a: str, b: str) -> bool:
    return frozenset((a, b)) in graph_store.unmerged_pairs(tx, [a, b])
