"""Segment entries and exits as events in the log.

Every membership change becomes a ``track`` call, ``Segment Entered`` or ``Segment Exited``,
attributed to the person (their ``userId``, else an ``anonymousId``, as delivery events are)
from the ``partitur-segments`` source, written in the transaction that changes the
membership: so it is in the person's timeline and in analytics (funnels can start at
"entered segment X"), and event-triggered journeys and other segments can use it. The
``messageId`` is derived from the person, segment, direction and time, so the same change is
never stored twice. Properties: ``segment`` (key), ``segment_name``, ``cause`` (``event``,
``time``, ``backfill``, ``static``, ``merge``, ``deleted``, ``unmerge``).

Internal events bypass the tracking plan (they are not sent by a touchpoint). With
``segment_events = false`` none are written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from partitur.channels.events import person_ids, track_row
from partitur.store.db import Tx

if TYPE_CHECKING:
    from partitur.segments.engine import Change
    from partitur.services import Services

SOURCE_NAME = "partitur-segments"
SOURCE_ID = "src_segments"
ENTERED, EXITED = "Segment Entered", "Segment Exited"


def source_id(tx: Tx, now_us: int) -> str:
    """The ``partitur-segments`` source, created in ``tx`` when missing."""
    tx.execute("INSERT INTO sources (id, name, created_at) VALUES (?, ?, ?) "
               "ON CONFLICT (name) DO NOTHING", (SOURCE_ID, SOURCE_NAME, now_us))
    row = tx.one("SELECT id FROM sources WHERE name = ?", (SOURCE_NAME,))
    assert row is not None
    return str(row[0])


def message_id(change: Change) -> str:
    text = f"{change.profile_id}\n{change.segment}\n{int(change.entered)}\n{change.at}"
    return "seg-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def rows(
    tx: Tx, changes: Sequence[Change], names: Mapping[str, str], *, source: str,
    partitions: int,
) -> list[tuple[Any, ...]]:
    """The event-log rows for ``changes`` (people nobody can be attributed to are left out:
    erased meanwhile)."""
    ids: dict[str, tuple[str | None, str | None]] = {}
    out = []
    for change in changes:
        if change.profile_id not in ids:
            ids[change.profile_id] = person_ids(tx, change.profile_id)
        user_id, anonymous_id = ids[change.profile_id]
        if not user_id and not anonymous_id:
            continue
        out.append(track_row(
            name=ENTERED if change.entered else EXITED, message_id=message_id(change),
            user_id=user_id, anonymous_id=anonymous_id,
            properties={"segment": change.segment,
                        "segment_name": names.get(change.segment, change.segment),
                        "cause": change.cause},
            now_us=change.at, source_id=source, partitions=partitions,
        ))
    return out


def record(tx: Tx, services: Services, changes: Sequence[Change],
           names: Mapping[str, str]) -> int:
    """Append the events of ``changes`` to the log in ``tx``; how many were new."""
    if not changes or not services.settings.segment_events:
        return 0
    source = source_id(tx, changes[0].at)
    found = rows(tx, changes, names, source=source, partitions=services.settings.partitions)
    return services.events.append(tx, found) if found else 0
