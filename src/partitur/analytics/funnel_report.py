"""The funnel's answer: per step (and per breakdown value) counts, conversion rates, times to
convert and the people who dropped off, with pages of people and links to their timelines."""

from __future__ import annotations

from typing import Any

import numpy as np

from partitur.analytics import funnel
from partitur.analytics.engine import QueryEngine
from partitur.analytics.funnel_model import FunnelQuery
from partitur.analytics.spec import bad


def person_link(profile_id: str) -> dict[str, str]:
    return {"profile_id": profile_id, "events": f"/api/v1/profiles/{profile_id}/events"}


def _seconds(values: np.ndarray[Any, Any]) -> tuple[float | None, float | None]:
    if not values.size:
        return None, None
    return round(float(values.mean()) / 1e6, 3), round(float(np.median(values)) / 1e6, 3)


def cursor_of(key: int) -> str:
    return f"{int(key):016x}"


pick_none = np.zeros(0, np.int64)


def _order(result: funnel.Result, persons: np.ndarray[Any, Any], limit: int,
           cursor: str | None = None) -> tuple[np.ndarray[Any, Any], str | None]:
    """A page of ``persons`` (ordinals) in the order of their key; the next page's cursor."""
    keys = result.keys[persons]
    if cursor is not None:
        try:
            after = np.uint64(int(cursor, 16))
        except ValueError:
            raise bad("people.cursor", "expected the next_cursor of the previous page") from None
        later = keys > after
        persons, keys = persons[later], keys[later]
    if limit < len(keys):  # only the page's keys need sorting
        pick = np.argpartition(keys, limit)[:limit] if limit else pick_none
        persons, keys = persons[pick], keys[pick]
        more = limit > 0
    else:
        more = False
    order = np.argsort(keys, kind="stable")
    page = persons[order]
    return page, cursor_of(keys[order[-1]]) if more else None


class Pages:
    """Pages of people asked for while building a report, resolved to ids in one query."""

    def __init__(self, result: funnel.Result) -> None:
        self.result = result
        self.pending: list[tuple[dict[str, Any], np.ndarray[Any, Any]]] = []

    def add(self, persons: np.ndarray[Any, Any], limit: int,
            cursor: str | None = None) -> dict[str, Any]:
        """A page document, filled in by :meth:`resolve`."""
        page, next_cursor = _order(self.result, persons, limit, cursor)
        doc: dict[str, Any] = {"count": int(persons.size), "people": [],
                               "next_cursor": next_cursor}
        self.pending.append((doc, page))
        return doc

    def resolve(self) -> None:
        wanted = [page for _, page in self.pending if page.size]
        ids = self.result.ids(np.concatenate(wanted)) if wanted else {}
        for doc, page in self.pending:
            doc["people"] = [person_link(ids[int(o)]) for o in page if int(o) in ids]
        self.pending.clear()


def steps_report(q: FunnelQuery, result: funnel.Result, members: np.ndarray[Any, Any],
                 people_limit: int, pages: Pages) -> list[dict[str, Any]]:
    """Per step, for the people at positions ``members`` of the outcome."""
    out = result.outcome
    furthest = out.furthest[members]
    times = out.times[members]
    persons = out.person[members]
    first = int((furthest >= 1).sum())
    rows = []
    previous = first
    for k, name in enumerate(q.step_names):
        reached = furthest >= k + 1
        count = int(reached.sum())
        avg = median = None
        if k > 0:
            avg, median = _seconds(times[reached, k] - times[reached, k - 1])
        row: dict[str, Any] = {
            "index": k,
            "name": name,
            "count": count,
            "conversion_rate": round(count / first, 6) if first else None,
            "conversion_from_previous": round(count / previous, 6) if previous else None,
            "avg_time_to_convert_s": avg,
            "median_time_to_convert_s": median,
        }
        if k < len(q.steps) - 1:
            row["dropped"] = pages.add(persons[furthest == k + 1], people_limit)
        rows.append(row)
        previous = count
    return rows


def _members_by_value(result: funnel.Result) -> dict[Any, np.ndarray[Any, Any]]:
    """Positions in the outcome of the people of each breakdown value."""
    codes = result.codes[result.outcome.person]
    order = np.argsort(codes, kind="stable")
    found, begin = np.unique(codes[order], return_index=True)
    ends = np.r_[begin[1:], len(order)]
    return {None if c < 0 else result.names[int(c)]: order[b:e].astype(np.int64)
            for c, b, e in zip(found, begin, ends, strict=True)}


def report(engine: QueryEngine, q: FunnelQuery) -> dict[str, Any]:
    touch = q.breakdown is not None and q.breakdown.attribution in ("first_touch", "last_touch")
    main = funnel.run(engine, q, breakdown=touch)
    everyone = np.arange(len(main.outcome.person))
    first, median = _overall(q, main, everyone)
    pages = Pages(main)
    doc: dict[str, Any] = {
        "query": q.echo(),
        "steps": steps_report(q, main, everyone, q.people_limit, pages),
        "people": len(main.outcome.person),
        "excluded_people": len(main.outcome.excluded),
        "conversion_rate": first,
        "median_time_to_convert_s": median,
        "files_scanned": main.source.files,
    }
    if q.breakdown is not None:
        split = main if touch else funnel.run(engine, q, breakdown=True)
        groups = _members_by_value(split)
        ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), str(kv[0])))
        split_pages = pages if split is main else Pages(split)  # one look-up per run
        doc["breakdown"] = [
            {"value": value,
             "steps": steps_report(q, split, members, q.people_limit, split_pages)}
            for value, members in ranked[: q.breakdown.limit]
        ]
        split_pages.resolve()
        doc["breakdown_values"] = len(ranked)
    pages.resolve()
    return doc


def _overall(q: FunnelQuery, result: funnel.Result, members: np.ndarray[Any, Any]
             ) -> tuple[float | None, float | None]:
    out = result.outcome
    if not members.size:
        return None, None
    done = out.furthest[members] == len(q.steps)
    rate = round(float(done.mean()), 6)
    if len(q.steps) < 2 or not done.any():
        return rate, None
    spans = out.times[members][done, -1] - out.times[members][done, 0]
    return rate, round(float(np.median(spans)) / 1e6, 3)


def people(engine: QueryEngine, q: FunnelQuery, spec: Any) -> dict[str, Any]:
    """One page of the people behind a step: ``{"step", "status", "breakdown_value",
    "limit", "cursor"}``; ``status``: dropped, reached, converted or excluded."""
    step, status, value, limit, cursor, has_value = parse_people(spec, len(q.steps))
    result, persons = select_people(engine, q, step, status, value, has_value)
    pages = Pages(result)
    doc = pages.add(persons, limit, cursor)
    pages.resolve()
    return {"step": step, "status": status, **doc}


def select_people(engine: QueryEngine, q: FunnelQuery, step: int, status: str, value: Any,
                  has_value: bool) -> tuple[funnel.Result, np.ndarray[Any, Any]]:
    """The run and the person ordinals behind one step and status (and breakdown value)."""
    use_breakdown = has_value and q.breakdown is not None
    result = funnel.run(engine, q, breakdown=use_breakdown)
    out = result.outcome
    if status == "excluded":
        chosen = out.excluded
    else:
        if status == "dropped":
            keep = out.furthest == step + 1
        elif status == "converted":
            keep = out.furthest == len(q.steps)
        else:
            keep = out.furthest >= step + 1
        chosen = out.person[keep]
    if use_breakdown:
        code = result.code_of(value)
        chosen = chosen[result.codes[chosen] == code] if code is not None else chosen[:0]
    return result, chosen.astype(np.int64)


def people_ids(engine: QueryEngine, q: FunnelQuery, step: int, status: str, value: Any,
               has_value: bool) -> list[str]:
    """Every profile id behind one step and status (and breakdown value), sorted."""
    result, persons = select_people(engine, q, step, status, value, has_value)
    return sorted(set(result.ids(persons).values()))


def parse_people(spec: Any, steps: int) -> tuple[int, str, Any, int, str | None, bool]:
    if not isinstance(spec, dict):
        raise bad("people", "expected {\"step\": 1, \"status\": \"dropped\"}")
    step = spec.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < steps:
        raise bad("people.step", f"expected a step index from 0 to {steps - 1}")
    status = spec.get("status", "dropped")
    if status not in funnel.PEOPLE_STATUSES:
        raise bad("people.status", f"expected one of {', '.join(funnel.PEOPLE_STATUSES)}")
    if status == "dropped" and step == steps - 1:
        raise bad("people.step", "nobody drops after the last step; ask for 'converted'")
    limit = spec.get("limit", 100)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise bad("people.limit", "expected an integer from 1 to 10000")
    cursor = spec.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise bad("people.cursor", "expected the next_cursor of the previous page")
    return step, status, spec.get("breakdown_value"), limit, cursor, "breakdown_value" in spec


def time_to_convert(engine: QueryEngine, q: FunnelQuery, doc: dict[str, Any]
                    ) -> dict[str, Any]:
    """The distribution of the time from ``from_step`` to ``to_step`` (default: first to
    last) among the people who reached ``to_step``, in ``bins`` equal bins."""
    steps = len(q.steps)
    lo = doc.get("from_step", 0)
    hi = doc.get("to_step", steps - 1)
    for name, value in (("from_step", lo), ("to_step", hi)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < steps:
            raise bad(name, f"expected a step index from 0 to {steps - 1}")
    if lo >= hi:
        raise bad("to_step", "must be after from_step")
    bins = doc.get("bins", 20)
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= 500:
        raise bad("bins", "expected an integer from 1 to 500")
    result = funnel.run(engine, q, breakdown=False)
    out = result.outcome
    done = out.furthest >= hi + 1
    seconds = (out.times[done, hi] - out.times[done, lo]) / 1e6
    doc_out: dict[str, Any] = {"query": q.echo(), "from_step": lo, "to_step": hi,
                               "people": int(seconds.size), "bins": []}
    if not seconds.size:
        return doc_out
    top = float(seconds.max())
    edges = np.linspace(0.0, top if top > 0 else 1.0, bins + 1)
    counts, _ = np.histogram(seconds, bins=edges)
    doc_out["bins"] = [{"from_s": round(float(a), 3), "to_s": round(float(b), 3),
                        "count": int(c)} for a, b, c in zip(edges[:-1], edges[1:], counts,
                                                            strict=True)]
    pct = np.percentile(seconds, [25, 50, 75, 90])
    doc_out.update(avg_s=round(float(seconds.mean()), 3), p25_s=round(float(pct[0]), 3),
                   median_s=round(float(pct[1]), 3), p75_s=round(float(pct[2]), 3),
                   p90_s=round(float(pct[3]), 3))
    return doc_out
