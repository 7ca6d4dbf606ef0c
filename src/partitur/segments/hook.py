"""Real-time membership: the profile worker's batch hook.

For each person a batch touched, only the segments the batch could have changed are
evaluated: those that mention an event name it contains, a trait it set, or a consent
purpose it stated (plus, for a new person or the survivor of a merge, every segment). The
changes are written inside the batch's transaction and handed to the hooks registered after
this one (journeys) as :class:`~partitur.worker.hooks.SegmentChange` notes, so the event
that makes someone qualify enters them in the segment, and in a journey, in one step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from partitur.segments import events
from partitur.segments.engine import Change, evaluate_people
from partitur.store.db import Tx
from partitur.worker.hooks import BatchContext, ProcessedEvent, SegmentChange

if TYPE_CHECKING:
    from partitur.segments.service import SegmentService


def touched(message: Mapping[str, Any]) -> tuple[str | None, list[str], list[str]]:
    """(event name, trait names, consent purposes) an event carries."""
    name = message.get("event") or message.get("name")
    traits: list[str] = []
    consents: list[str] = []
    if message.get("type") == "identify":
        body = message.get("traits")
        if isinstance(body, Mapping):
            traits.extend(str(k) for k in body)
    context = message.get("context")
    if isinstance(context, Mapping):
        ctx_traits = context.get("traits")
        if isinstance(ctx_traits, Mapping):
            traits.extend(str(k) for k in ctx_traits)
        consent = context.get("consent")
        if isinstance(consent, Mapping):
            prefs = consent.get("categoryPreferences")
            if isinstance(prefs, Mapping):
                consents.extend(str(k) for k in prefs)
    return (name if isinstance(name, str) else None), traits, consents


def fold_merge(tx: Tx, merged: str, survivor: str) -> None:
    """The merged-away profile's static lists follow the person (and are remembered, so an
    unmerge gives them back: :func:`unfold_static`); its dynamic memberships and due rows go
    (the survivor is evaluated afresh); its history becomes the survivor's."""
    tx.execute(
        "INSERT INTO segment_static_merged (segment, profile_id, survivor, since, gained) "
        "SELECT m.segment, m.profile_id, ?, m.since, CASE WHEN EXISTS (SELECT 1 FROM "
        "segment_members o WHERE o.segment = m.segment AND o.profile_id = ?) THEN 0 ELSE 1 "
        "END FROM segment_members m JOIN segments s ON s.key = m.segment "
        "WHERE m.profile_id = ? AND s.kind = 'static' ON CONFLICT DO NOTHING",
        (survivor, survivor, merged),
    )
    tx.execute(
        "INSERT INTO segment_members (segment, profile_id, since) "
        "SELECT m.segment, ?, m.since FROM segment_members m JOIN segments s "
        "ON s.key = m.segment WHERE m.profile_id = ? AND s.kind = 'static' "
        "ON CONFLICT DO NOTHING",
        (survivor, merged),
    )
    tx.execute("DELETE FROM segment_members WHERE profile_id = ?", (merged,))
    tx.execute("DELETE FROM segment_due WHERE profile_id = ?", (merged,))
    tx.execute("UPDATE segment_history SET profile_id = ? WHERE profile_id = ?",
               (survivor, merged))
    drop_totals(tx, [merged, survivor])


def unfold_static(tx: Tx, survivor: str, restored: str, now: int) -> list[Change]:
    """After ``restored`` was split off ``survivor`` again: the static lists ``restored`` had
    before the merge are its own again, and ``survivor`` leaves those it only had through
    the merge."""
    rows = tx.execute(
        "SELECT segment, since, gained FROM segment_static_merged WHERE profile_id = ? AND "
        "survivor = ? ORDER BY segment", (restored, survivor))
    changes: list[Change] = []
    for segment, since, gained in rows:
        if not tx.one("SELECT 1 FROM segment_members WHERE segment = ? AND profile_id = ?",
                      (segment, restored)):
            tx.execute("INSERT INTO segment_members (segment, profile_id, since) "
                       "VALUES (?, ?, ?)", (segment, restored, int(since)))
            changes.append(Change(restored, str(segment), True, now, "unmerge", None))
        if int(gained) and tx.one("SELECT 1 FROM segment_members WHERE segment = ? AND "
                                  "profile_id = ?", (segment, survivor)):
            tx.execute("DELETE FROM segment_members WHERE segment = ? AND profile_id = ?",
                       (segment, survivor))
            changes.append(Change(survivor, str(segment), False, now, "unmerge", None))
    tx.execute("DELETE FROM segment_static_merged WHERE profile_id = ? AND survivor = ?",
               (restored, survivor))
    history = [(c.profile_id, c.segment, int(c.entered), now, "unmerge", None) for c in changes]
    if history:
        tx.executemany("INSERT INTO segment_history (profile_id, segment, entered, at, cause, "
                       "seen) VALUES (?, ?, ?, ?, ?, ?)", history)
    return changes


def drop_totals(tx: Tx, profile_ids: list[str]) -> None:
    """Forget the stored event totals of profiles whose timeline was rebuilt (a merge, an
    unmerge); they are counted again from the timeline when next needed."""
    for pid in profile_ids:
        tx.execute("DELETE FROM segment_event_counts WHERE profile_id = ?", (pid,))


def add_to_totals(
    tx: Tx, names: frozenset[str], events: list[ProcessedEvent], dialect: str
) -> None:
    """Add the batch's events to the stored totals that exist (a missing total is counted
    from the timeline, which already holds the batch, when it is first needed)."""
    if not names:
        return
    adds: dict[tuple[str, str], tuple[int, int]] = {}
    for event in events:
        message = event.message
        name = message.get("event") or message.get("name")  # as the log's event column
        if isinstance(name, str) and name in names:
            key = (event.profile_id, name)
            n, last = adds.get(key, (0, event.ts))
            adds[key] = (n + 1, max(last, event.ts))
    if not adds:
        return
    rows = [(p, name, n, last) for (p, name), (n, last) in sorted(adds.items())]
    if dialect == "postgres":
        tx.execute(
            "UPDATE segment_event_counts c SET n = c.n + d.n, "
            "last_ts = GREATEST(COALESCE(c.last_ts, d.t), d.t) "
            "FROM unnest(?::text[], ?::text[], ?::bigint[], ?::bigint[]) AS d(p, e, n, t) "
            "WHERE c.profile_id = d.p AND c.event = d.e",
            [[r[i] for r in rows] for i in range(4)],
        )
        return
    tx.executemany(
        "UPDATE segment_event_counts SET n = n + ?, last_ts = MAX(COALESCE(last_ts, ?), ?) "
        "WHERE profile_id = ? AND event = ?",
        [(n, last, last, p, name) for p, name, n, last in rows],
    )


def as_notes(changes: list[Change]) -> list[SegmentChange]:
    return [SegmentChange(c.profile_id, c.segment, c.entered, c.at) for c in changes]


class SegmentHook:
    def __init__(self, service: SegmentService) -> None:
        self.service = service
        self.evaluated = 0
        self.event_rows = 0  # stored events read (or counted) to evaluate conditions
        self.batches = 0

    def __call__(self, batch: BatchContext) -> None:
        tx = batch.tx
        defs = self.service.cache.get(tx)
        for merged, survivor in batch.merges:
            fold_merge(tx, merged, survivor)
        if not defs.order:
            return
        everything = defs.dynamic_keys
        wanted: dict[str, set[str]] = {}
        for _, survivor in batch.merges:
            wanted[survivor] = set(everything)
        in_batch: dict[str, int] = {}
        for event in batch.events:
            in_batch[event.profile_id] = in_batch.get(event.profile_id, 0) + 1
        for pid, state in batch.profiles.items():
            if state.event_count <= in_batch.get(pid, 0):  # new: nothing was known of them
                wanted[pid] = set(everything)
        for event in batch.events:
            keys = wanted.setdefault(event.profile_id, set())
            if len(keys) == len(everything):
                continue
            name, traits, consents = touched(event.message)
            keys |= defs.affected([name] if name else [], traits, consents)
        dialect = self.service.services.db.dialect
        add_to_totals(tx, defs.counted, batch.events, dialect)
        outcome = evaluate_people(tx, defs, batch.profiles, wanted, batch.now_us, "event",
                                  dialect, keep_totals=True)
        self.evaluated += outcome.evaluated
        self.event_rows += outcome.event_rows
        self.batches += 1
        if outcome.changes:
            names = {k: seg.name for k, seg in defs.segments.items()}
            events.record(tx, self.service.services, outcome.changes, names)
        batch.changes.extend(as_notes(outcome.changes))
