"""Journeys in the profile worker's batch: entries, awaited events, goals and exit rules.

Called after the segment hook, inside the batch's transaction. For each processed event, in
order: the person's instances see it first (goal, exit rules, ``wait_for_event``), then live
journeys it triggers enter the person (re-entry rule and audience permitting). Then segment
changes (``batch.changes``) do the same for ``segment_entered``/``segment_exited`` triggers
and exit rules. Everything is written with :func:`~partitur.journeys.store.apply` before the
batch commits, so the event, the entry and the first message commit together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from partitur.conditions import evaluate
from partitur.journeys import store
from partitur.journeys.definitions import Live
from partitur.journeys.engine import (
    Enter,
    Event,
    Instance,
    SegmentChanged,
    Step,
    advance,
    new_instance,
)
from partitur.journeys.engine import _subject as subject_of
from partitur.journeys.merge import fold_merge
from partitur.journeys.model import Journey, call_cause, call_fields, call_keys
from partitur.journeys.people import People
from partitur.worker.hooks import BatchContext, SegmentChange

if TYPE_CHECKING:
    from partitur.journeys.service import JourneyService


class Pass:
    """One transaction's worth of journey work: instances in memory, steps to write."""

    def __init__(self, service: JourneyService, tx: Any, now: int, people: People,
                 live: Live) -> None:
        self.service = service
        self.tx = tx
        self.now = now
        self.people = people
        self.live = live
        self.instances: dict[str, list[Instance]] = {}
        self.steps: list[tuple[Step, Instance | None]] = []
        self._entries: dict[tuple[str, str], store.EntryInfo] | None = None
        self._entry_people: set[str] = set()

    def journey(self, inst: Instance) -> Journey | None:
        return self.service.cache.version(self.tx, inst.journey, inst.version)

    def feed(self, pid: str, trigger_of: Any) -> None:
        """Advance each of the person's instances with ``trigger_of(person, paused)``, where
        ``paused`` says whether the instance's journey is paused."""
        current = self.instances.get(pid)
        if not current:
            return
        person = self.people.get(pid)
        status = self.live.status
        for i, inst in enumerate(current):
            journey = self.journey(inst)
            if journey is None:
                continue
            paused = status.get(inst.journey) == "paused"
            step = advance(journey, inst, trigger_of(person, paused), self.now)
            if step.changed:
                self.steps.append((step, inst))
                current[i] = step.instance

    def entries(self) -> dict[tuple[str, str], store.EntryInfo]:
        if self._entries is None:
            self._entries = store.entry_info(self.tx, sorted(self.live.current),
                                             sorted(self._entry_people))
        return self._entries

    def enter(self, pid: str, version: int, journey: Journey,
              event: Mapping[str, Any] | None, cause: str) -> Instance | None:
        info = self.entries().setdefault((journey.key, pid), store.EntryInfo())
        rule = journey.entry
        if info.active:
            return None
        if info.last_entry and rule.reentry == "never":
            return None
        if (info.last_entry and rule.reentry == "after" and info.last_entered_at is not None
                and rule.after_us is not None and self.now - info.last_entered_at < rule.after_us):
            return None
        person = self.people.get(pid)
        if rule.audience is not None:
            result = evaluate(rule.audience, subject_of(person, self.now, event))
            if not result.result:
                return None
        inst = new_instance(journey, version, pid, info.last_entry + 1, self.now)
        step = advance(journey, inst, Enter(person, event, cause), self.now)
        self.steps.append((step, None))
        info.last_entry += 1
        info.last_entered_at = self.now
        info.active = step.instance.status == "active"
        if step.instance.status == "active" or step.instance.goal_until is not None:
            self.instances.setdefault(pid, []).append(step.instance)
        return step.instance

    def write(self) -> store.Outcome:
        outcome = store.apply(self.tx, self.steps, self.now, self.service.effects())
        self.service.after_write(self.tx, outcome)
        return outcome


def _segment_event(change: SegmentChange) -> dict[str, Any]:
    name = "Segment Entered" if change.entered else "Segment Exited"
    return {"type": "track", "event": name, "properties": {"segment": change.segment}}


class JourneyHook:
    def __init__(self, service: JourneyService) -> None:
        self.service = service
        self.batches = 0

    def __call__(self, batch: BatchContext) -> None:
        service = self.service
        tx = batch.tx
        live = service.cache.live(tx)
        if live.empty:
            return
        for merged, survivor in batch.merges:
            fold_merge(service, tx, merged, survivor, batch.now_us)
        changes = [c for c in batch.changes if isinstance(c, SegmentChange)]
        pids = {e.profile_id for e in batch.events} | {c.profile_id for c in changes}
        if not pids:
            return
        people = People(tx, batch.profiles, service.settings.default_timezone)
        work = Pass(service, tx, batch.now_us, people, live)
        work.instances = store.load_for_profiles(tx, pids, batch.now_us,
                                                 lock=service.dialect == "postgres")
        by_event = live.by_event
        calls = [call_keys(e.message) if by_event else () for e in batch.events]
        work._entry_people = {
            e.profile_id for e, keys in zip(batch.events, calls, strict=True)
            if any(k in by_event for k in keys)
        } | {c.profile_id for c in changes if (c.segment, c.entered) in live.by_segment}
        for event, keys in zip(batch.events, calls, strict=True):
            pid = event.profile_id
            name = _name(event.message)
            if name is not None:
                work.feed(pid, lambda person, paused, n=name, m=event.message, ts=event.ts,
                          at=event.received_at: Event(person, n, m, ts, paused, at))
            for key in keys:
                for version, journey in by_event.get(key, ()):
                    where = journey.trigger.where
                    if where is not None and not where.matches(call_fields(event.message),
                                                               batch.now_us):
                        continue
                    work.enter(pid, version, journey, _trigger_event(event.message),
                               call_cause(keys[0]))
        for change in changes:
            pid = change.profile_id
            work.feed(pid, lambda person, _paused, c=change: SegmentChanged(
                person, c.segment, c.entered))
            for version, journey in live.by_segment.get((change.segment, change.entered), ()):
                how = "entered" if change.entered else "left"
                work.enter(pid, version, journey, _segment_event(change),
                           f"{how} segment {change.segment}")
        work.write()
        self.batches += 1


def _name(message: Mapping[str, Any]) -> str | None:
    name = message.get("event") if message.get("type") == "track" else None
    return name if isinstance(name, str) else None


def _trigger_event(message: Mapping[str, Any]) -> dict[str, Any]:
    """What an instance keeps of the event that started it (templates see it as ``event``)."""
    keep = ("type", "event", "name", "properties", "traits", "messageId", "timestamp",
            "userId", "anonymousId")
    out = {k: message[k] for k in keep if k in message}
    context = message.get("context")
    if isinstance(context, Mapping) and isinstance(context.get("timezone"), str):
        out["context"] = {"timezone": context["timezone"]}
    return out
