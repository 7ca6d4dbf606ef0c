"""Segments: groups of people defined by a condition (dynamic) or a saved list (static).

Membership is kept in real time by the profile worker's batch hook (:mod:`.hook`), by time
passing through the due index (:mod:`.due`), and by backfill when a definition changes
(:mod:`.backfill`); every entry and exit is recorded and handed to journeys. See
docs/segments.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from partitur.segments.backfill import backfill_step, run_backfills
from partitur.segments.due import fire_due, next_due_us
from partitur.segments.eventcounts import EventCounts, Need, count_events, event_counter
from partitur.segments.model import Segment, parse_segment
from partitur.segments.runner import SegmentRunner
from partitur.segments.service import SegmentService
from partitur.segments.subject import profile_subject

if TYPE_CHECKING:
    from partitur.services import Services

__all__ = [
    "EventCounts",
    "Need",
    "Segment",
    "SegmentRunner",
    "SegmentService",
    "backfill_step",
    "count_events",
    "event_counter",
    "fire_due",
    "install",
    "next_due_us",
    "parse_segment",
    "profile_subject",
    "run_backfills",
]


def install(services: Services) -> SegmentService:
    """Wire segments into ``services``: the service in ``extra["segments"]`` and the batch
    hook at the end of ``batch_hooks`` (journeys register theirs after it)."""
    service = SegmentService(services)
    services.extra["segments"] = service
    services.batch_hooks.append(service.hook)
    return service
