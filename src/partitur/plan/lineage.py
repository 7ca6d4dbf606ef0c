"""Who produces and who consumes what, from the plan's ``produced_by`` and ``consumed_by``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from partitur.plan.model import TrackingPlan


def _call(kind: str, event: str | None) -> dict[str, Any]:
    return {"type": kind, "event": event} if event is not None else {"type": kind}


def lineage(plan: TrackingPlan, known_sources: Iterable[str] = ()) -> dict[str, Any]:
    """For each source the calls it sends, for each consuming system the calls it uses, and
    for each call both sides. ``known`` says whether a source of that name exists."""
    known = set(known_sources)
    producers: dict[str, list[dict[str, Any]]] = {}
    consumers: dict[str, list[dict[str, Any]]] = {}
    calls = []
    for kind, event, section in plan.sections():
        call = _call(kind, event)
        for source in section.produced_by:
            producers.setdefault(source, []).append(call)
        for system in section.consumed_by:
            consumers.setdefault(system, []).append(call)
        calls.append({**call, "description": section.description,
                      "produced_by": section.produced_by, "consumed_by": section.consumed_by})
    return {
        "sources": [{"source": name, "known": name in known, "produces": items}
                    for name, items in sorted(producers.items())],
        "consumers": [{"system": name, "consumes": items}
                      for name, items in sorted(consumers.items())],
        "calls": calls,
    }
