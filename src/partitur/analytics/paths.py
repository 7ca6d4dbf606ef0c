"""Paths: from (or to) a chosen event, the most common next (or previous) events — Sankey
nodes and links with people counts, a minimum-edge filter, and the people behind a node.

Each person contributes one path: anchored at their first event matching ``start`` (or
``end``) in the time range, followed by their next (previous) ``steps`` actions in time order.
With ``collapse_repeats`` a run of the same event counts once (a page reload is not a step).
Node ids are ``"<position>:<name>"``: position 0 is the anchor, 1.. after it, -1.. before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from partitur.analytics.engine import QueryEngine
from partitur.analytics.spec import (
    ACTION_TYPES,
    Match,
    bad,
    duration_us,
    parse_match,
    time_range,
)
from partitur.analytics.sql import Params, match_sql, time_sql


@dataclass(frozen=True)
class PathQuery:
    anchor: Match
    forward: bool  # from the anchor (start) or to it (end)
    steps: int
    from_us: int
    to_us: int
    window_us: int | None
    min_edge: int
    max_links: int
    collapse: bool


KEYS = {"start", "end", "steps", "from", "to", "window", "min_edge", "max_links",
        "collapse_repeats", "format", "people"}


def parse_paths(doc: Any, now_us: int) -> PathQuery:
    if not isinstance(doc, dict):
        raise bad("$", "expected a JSON object with 'start' or 'end'")
    unknown = set(doc) - KEYS
    if unknown:
        raise bad(sorted(unknown)[0], "unknown key")
    if ("start" in doc) == ("end" in doc):
        raise bad("start", "give exactly one of 'start' (paths after it) or 'end' (before it)")
    forward = "start" in doc
    anchor = parse_match(doc["start" if forward else "end"], "start" if forward else "end")
    steps = _int(doc.get("steps", 3), "steps", 1, 10)
    lo, hi = time_range(doc, now_us)
    window = duration_us(doc["window"], "window") if doc.get("window") is not None else None
    collapse = doc.get("collapse_repeats", True)
    if not isinstance(collapse, bool):
        raise bad("collapse_repeats", "expected true or false")
    return PathQuery(anchor=anchor, forward=forward, steps=steps, from_us=lo, to_us=hi,
                     window_us=window, min_edge=_int(doc.get("min_edge", 1), "min_edge", 1,
                                                     10**9),
                     max_links=_int(doc.get("max_links", 200), "max_links", 1, 5000),
                     collapse=collapse)


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise bad(field, f"expected an integer from {lo} to {hi}")
    return value


def _steps_sql(q: PathQuery, source: str, p: Params, *, ids: bool = False,
               one_hash: bool = False) -> str:
    """``WITH`` clauses ending in ``s`` (pid, pos, name, nxt): each person's path positions
    and the next name on it.

    People are told apart by a hash of their id (integers join and sort faster); a second
    hash keeps another person's events out should two ids ever share the first, and
    ``collide`` flags two anchored people sharing it (the caller then asks again with
    ``ids``, the exact ids). With ``one_hash`` (the files' ids are known not to share a hash,
    :mod:`.idhash`) the second hash is left out."""
    hit = match_sql(q.anchor, p)
    types = ", ".join(p(t) for t in ACTION_TYPES)
    who = "profile_id AS pid, 0 AS pid2" if ids else (
        "hash(profile_id) AS pid, 0 AS pid2" if one_hash else
        "hash(profile_id) AS pid, hash(profile_id || '#') AS pid2")
    ev = (f"SELECT {who}, epoch_us(ts) AS t, seq, coalesce(event, type) AS name, "
          f"{hit} AS hit FROM {source} WHERE {time_sql(q.from_us, q.to_us)} "
          f"AND type IN ({types})")
    if q.forward:
        side = "{'t': e.t, 's': e.seq} >= n.a"
        if q.window_us is not None:
            side += f" AND e.t <= n.a.t + {int(q.window_us)}"
        order, pick = "t, seq", "min"
    else:
        side = "{'t': e.t, 's': e.seq} <= n.a"
        if q.window_us is not None:
            side += f" AND e.t >= n.a.t - {int(q.window_us)}"
        order, pick = "t DESC, seq DESC", "min"
    fresh = ("name IS DISTINCT FROM lag(name) OVER (PARTITION BY pid ORDER BY "
             f"{order})" if q.collapse else "true")
    sign = "" if q.forward else "-"
    return (
        f"WITH ev AS ({ev}), "
        f"anchor AS (SELECT pid, {pick}({{'t': t, 's': seq}}) AS a, min(pid2) AS pid2, "
        "max(pid2) != min(pid2) AS collide FROM ev WHERE hit GROUP BY pid), "
        "side AS (SELECT e.pid, e.t, e.seq, e.name FROM ev e JOIN anchor n ON e.pid = n.pid "
        f"AND e.pid2 = n.pid2 WHERE {side}), "
        f"runs AS (SELECT pid, t, seq, name, {fresh} AS fresh FROM side), "
        f"num AS (SELECT pid, name, {sign}(row_number() OVER w - 1) AS pos, lead(name) OVER w "
        f"AS nxt FROM runs WHERE fresh WINDOW w AS (PARTITION BY pid ORDER BY {order})), "
        f"s AS (SELECT pid, pos, name, CASE WHEN abs(pos) < {q.steps} THEN nxt END AS nxt "
        f"FROM num WHERE abs(pos) <= {q.steps}) "
    )


def node_id(pos: int, name: str) -> str:
    return f"{pos}:{name}"


def paths(engine: QueryEngine, q: PathQuery) -> dict[str, Any]:
    source = engine.source(q.from_us, q.to_us)
    with engine.cursor() as cur:
        rows: list[Any] = []
        one_hash = engine.distinct_ids(cur, source)
        for ids in (False, True):
            p = Params()
            steps = _steps_sql(q, source.sql, p, ids=ids, one_hash=one_hash)
            rows = cur.sql(f"{steps} SELECT pos, name, nxt, count(*), (SELECT "
                           "coalesce(bool_or(collide), false) FROM anchor) FROM s GROUP BY ALL",
                           params=p.values).fetchall()
            if not rows or not rows[0][4]:
                break
    counts: dict[str, int] = {}
    pairs: list[tuple[str, str, int]] = []
    for pos, name, nxt, n, _ in rows:
        key = node_id(int(pos), name)
        counts[key] = counts.get(key, 0) + int(n)
        if nxt is not None:
            other = node_id(int(pos) + (1 if q.forward else -1), nxt)
            pairs.append((key, other, int(n)) if q.forward else (other, key, int(n)))
    pairs.sort(key=lambda x: (-x[2], x[0], x[1]))
    links = [{"source": a, "target": b, "value": n} for a, b, n in pairs
             if n >= q.min_edge][: q.max_links]
    leaving: dict[str, int] = {}
    for a, _b, n in pairs:
        leaving[a] = leaving.get(a, 0) + n
    used = {link["source"] for link in links} | {link["target"] for link in links}
    used |= {k for k in counts if k.startswith("0:")}
    nodes = [
        {"id": key, "position": int(key.split(":", 1)[0]), "name": key.split(":", 1)[1],
         "people": count, "ended_here": count - leaving.get(key, 0) if q.forward else None}
        for key, count in sorted(counts.items(),
                                 key=lambda kv: (abs(int(kv[0].split(":", 1)[0])), -kv[1]))
        if key in used
    ]
    return {"query": {"anchor": q.anchor.label, "direction": "after" if q.forward else "before",
                      "steps": q.steps, "min_edge": q.min_edge},
            "people": sum(n for k, n in counts.items() if k.startswith("0:")),
            "nodes": nodes, "links": links,
            "links_below_min_edge": sum(1 for *_, n in pairs if n < q.min_edge),
            "files_scanned": source.files}


def node_people(engine: QueryEngine, q: PathQuery, node: Any) -> list[str]:
    """Profile ids of the people whose path passes ``node`` (``"<position>:<name>"``)."""
    if not isinstance(node, str) or ":" not in node:
        raise bad("people.node", "expected a node id such as '1:Product Viewed'")
    pos_text, name = node.split(":", 1)
    try:
        pos = int(pos_text)
    except ValueError:
        raise bad("people.node", "expected a node id such as '1:Product Viewed'") from None
    source = engine.source(q.from_us, q.to_us)
    p = Params()
    steps = _steps_sql(q, source.sql, p, ids=True)
    sql = (f"{steps} SELECT DISTINCT pid FROM s WHERE pos = {p(pos)} "
           f"AND name = {p(name)} ORDER BY pid")
    with engine.cursor() as cur:
        return [str(r[0]) for r in cur.sql(sql, params=p.values).fetchall()]
