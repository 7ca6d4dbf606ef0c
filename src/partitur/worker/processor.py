"""One batch of the event log through identity and profiles, in one transaction.

Load the oldest queued events, resolve each to a profile (``identity.resolve``), fold it into
that profile (``profiles.state``), then write the graph changes, the profiles, the timeline
and the identity log, run the batch hooks, and remove the events from the queue — all in the
same transaction, so a crash at any point leaves either none or all of a batch processed.
Every read and write is one statement per table whatever the batch size (``store.db``:
``select_in``, ``BulkInsert``).
"""

from __future__ import annotations

import gc
import logging
import threading
import zlib
from collections.abc import Mapping, Sequence
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
from partitur.store.db import Database, Tx, pipelined, select_in
from partitur.store.events import EventLog
from partitur.worker.hooks import BatchContext, BatchHook, ProcessedEvent
from partitur.worker.queue import EventQueue, Taken

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
    rows = select_in(tx, "SELECT hash FROM suppressions WHERE hash IN (?...)", list(hashes),
                     "text")
    return {hashes[h] for (h,) in rows}


@dataclass
class Prepared:
    """A batch worked out from what was read: the writes to make, and what they rest on."""

    taken: Taken
    now: int
    result: BatchResult
    mark: int | None  # newest suppression when read
    keys: list[str]
    owner: dict[str, str]
    members: dict[str, set[str]]
    rows: dict[str, tuple[Any, ...]]  # profile rows as read
    erase: list[int]
    graph: BatchGraph
    touched: dict[str, ProfileState]
    timeline: list[tuple[str, int, int]]
    processed: list[tuple[str, int, int, str, dict[str, Any], int]]


class Processor:
    def __init__(
        self,
        db: Database,
        events: EventLog,
        settings: Settings,
        clock: Clock,
        hooks: Sequence[BatchHook] = (),
    ) -> None:
        self.db = db
        self.hooks = hooks
        self.events = events
        self.queue = EventQueue(db.dialect)
        self.settings = settings
        self.clock = clock
        self.rules = rules_from(settings)
        self.trait_rules: Mapping[str, str] = dict(settings.trait_survivorship)
        # SQLite: the ``wal_autocheckpoint`` of the connections this processor writes with
        # (None: SQLite's default, 1,000 pages). See ``worker.checkpoint``.
        self.wal_autocheckpoint: int | None = None
        # SQLite: work a batch out before taking the write lock (see ``run_batch``).
        self.optimistic = False
        self.retries = 0  # optimistic batches done again under the lock
        self._pragma_set: dict[int, int] = {}
        self._mark_sql = (
            "SELECT MAX(id) FROM suppressions" if db.dialect == "postgres"
            else "SELECT MAX(rowid) FROM suppressions"
        )

    def run_batch(self, limit: int, parts: tuple[int, int] | None = None) -> BatchResult:
        """Process the oldest ``limit`` queued events (within ``parts``) in one transaction.

        Optimistic (SQLite, while the server runs): SQLite has one writer at a time, and the
        ingest path must write too. So the batch is read and worked out in a read transaction,
        without the write lock; the write transaction then checks that what it rests on is
        unchanged (its queue rows, the suppressions, the identifiers and profile rows it read)
        and writes, or, if another writer changed any of it meanwhile, does the batch again
        under the lock. Either way the batch commits in one transaction."""
        # The batch makes many small objects that all live until it ends: no cyclic
        # garbage collection in between (it would walk them again and again).
        collecting = gc.isenabled()
        gc.disable()
        try:
            if self.optimistic and self.db.dialect == "sqlite":
                return self._optimistic(limit, parts)
            with self.db.transaction() as tx:
                lock_identity(self.db, tx)
                self._tune(tx)
                return self._locked(tx, limit, parts)
        finally:
            if collecting:
                gc.enable()

    def _locked(self, tx: Tx, limit: int, parts: tuple[int, int] | None) -> BatchResult:
        taken = self.queue.take(tx, limit, parts)
        if not taken.queued:
            return BatchResult()
        prepared = self._prepare(tx, taken)
        self._write(tx, prepared, parts)
        return prepared.result

    def _optimistic(self, limit: int, parts: tuple[int, int] | None) -> BatchResult:
        with self.db.read() as tx:
            taken = self.queue.take(tx, limit, parts)
            if not taken.queued:
                return BatchResult()
            prepared = self._prepare(tx, taken)
        with self.db.transaction() as tx:
            self._tune(tx)
            if self._unchanged(tx, prepared, parts):
                self._write(tx, prepared, parts)
                return prepared.result
            self.retries += 1
            log.info("batch changed under the worker (erasure, unmerge, another worker); "
                     "done again under the lock")
            return self._locked(tx, limit, parts)

    def _unchanged(self, tx: Tx, prepared: Prepared, parts: tuple[int, int] | None) -> bool:
        if self.queue.count_through(tx, prepared.taken, parts) != len(prepared.taken.queued):
            return False
        mark = tx.one(self._mark_sql)
        if (mark[0] if mark else None) != prepared.mark:
            return False
        owner, members = graph_store.owners_and_members(tx, prepared.keys)
        if owner != prepared.owner or members != prepared.members:
            return False
        return profile_store.load_rows(tx, sorted(prepared.rows)) == prepared.rows

    def _tune(self, tx: Tx) -> None:
        pages = self.wal_autocheckpoint
        if pages is None or self.db.dialect != "sqlite":
            return
        thread = threading.get_ident()  # SQLite connections are one per thread
        if self._pragma_set.get(thread) != pages:
            tx.execute(f"PRAGMA wal_autocheckpoint={int(pages)}")
            self._pragma_set[thread] = pages

    def _prepare(self, tx: Tx, taken: Taken) -> Prepared:
        """Resolve and fold the batch in memory; reads only."""
        result = BatchResult()
        now = self.clock.now_us()
        batch: list[tuple[int, int, str, dict[str, Any], list[Identifier], int]] = []
        all_idents: dict[str, Identifier] = {}
        rules = self.rules
        for seq, ts, source_id, received_at, body in taken.events:
            try:
                message = _DEC.decode(body)
            except msgspec.DecodeError:
                log.error("event %s has an undecodable body; skipped", seq)
                continue
            idents = extract(message, rules)
            for ident in idents:
                all_idents[ident.key] = ident
            batch.append((seq, ts, source_id, message, idents, received_at))

        found = tx.one(self._mark_sql)
        mark = found[0] if found else None
        blocked = suppressed_keys(tx, list(all_idents.values())) if mark is not None else set()
        erase: list[int] = []
        if blocked:
            erase = [b[0] for b in batch if any(i.key in blocked for i in b[4])]
            result.suppressed = len(erase)
            batch = [b for b in batch if not any(i.key in blocked for i in b[4])]

        keys = list(all_idents)
        owner, members = graph_store.owners_and_members(tx, keys)
        rows = profile_store.load_rows(tx, sorted(members))
        states = {pid: profile_store.state_of(row) for pid, row in rows.items()}
        graph = BatchGraph(
            owner=dict(owner),
            members={p: set(k) for p, k in members.items()},
            created_at={p: s.created_at for p, s in states.items()},
            rules=self.rules,
            now_us=now,
            split_apart=lambda a, b: _split_apart(tx, a, b),
        )
        timeline: list[tuple[str, int, int]] = []
        processed: list[tuple[str, int, int, str, dict[str, Any], int]] = []
        merges_seen = 0
        touched: dict[str, ProfileState] = {}
        for seq, ts, source_id, message, idents, received_at in batch:
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
            if self.hooks:
                processed.append((profile_id, seq, ts, source_id, message, received_at))
            result.processed += 1
        result.merges = len(graph.merges)
        result.created = len(graph.created)
        return Prepared(taken, now, result, mark, keys, owner, members, rows, erase, graph,
                        touched, timeline, processed)

    def _write(self, tx: Tx, prepared: Prepared, parts: tuple[int, int] | None) -> None:
        graph, now = prepared.graph, prepared.now
        if prepared.erase:
            self.events.delete_seqs(tx, prepared.erase)
        with pipelined(tx):  # PostgreSQL works on each write while the next is prepared
            for merge in graph.merges:
                graph_store.move(tx, merge.merged, merge.survivor)
                profile_store.move_timeline(tx, merge.merged, merge.survivor)
            graph_store.add(
                tx,
                [(k, t, v, graph.final(p), at, s)
                 for k, t, v, p, at, s in graph.new_identifiers],
            )
            profile_store.save(tx, prepared.touched.values(), now)
            profile_store.add_timeline(
                tx, [(graph.final(p), ts, seq) for p, ts, seq in prepared.timeline]
            )
            graph_store.append_log(tx, graph.log, now)
        if self.hooks:
            touched = prepared.touched
            context = BatchContext(
                tx=tx,
                now_us=now,
                events=[
                    ProcessedEvent(seq, ts, received_at, graph.final(p), source_id, message)
                    for p, seq, ts, source_id, message, received_at in prepared.processed
                ],
                profiles={touched[p].id: touched[p] for p in touched if p == graph.final(p)},
                merges=[(m.merged, m.survivor) for m in graph.merges],
            )
            for hook in self.hooks:
                hook(context)
        self.queue.done(tx, prepared.taken, parts)

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
