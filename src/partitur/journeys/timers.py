"""Durable timers: instances whose ``wake_at`` has come are claimed in batches and advanced.

The timer is the row itself (``journey_instances.wake_at``, indexed), so waits survive
restarts. :func:`fire_due` claims due rows oldest first (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several processes share the work; SQLite has one writer), advances each with a
:class:`~partitur.journeys.engine.Timer` carrying the row's ``state_version`` (an instance that
moved since is left alone) and writes the outcome in the same transaction. Paused journeys'
timers wait until they are resumed. :func:`fire_schedules` enters the members of a scheduled
journey's segment when its cron time comes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from croniter import croniter

from partitur.clock import from_us, to_us
from partitur.journeys import store
from partitur.journeys.engine import Timer, advance, zone
from partitur.journeys.hook import Pass
from partitur.journeys.people import People

if TYPE_CHECKING:
    from partitur.journeys.service import JourneyService

MAX_ROUNDS = 1000


def fire_due(service: JourneyService, now_us: int, *, batch: int | None = None) -> int:
    """Advance every instance due at or before ``now_us``; returns how many were claimed."""
    size = batch or service.settings.journeys_batch
    total = 0
    for _ in range(MAX_ROUNDS):
        claimed = _round(service, now_us, size)
        total += claimed
        if claimed < size:
            break
    return total


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection during one round: a round makes tens of thousands of
    short-lived containers (rows, contexts, commands), which trigger young-generation
    collections that cost about a fifth of the round's time and find almost nothing. The
    round is bounded (``journeys_batch`` rows), and collection resumes when it ends."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _round(service: JourneyService, now_us: int, size: int) -> int:
    with gc_paused():
        return _claim_and_advance(service, now_us, size)


def _claim_and_advance(service: JourneyService, now_us: int, size: int) -> int:
    db = service.db
    with db.transaction() as tx:
        live = service.cache.live(tx)
        held = live.held
        params: list[object] = [now_us]
        skip_held = ""
        if held:
            skip_held = f" AND journey NOT IN ({','.join('?' * len(held))})"
            params.extend(held)
        lock = " FOR UPDATE SKIP LOCKED" if db.dialect == "postgres" else ""
        rows = tx.execute(
            f"SELECT {store.COLUMNS} FROM journey_instances WHERE wake_at <= ?{skip_held} "
            f"ORDER BY wake_at LIMIT ?{lock}",
            [*params, size],
        )
        if not rows:
            return 0
        instances = [store.from_row(r) for r in rows]
        people = People(tx, {}, service.settings.default_timezone)
        pids = {i.profile_id for i in instances}
        people.load_states(pids)
        people.preload_segments(pids)
        work = Pass(service, tx, now_us, people, live)
        for inst in instances:
            journey = work.journey(inst)
            if journey is None:
                continue
            step = advance(journey, inst, Timer(people.get(inst.profile_id),
                                                inst.state_version), now_us)
            if step.changed:
                work.steps.append((step, inst))
        work.write()
        return len(rows)


def next_cron(expression: str, tz: str, after_us: int) -> int:
    """The first time after ``after_us`` that the cron expression names, in ``tz``."""
    start = from_us(after_us).astimezone(zone(tz))
    nxt = croniter(expression, start).get_next(type(start))
    return to_us(nxt)


def fire_schedules(service: JourneyService, now_us: int) -> int:
    """Enter the segment members of every scheduled journey whose time has come; returns
    how many people entered."""
    entered = 0
    with service.db.read() as tx:
        live = service.cache.live(tx)
        scheduled = list(live.scheduled)
    for version, journey in scheduled:
        trig = journey.trigger
        assert trig.schedule is not None and trig.segment is not None
        with service.db.transaction() as tx:
            row = tx.one("SELECT next_at FROM journey_schedules WHERE journey = ?"
                         + (" FOR UPDATE" if service.dialect == "postgres" else ""),
                         (journey.key,))
            if row is None:
                tx.execute("INSERT INTO journey_schedules (journey, next_at) VALUES (?, ?) "
                           "ON CONFLICT (journey) DO NOTHING",
                           (journey.key, next_cron(trig.schedule, trig.timezone, now_us)))
                continue
            if int(row[0]) > now_us:
                continue
            members = [r[0] for r in tx.execute(
                "SELECT profile_id FROM segment_members WHERE segment = ? ORDER BY profile_id "
                "LIMIT ?", (trig.segment, service.settings.journeys_schedule_max))]
            people = People(tx, {}, service.settings.default_timezone)
            people.load_states(members)
            people.preload_segments(members)
            work = Pass(service, tx, now_us, people, live)
            work._entry_people = set(members)
            work.instances = store.load_for_profiles(tx, members, now_us)
            for pid in members:
                if work.enter(pid, version, journey, {"type": "schedule", "event": "Scheduled",
                                                      "properties": {"segment": trig.segment}},
                              f"schedule {trig.schedule}") is not None:
                    entered += 1
            work.write()
            tx.execute("UPDATE journey_schedules SET next_at = ? WHERE journey = ?",
                       (next_cron(trig.schedule, trig.timezone, now_us), journey.key))
    return entered
