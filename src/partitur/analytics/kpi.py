"""KPI time series — count, unique people, sum or average of a property, per hour or day,
optionally broken down — with anomalies flagged against a seasonal baseline
(:mod:`.anomaly`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from partitur.analytics import anomaly
from partitur.analytics.engine import QueryEngine
from partitur.analytics.spec import (
    ACTION_TYPES,
    Match,
    bad,
    check_path,
    parse_match,
    time_range,
    time_us,
)
from partitur.analytics.sql import Params, match_sql, path_sql, time_sql, ts_literal
from partitur.clock import from_us, iso

METRICS = ("count", "unique_people", "sum", "avg")
INTERVAL_US = {"hour": 3_600_000_000, "day": 86_400_000_000}
MAX_BUCKETS = 5000


@dataclass(frozen=True)
class KpiQuery:
    match: Match | None
    metric: str
    prop: str | None
    interval: str
    from_us: int  # aligned to the interval
    to_us: int
    breakdown: str | None
    breakdown_limit: int
    anomalies: bool
    sensitivity: float
    now_us: int

    @property
    def step_us(self) -> int:
        return INTERVAL_US[self.interval]

    @property
    def history_us(self) -> int:
        season, back = anomaly.SEASONS[self.interval]
        return season * back * self.step_us if self.anomalies else 0

    @property
    def label(self) -> str:
        what = self.match.label if self.match else "events"
        measure = self.metric.replace("_", " ")
        if self.prop:
            measure += f" of {self.prop}"
        return f"{what} ({measure})"


KEYS = {"event", "metric", "property", "interval", "from", "to", "breakdown",
        "breakdown_limit", "anomalies", "sensitivity", "format", "people"}


def parse_kpi(doc: Any, now_us: int) -> KpiQuery:
    if not isinstance(doc, dict):
        raise bad("$", "expected a JSON object")
    unknown = set(doc) - KEYS
    if unknown:
        raise bad(sorted(unknown)[0], "unknown key")
    match = parse_match(doc["event"], "event") if doc.get("event") is not None else None
    metric = doc.get("metric", "count")
    if metric not in METRICS:
        raise bad("metric", f"expected one of {', '.join(METRICS)}")
    prop = doc.get("property")
    if metric in ("sum", "avg"):
        prop = check_path(prop, "property")
    elif prop is not None:
        raise bad("property", f"only 'sum' and 'avg' use a property, not '{metric}'")
    interval = doc.get("interval", "day")
    if interval not in INTERVAL_US:
        raise bad("interval", "expected hour or day")
    step = INTERVAL_US[interval]
    lo, hi = time_range(doc, now_us, default_days=14 if interval == "hour" else 60)
    lo -= lo % step
    if (hi - lo) // step > MAX_BUCKETS:
        raise bad("from", f"at most {MAX_BUCKETS} {interval}s in one series")
    breakdown = check_path(doc["breakdown"], "breakdown") if doc.get("breakdown") else None
    limit = doc.get("breakdown_limit", 10)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise bad("breakdown_limit", "expected an integer from 1 to 100")
    flag = doc.get("anomalies", True)
    if not isinstance(flag, bool):
        raise bad("anomalies", "expected true or false")
    z = doc.get("sensitivity", 3.0)
    if isinstance(z, bool) or not isinstance(z, int | float) or not 0.5 <= z <= 10:
        raise bad("sensitivity", "expected a number from 0.5 to 10 (standard deviations)")
    return KpiQuery(match, metric, prop, interval, lo, hi, breakdown, limit, flag, float(z),
                    now_us)


def _where(q: KpiQuery, p: Params, lo: int) -> str:
    parts = [time_sql(lo, q.to_us)]
    if q.match is not None:
        parts.append(match_sql(q.match, p))
    else:
        parts.append("type IN (" + ", ".join(p(t) for t in ACTION_TYPES) + ")")
    return " AND ".join(parts)


def kpi(engine: QueryEngine, q: KpiQuery) -> dict[str, Any]:
    lo = q.from_us - q.history_us
    source = engine.source(lo, q.to_us)
    p = Params()
    bucket = f"epoch_us(date_trunc('{q.interval}', ts))"
    value = path_sql(q.breakdown, p) if q.breakdown else "NULL"
    if q.metric == "count":
        agg = "count(*)"
    elif q.metric == "unique_people":
        agg = "count(DISTINCT profile_id)"
    else:
        assert q.prop is not None
        prop = path_sql(q.prop, p)
        agg = f"{'sum' if q.metric == 'sum' else 'avg'}(TRY_CAST({prop} AS DOUBLE))"
    sql = (f"SELECT {bucket} AS b, {value} AS v, {agg} FROM {source.sql} "
           f"WHERE {_where(q, p, lo)} GROUP BY ALL")
    with engine.cursor() as cur:
        rows = cur.sql(sql, params=p.values).fetchall()
    buckets = list(range(lo, q.to_us, q.step_us))
    index = {b: i for i, b in enumerate(buckets)}
    first = index.get(q.from_us, 0)
    data: dict[Any, list[float | None]] = {}
    fill = None if q.metric == "avg" else 0.0
    for b, v, x in rows:
        series = data.setdefault(v, [fill] * len(buckets))
        if int(b) in index:
            series[index[int(b)]] = None if x is None else float(x)
    if not data and q.breakdown is None:
        data[None] = [fill] * len(buckets)
    totals = {v: sum(x or 0.0 for x in s[first:]) for v, s in data.items()}
    chosen = sorted(data, key=lambda v: (-totals[v], str(v)))[: q.breakdown_limit]
    out, flagged = [], []
    for v in chosen:
        points, found = _points(q, buckets, data[v], first, v)
        out.append({"value": v, "total": round(totals[v], 6), "points": points})
        flagged.extend(found)
    return {
        "query": {"event": q.label, "metric": q.metric, "interval": q.interval,
                  "from": iso(q.from_us), "to": iso(q.to_us), "breakdown": q.breakdown},
        "series": out,
        "breakdown_values": len(data),
        "anomalies": flagged,
        "method": _method(q),
        "files_scanned": source.files,
    }


def _method(q: KpiQuery) -> str:
    back = anomaly.SEASONS[q.interval][1]
    slot = f"hour on the previous {back} days" if q.interval == "hour" else (
        f"weekday in the previous {back} weeks")
    return (f"expected: median of the same {slot}; range: expected +/- {q.sensitivity:g} times "
            "max(1.4826 x median absolute deviation, sqrt(expected), 10% of expected)")


def _points(q: KpiQuery, buckets: list[int], values: list[float | None], first: int,
            value: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    numbers = [x if x is not None else 0.0 for x in values]
    found_bands = anomaly.bands(numbers, q.interval, q.sensitivity, first) if q.anomalies else []
    points, flagged = [], []
    for offset, i in enumerate(range(first, len(buckets))):
        t = buckets[i]
        partial = t <= q.now_us < t + q.step_us
        point: dict[str, Any] = {"t": iso(t), "value": values[i]}
        if partial:
            point["partial"] = True
        if found_bands:
            band = found_bands[offset]
            point.update(expected=band.expected, lower=band.lower, upper=band.upper,
                         anomaly=band.anomaly and not partial and values[i] is not None)
            if point["anomaly"]:
                label = q.label + (f" for {value}" if q.breakdown else "")
                when = from_us(t).strftime("%Y-%m-%d %H:%M UTC" if q.interval == "hour"
                                           else "%Y-%m-%d")
                point["message"] = anomaly.sentence(label, numbers[i], band, when)
                flagged.append({"value": value, **point})
        points.append(point)
    return points, flagged


def bucket_people(engine: QueryEngine, q: KpiQuery, spec: Any) -> list[str]:
    """Profile ids behind one point: ``{"t": "...", "breakdown_value": ...}``."""
    if not isinstance(spec, dict) or "t" not in spec:
        raise bad("people.t", "expected the point's time, e.g. '2026-01-05T14:00:00Z'")
    t = time_us(spec["t"], "people.t")
    t -= t % q.step_us
    source = engine.source(t, t + q.step_us)
    p = Params()
    where = _where(q, p, t)
    where += f" AND ts < {ts_literal(t + q.step_us)}"
    if q.breakdown and "breakdown_value" in spec:
        expr = path_sql(q.breakdown, p)
        value = spec["breakdown_value"]
        where += f" AND {expr} IS NULL" if value is None else f" AND {expr} = {p(str(value))}"
    sql = f"SELECT DISTINCT profile_id FROM {source.sql} WHERE {where} ORDER BY 1"
    with engine.cursor() as cur:
        return [str(r[0]) for r in cur.sql(sql, params=p.values).fetchall()]
