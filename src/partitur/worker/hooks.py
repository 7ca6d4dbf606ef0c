"""What later stages (segments, journeys) see of a processed batch, inside its transaction.

The profile worker resolves and folds a batch of events, then calls each registered hook with a
:class:`BatchContext` before it commits, so whatever a hook writes (segment membership, journey
instances, outbox rows) commits or rolls back with the batch: an event that makes someone
qualify puts them in the segment, and enters them in a journey, in the same processing step.

Hooks run in registration order and may leave notes for the hooks after them (``changes``):
segments append :class:`SegmentChange` records there, which journeys then trigger on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from partitur.store.db import Tx

if TYPE_CHECKING:
    from partitur.profiles.state import ProfileState


@dataclass(frozen=True, slots=True)
class ProcessedEvent:
    """One event of the batch, attributed to its profile (the survivor after any merge)."""

    seq: int
    ts: int  # event time, µs since the epoch (after clock-skew correction)
    received_at: int
    profile_id: str
    source_id: str
    message: dict[str, Any]  # the stored Segment message (camelCase keys)


@dataclass(frozen=True, slots=True)
class SegmentChange:
    profile_id: str
    segment: str
    entered: bool  # False: exited
    at: int  # µs


@dataclass(slots=True)
class BatchContext:
    tx: Tx
    now_us: int
    events: list[ProcessedEvent]  # in seq order
    profiles: dict[str, ProfileState]  # every profile the batch touched, as saved
    merges: list[tuple[str, str]]  # (merged-away id, survivor id)
    changes: list[Any] = field(default_factory=list)  # notes between hooks, e.g. SegmentChange


class BatchHook(Protocol):
    def __call__(self, batch: BatchContext) -> None: ...
