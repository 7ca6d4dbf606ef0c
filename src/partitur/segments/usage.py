"""Which journeys depend on a segment, so that a segment in use is not deleted under them.

A journey depends on a segment through its trigger (``segment_entered``, ``segment_exited``, a
schedule's audience), its entry audience, a branch condition, or an exit rule. The versions
that count are the live or paused version of each journey and every version people are still
active in (they may yet reach a branch on it). Drafts do not count: a draft is checked when it
is published.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgspec

from partitur.conditions import Condition, references
from partitur.errors import InvalidInput
from partitur.store.db import Tx

log = logging.getLogger("partitur.segments")
_DEC = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class Use:
    journey: str
    version: int
    where: str  # "trigger", "entry.audience", "steps[2] (branch-plan)", "exit_when[0]"


def _segments_of(cond: Condition | None) -> frozenset[str]:
    return frozenset() if cond is None else references(cond).segments


def journey_uses(document: object) -> list[tuple[str, frozenset[str]]]:
    """``(where, segments)`` for each part of a stored journey version that names segments."""
    from partitur.journeys.parse import parse_journey  # journeys build on segments

    return parts_using(parse_journey(document))


def parts_using(journey: Any) -> list[tuple[str, frozenset[str]]]:
    """``(where, segments)`` for each part of a parsed journey that names segments."""
    from partitur.journeys.model import BranchStep  # journeys build on segments: import late

    out: list[tuple[str, frozenset[str]]] = []
    if journey.trigger.segment:
        out.append(("trigger", frozenset({journey.trigger.segment})))
    out.append(("entry.audience", _segments_of(journey.entry.audience)))
    for i, step in enumerate(journey.steps):
        if isinstance(step, BranchStep):
            found: frozenset[str] = frozenset()
            for branch in step.branches:
                found |= _segments_of(branch.when)
            out.append((f"steps[{i}] ({step.id})", found))
    for rule in journey.exit_when:
        names = {s for s in (rule.segment_entered, rule.segment_exited) if s}
        out.append((f"exit_when[{rule.index}]", frozenset(names) | _segments_of(rule.condition)))
    return [(where, segs) for where, segs in out if segs]


def journeys_using(tx: Tx, segment: str) -> list[Use]:
    """Every published journey version in use that refers to ``segment``, by journey key."""
    current = {
        (str(key), int(version))
        for key, version in tx.execute(
            "SELECT key, live_version FROM journeys WHERE status IN ('live', 'paused') "
            "AND live_version IS NOT NULL"
        )
    }
    uses: list[Use] = []
    for key, version, document in tx.execute(
        "SELECT journey, version, document FROM journey_versions ORDER BY journey, version"
    ):
        try:
            parts = journey_uses(_DEC.decode(document))
        except (InvalidInput, msgspec.DecodeError):
            log.warning("stored journey %s version %s cannot be read", key, version)
            continue
        found = [where for where, segs in parts if segment in segs]
        if not found:
            continue
        pair = (str(key), int(version))
        if pair not in current and tx.one(
            "SELECT 1 FROM journey_instances WHERE journey = ? AND status = 'active' "
            "AND version = ? LIMIT 1", pair,
        ) is None:
            continue
        uses.extend(Use(pair[0], pair[1], where) for where in found)
    return uses
