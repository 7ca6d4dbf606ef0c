"""Retention: people grouped by when they first did something (cohorts of a day or a week,
UTC), and how many of each cohort came back to do something in each later period."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from partitur.analytics.engine import QueryEngine
from partitur.analytics.spec import Match, bad, parse_match, time_range
from partitur.analytics.sql import Params, match_sql, ts_literal
from partitur.clock import iso

INTERVALS = {"day": 86_400_000_000, "week": 7 * 86_400_000_000}


@dataclass(frozen=True)
class RetentionQuery:
    start: Match
    returning: Match
    interval: str
    periods: int
    from_us: int
    to_us: int
    now_us: int

    @property
    def step_us(self) -> int:
        return INTERVALS[self.interval]


def parse_retention(doc: Any, now_us: int) -> RetentionQuery:
    if not isinstance(doc, dict):
        raise bad("$", "expected a JSON object with 'start_event'")
    unknown = set(doc) - {"start_event", "return_event", "interval", "periods", "from", "to",
                          "format", "people"}
    if unknown:
        raise bad(sorted(unknown)[0], "unknown key")
    if "start_event" not in doc:
        raise bad("start_event", "required: the event whose first occurrence makes the cohort")
    start = parse_match(doc["start_event"], "start_event")
    returning = parse_match(doc.get("return_event", doc["start_event"]), "return_event")
    interval = doc.get("interval", "day")
    if interval not in INTERVALS:
        raise bad("interval", "expected day or week")
    periods = doc.get("periods", 7 if interval == "day" else 8)
    if isinstance(periods, bool) or not isinstance(periods, int) or not 1 <= periods <= 90:
        raise bad("periods", "expected an integer from 1 to 90")
    lo, hi = time_range(doc, now_us)
    return RetentionQuery(start, returning, interval, periods, lo, hi, now_us)


def _bucket(q: RetentionQuery, column: str) -> str:
    return f"epoch_us(date_trunc('{q.interval}', {column}))"


def _sql(q: RetentionQuery, source: str, p: Params) -> str:
    """Rows (pid, cohort µs, period) for every return, and (pid, cohort, 0) for everyone."""
    start = match_sql(q.start, p)
    ret = match_sql(q.returning, p)
    last = q.to_us + q.periods * q.step_us
    return (
        f"WITH firsts AS (SELECT profile_id AS pid, min(ts) AS first FROM {source} "
        f"WHERE ts < {ts_literal(q.to_us)} AND {start} GROUP BY pid), "
        f"cohorts AS (SELECT pid, {_bucket(q, 'first')} AS cohort FROM firsts "
        f"WHERE first >= {ts_literal(q.from_us)}), "
        f"returns AS (SELECT DISTINCT profile_id AS pid, {_bucket(q, 'ts')} AS b FROM {source} "
        f"WHERE ts >= {ts_literal(q.from_us)} AND ts < {ts_literal(min(last, q.now_us))} "
        f"AND {ret}) "
        "SELECT pid, cohort, 0 AS period FROM cohorts UNION ALL "
        f"SELECT c.pid, c.cohort, (r.b - c.cohort) // {q.step_us} AS period FROM cohorts c "
        f"JOIN returns r ON c.pid = r.pid WHERE r.b > c.cohort "
        f"AND (r.b - c.cohort) // {q.step_us} <= {q.periods}"
    )


def retention(engine: QueryEngine, q: RetentionQuery) -> dict[str, Any]:
    source = engine.source(None, None)
    p = Params()
    sql = (f"WITH r AS ({_sql(q, source.sql, p)}) SELECT cohort, period, count(DISTINCT pid) "
           "FROM r GROUP BY ALL ORDER BY 1, 2")
    with engine.cursor() as cur:
        rows = cur.sql(sql, params=p.values).fetchall()
    table: dict[int, dict[int, int]] = {}
    for cohort, period, count in rows:
        table.setdefault(int(cohort), {})[int(period)] = int(count)
    cohorts = []
    for cohort in sorted(table):
        size = table[cohort].get(0, 0)
        counts: list[int | None] = []
        rates: list[float | None] = []
        for period in range(q.periods + 1):
            if cohort + period * q.step_us > q.now_us:  # that period has not begun
                counts.append(None)
                rates.append(None)
                continue
            n = table[cohort].get(period, 0)
            counts.append(n)
            rates.append(round(n / size, 6) if size else None)
        cohorts.append({"cohort": iso(cohort), "size": size, "counts": counts, "rates": rates})
    return {
        "query": {"start_event": q.start.label, "return_event": q.returning.label,
                  "interval": q.interval, "periods": q.periods,
                  "from": iso(q.from_us), "to": iso(q.to_us)},
        "cohorts": cohorts,
        "average_rates": _average(cohorts, q.periods),
        "files_scanned": source.files,
    }


def _average(cohorts: list[dict[str, Any]], periods: int) -> list[float | None]:
    """Per period, returns over cohort sizes, of the cohorts that reached that period."""
    out: list[float | None] = []
    for period in range(periods + 1):
        seen = [(c["counts"][period], c["size"]) for c in cohorts
                if c["counts"][period] is not None and c["size"]]
        total = sum(size for _, size in seen)
        out.append(round(sum(n for n, _ in seen) / total, 6) if total else None)
    return out


def cohort_people(engine: QueryEngine, q: RetentionQuery, spec: Any) -> list[str]:
    """Profile ids of a cohort (``{"cohort": "2026-01-05", "period": 2}``: those who came
    back in period 2; period 0 or absent: the whole cohort)."""
    if not isinstance(spec, dict) or "cohort" not in spec:
        raise bad("people.cohort", "expected the cohort's start, e.g. '2026-01-05'")
    from partitur.analytics.spec import time_us

    cohort = time_us(spec["cohort"], "people.cohort")
    period = spec.get("period", 0)
    if isinstance(period, bool) or not isinstance(period, int) or not 0 <= period <= q.periods:
        raise bad("people.period", f"expected an integer from 0 to {q.periods}")
    source = engine.source(None, None)
    p = Params()
    sql = (f"WITH r AS ({_sql(q, source.sql, p)}) SELECT DISTINCT pid FROM r "
           f"WHERE cohort = {p(cohort)} AND period = {p(period)} ORDER BY pid")
    with engine.cursor() as cur:
        return [str(r[0]) for r in cur.sql(sql, params=p.values).fetchall()]
