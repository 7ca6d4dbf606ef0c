"""Two profiles that merge must not leave one person in a journey twice.

When the profile worker merges profile ``merged`` into ``survivor`` (``BatchContext.merges``),
the merged-away profile's journey rows move to the survivor. Where both were in the same
journey, one run is kept: the one that entered first (ties: the lower instance id), and an
active run beats one that has ended. The others that are still active leave with exit reason
``merged`` (their path names the run kept); ended runs whose goal window is still open have
it closed, so one goal event converts once. Entries and their numbers stay, so re-entry rules
see the history of both profiles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from partitur.journeys import store
from partitur.journeys.engine import Halt, Instance, Step, advance

if TYPE_CHECKING:
    from partitur.journeys.service import JourneyService
    from partitur.store.db import Tx

REASON = "merged"


def keeper(runs: list[Instance]) -> Instance:
    """The run a merged person keeps in one journey."""
    return min(runs, key=lambda i: (i.status != "active", i.entered_at, i.id))


def fold_merge(service: JourneyService, tx: Tx, merged: str, survivor: str, now: int
               ) -> int:
    """Move ``merged``'s journey rows to ``survivor``, one live run per journey; returns how
    many runs left with reason ``merged``."""
    current = store.load_for_profiles(tx, [merged, survivor], now,
                                      lock=service.dialect == "postgres")
    by_journey: dict[str, list[Instance]] = {}
    for runs in current.values():
        for inst in runs:
            by_journey.setdefault(inst.journey, []).append(inst)
    steps: list[tuple[Step, Instance | None]] = []
    closed: list[str] = []
    for journey_key in sorted(by_journey):
        runs = by_journey[journey_key]
        if len(runs) < 2:
            continue
        kept = keeper(runs)
        for inst in runs:
            if inst is kept:
                continue
            if inst.status != "active":
                closed.append(inst.id)
                continue
            journey = service.cache.version(tx, inst.journey, inst.version)
            if journey is None:
                continue
            halt = Halt(REASON, {"kept": kept.id, "merged_into": survivor})
            steps.append((advance(journey, inst, halt, now), inst))
    if steps:
        store.apply(tx, steps, now, service.effects())
    for iid in closed:
        tx.execute("UPDATE journey_instances SET goal_until = NULL WHERE id = ?", (iid,))
    tx.execute("UPDATE journey_instances SET profile_id = ? WHERE profile_id = ?",
               (survivor, merged))
    tx.execute("UPDATE journey_path SET profile_id = ? WHERE profile_id = ?",
               (survivor, merged))
    return len(steps)
