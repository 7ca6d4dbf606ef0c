"""Any analytics result as a flat table, written as CSV or Parquet.

Each kind of result has one table shape (documented in docs/analytics.md); nested parts
(breakdown values, Sankey links, cohorts, points) become rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from partitur.analytics.spec import bad

FORMATS = ("json", "csv", "parquet")
Table = tuple[list[str], list[list[Any]]]


def _funnel(result: dict[str, Any]) -> Table:
    columns = ["breakdown_value", "index", "name", "count", "conversion_rate",
               "conversion_from_previous", "avg_time_to_convert_s", "median_time_to_convert_s",
               "dropped"]
    groups = [(None, result["steps"])]
    if "breakdown" in result:
        groups = [(b["value"], b["steps"]) for b in result["breakdown"]]
    rows = [[value, s["index"], s["name"], s["count"], s["conversion_rate"],
             s["conversion_from_previous"], s["avg_time_to_convert_s"],
             s["median_time_to_convert_s"], s.get("dropped", {}).get("count")]
            for value, steps in groups for s in steps]
    return columns, rows


def _people(result: dict[str, Any]) -> Table:
    return ["profile_id", "events"], [[p["profile_id"], p["events"]]
                                      for p in result["people"]]


def _paths(result: dict[str, Any]) -> Table:
    return (["source", "target", "value"],
            [[link["source"], link["target"], link["value"]] for link in result["links"]])


def _retention(result: dict[str, Any]) -> Table:
    rows = [[c["cohort"], c["size"], period, count, rate]
            for c in result["cohorts"]
            for period, (count, rate) in enumerate(zip(c["counts"], c["rates"], strict=True))]
    return ["cohort", "size", "period", "count", "rate"], rows


def _series(result: dict[str, Any]) -> Table:
    rows = [[s["value"], p["t"], p["value"], p.get("expected"), p.get("lower"), p.get("upper"),
             p.get("anomaly", False)]
            for s in result["series"] for p in s["points"]]
    return ["breakdown_value", "t", "value", "expected", "lower", "upper", "anomaly"], rows


def _histogram(result: dict[str, Any]) -> Table:
    return (["from_s", "to_s", "count"],
            [[b["from_s"], b["to_s"], b["count"]] for b in result["bins"]])


def _journey(result: dict[str, Any]) -> Table:
    columns = ["step", "type", "reached", "moved_on", "waiting", "timed_out", "exited",
               "goal", "median_time_s"]
    return columns, [[s.get(c) if c != "step" else s["id"] for c in columns]
                     for s in result["steps"]]


def _experiment(result: dict[str, Any]) -> Table:
    columns = ["split", "arm", "entered", "converted", "conversion_rate", "lift_abs",
               "lift_abs_low", "lift_abs_high", "lift_rel", "lift_rel_low", "lift_rel_high",
               "p_value"]
    rows = []
    for split in result["splits"]:
        for arm in split["arms"]:
            lift = arm.get("vs_control") or {}
            rows.append([split["step"], arm["name"], arm["entered"], arm["converted"],
                         arm["conversion_rate"], lift.get("absolute"),
                         (lift.get("absolute_ci") or [None, None])[0],
                         (lift.get("absolute_ci") or [None, None])[1], lift.get("relative"),
                         (lift.get("relative_ci") or [None, None])[0],
                         (lift.get("relative_ci") or [None, None])[1], lift.get("p_value")])
    return columns, rows


def _saved(result: dict[str, Any]) -> Table:
    return (["segment", "people", "added", "unchanged"],
            [[result["segment"], result["people"], result["added"], result["unchanged"]]])


SHAPES: dict[str, Callable[[dict[str, Any]], Table]] = {
    "saved": _saved,
    "funnel": _funnel,
    "people": _people,
    "paths": _paths,
    "retention": _retention,
    "kpi": _series,
    "time_to_convert": _histogram,
    "journey": _journey,
    "experiment": _experiment,
}


def check_format(value: Any) -> str:
    if value is None:
        return "json"
    if value not in FORMATS:
        raise bad("format", f"expected one of {', '.join(FORMATS)}")
    return str(value)


def table(kind: str, result: dict[str, Any]) -> Table:
    return SHAPES[kind](result)


def to_csv(kind: str, result: dict[str, Any]) -> bytes:
    columns, rows = table(kind, result)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode()


def to_parquet(kind: str, result: dict[str, Any]) -> bytes:
    columns, rows = table(kind, result)
    arrays = [pa.array([r[i] for r in rows]) if rows else pa.array([], pa.string())
              for i in range(len(columns))]
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, names=columns), sink)
    return sink.getvalue()


def render(kind: str, result: dict[str, Any], fmt: str) -> tuple[bytes, str]:
    """``(body, media type)`` of ``result`` in ``fmt`` (csv or parquet)."""
    if fmt == "csv":
        return to_csv(kind, result), "text/csv; charset=utf-8"
    return to_parquet(kind, result), "application/vnd.apache.parquet"
