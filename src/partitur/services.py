"""Everything a running Partitur holds, wired once: settings, clock, store and the services."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from partitur.auth.keys import Keys
from partitur.clock import Clock, ManualClock, SystemClock
from partitur.ingest.commit import GroupCommitter
from partitur.ingest.decode import Limits
from partitur.ingest.ratelimit import RateLimiter
from partitur.plan.service import PlanService
from partitur.privacy.suppress import SuppressionCheck
from partitur.settings import Settings
from partitur.store.db import Database, open_database
from partitur.store.events import EventLog, event_log_for
from partitur.store.migrations import migrate
from partitur.worker.hooks import BatchHook
from partitur.worker.processor import rules_from

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
    # Called by the profile worker inside each batch's transaction (segments, journeys).
    batch_hooks: list[BatchHook] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        analytics = self.extra.get("analytics")
        if analytics is not None:
            analytics.stop()
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
    events = event_log_for(db, window_us=dedup_window_us(settings))
    events.ensure_partitions(clock.now())
    keys = Keys(db, clock)
    plan = PlanService(db, clock)
    wake = threading.Event()
    committer = GroupCommitter(
        db,
        events,
        write_rejected=plan.write_rejected,
        drop_suppressed=SuppressionCheck(rules_from(settings), db.dialect),
        max_events=settings.commit_max_events,
        on_commit=wake.set,
    )
    limits = Limits.from_settings(settings)
    services = Services(
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
    from partitur.segments import install as install_segments

    install_segments(services)  # the segment hook; journeys register theirs after it
    from partitur.journeys import install as install_journeys

    install_journeys(services)
    from partitur.analytics import install as install_analytics

    install_analytics(services)  # last: it records what the batch processed
    return services


def dedup_window_us(settings: Settings) -> int:
    """How long a messageId is remembered: ``dedup_hours``, never under a day."""
    return max(24, settings.dedup_hours) * 3_600_000_000


def dedup_cutoff_us(services: Services) -> int:
    return services.clock.now_us() - dedup_window_us(services.settings)
