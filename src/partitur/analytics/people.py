"""Drill-down: the people behind any aggregate, a page at a time, each linked to their event
timeline; any such list saved as a static segment (so it can feed a journey).

A selection names where the people come from and which part of the answer::

    {"source": "funnel", "query": {...funnel...}, "step": 1, "status": "dropped"}
    {"source": "paths", "query": {...}, "node": "1:Product Viewed"}
    {"source": "retention", "query": {...}, "cohort": "2026-01-05", "period": 2}
    {"source": "kpi", "query": {...}, "t": "2026-01-05T14:00:00Z", "breakdown_value": "ads"}
    {"source": "journey", "journey": "welcome", "step": "wait-order", "status": "waiting"}
    {"source": "experiment", "journey": "welcome", "step": "split", "arm": "discount"}
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from partitur.analytics.spec import bad
from partitur.errors import NotFound

if TYPE_CHECKING:
    from partitur.analytics.service import AnalyticsService

SOURCES = ("funnel", "paths", "retention", "kpi", "journey", "experiment")
SAVE_CHUNK = 10_000  # the static segment API's most per call


def link(profile_id: str) -> dict[str, str]:
    return {"profile_id": profile_id, "events": f"/api/v1/profiles/{profile_id}/events"}


def select(service: AnalyticsService, doc: Any) -> list[str]:
    """Every profile id a selection names, sorted."""
    if not isinstance(doc, dict) or doc.get("source") not in SOURCES:
        raise bad("source", f"expected one of {', '.join(SOURCES)}")
    source = doc["source"]
    engine = service.engine
    now = service.services.clock.now_us()
    query = doc.get("query")
    if source == "funnel":
        from partitur.analytics.funnel_model import parse_funnel
        from partitur.analytics.funnel_report import parse_people, people_ids

        q = parse_funnel(query, now)
        step, status, value, _, _, has_value = parse_people(
            {k: doc[k] for k in ("step", "status", "breakdown_value") if k in doc},
            len(q.steps))
        return people_ids(engine, q, step, status, value, has_value)
    if source == "paths":
        from partitur.analytics.paths import node_people, parse_paths

        return node_people(engine, parse_paths(query, now), doc.get("node"))
    if source == "retention":
        from partitur.analytics.retention import cohort_people, parse_retention

        return cohort_people(engine, parse_retention(query, now), doc)
    if source == "kpi":
        from partitur.analytics.kpi import bucket_people, parse_kpi

        return bucket_people(engine, parse_kpi(query, now), doc)
    if source == "journey":
        from partitur.analytics.dropoff import journey_people

        return journey_people(service.services, doc)
    from partitur.analytics.experiments import arm_people

    return arm_people(service.services, doc)


def page(service: AnalyticsService, doc: Any) -> dict[str, Any]:
    """A page of the selection (``limit``, ``cursor`` = the previous page's ``next_cursor``)."""
    ids = select(service, doc)
    limit = doc.get("limit", 100)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise bad("limit", "expected an integer from 1 to 10000")
    cursor = doc.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise bad("cursor", "expected the next_cursor of the previous page")
    rest = ids[bisect.bisect_right(ids, cursor):] if cursor else ids
    chosen = rest[:limit]
    return {"count": len(ids), "people": [link(p) for p in chosen],
            "next_cursor": chosen[-1] if len(rest) > limit else None}


def save(service: AnalyticsService, doc: Any) -> dict[str, Any]:
    """Save a selection as a static segment (created if it does not exist):
    ``{"segment": "key", "name": "...", ...selection}``."""
    key = doc.get("segment") if isinstance(doc, dict) else None
    if not isinstance(key, str) or not key:
        raise bad("segment", "expected the key of the static segment to save into")
    name = doc.get("name") or key
    ids = select(service, doc)
    summary = save_static(service.services, key, str(name), ids)
    return {"segment": key, "people": len(ids), **summary}


def save_static(services: Any, key: str, name: str, profile_ids: list[str]) -> dict[str, Any]:
    """Add ``profile_ids`` to the static segment ``key`` through the segments service,
    creating the segment first if needed."""
    segments = services.extra.get("segments")
    if segments is None:  # pragma: no cover - segments are always installed
        raise NotFound("segments are not available in this process")
    created = False
    try:
        segments.get(key)
    except NotFound:
        segments.put({"key": key, "name": name, "type": "static"})
        created = True
    added = unchanged = 0
    unknown: list[str] = []
    for start in range(0, len(profile_ids), SAVE_CHUNK):
        result = segments.change_static(key, profile_ids[start:start + SAVE_CHUNK], add=True)
        added += int(result.get("added", 0))
        unchanged += int(result.get("unchanged", 0))
        unknown.extend(result.get("unknown", []))
    return {"created": created, "added": added, "unchanged": unchanged, "unknown": unknown}
