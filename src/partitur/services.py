"""Everything a running Partitur holds, wired once: settings, clock, store and the services."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from partitur.auth.keys import Keys
from partitur.clock import Clock, ManualClock, SystemClock
from partitur.ingest.commit import GroupCommitter
from partitur.ingest.decode import Limits
from partitur.ingest.ratelimit import RateLimiter
from partitur.plan.service import PlanService
from partitur.settings import Settings
from partitur.store.db import Database, open_database
from partitur.store.events import EventLog, event_log_for
from partitur.store.migrations import migrate

log = logging.getLogger("partitur")


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    events: EventLog
    keys: Keys
    plan: PlanService
    committer: GroupCommitter
    rate_limiter: RateLimiter
    limits: Limits
    wake: threading.Event = field(default_factory=threading.Event)
    extra: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        self.committer.stop()
        self.db.close()


def make_clock(settings: Settings) -> Clock:
    return ManualClock() if settings.clock == "manual" else SystemClock()


def build_services(
    settings: Settings, *, clock: Clock | None = None, db: Database | None = None
) -> Services:
    """Open the store, migrate it and wire the services (nothing runs until started)."""
    clock = clock or make_clock(settings)
    if db is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = open_database(
            database_url=settings.database_url,
            sqlite_path=settings.sqlite_path,
            synchronous=settings.sqlite_synchronous,
        )
    migrate(db)
    events = event_log_for(db)
    events.ensure_partitions(clock.now())
    keys = Keys(db, clock)
    plan = PlanService(db, clock)
    wake = threading.Event()
    committer = GroupCommitter(
        db,
        events,
        write_rejected=plan.write_rejected,
        max_events=settings.commit_max_events,
        on_commit=wake.set,
    )
    limits = Limits.from_settings(settings)
    return Services(
        settings=settings,
        clock=clock,
        db=db,
        events=events,
        keys=keys,
        plan=plan,
        committer=committer,
        rate_limiter=RateLimiter(),
        limits=limits,
        wake=wake,
    )


def dedup_cutoff_us(services: Services) -> int:
    hours = max(24, services.settings.dedup_hours)
    return services.clock.now_us() - int(timedelta(hours=hours).total_seconds() * 1_000_000)
