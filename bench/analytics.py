"""Analytics benchmark: funnels, breakdowns and paths over synthetic Parquet events.

Writes N events of P people over D days as Parquet files of 1M rows, compacted by the
projector's own rewrite (its format, sort order and manifest), then times, each best of
``--repeat`` runs (the first run of the first funnel also reads every id once, see
``partitur.analytics.idhash``; it is reported as ``cold``):

* the floor: a plain DuckDB scan counting events by name over the same files;
* a 5-step ordered funnel; the same with a breakdown (first touch); strict order;
* paths: the next 3 events after a start event (Sankey links);
* a daily KPI series with anomaly detection.

Usage::

    .venv/bin/python bench/analytics.py --events 10000000 --people 1000000 --days 60

Figures go to docs/benchmarks.md (section "Analytics").
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from partitur.analytics import rewrite
from partitur.analytics.columns import SCHEMA
from partitur.analytics.duck import connect
from partitur.analytics.engine import QueryEngine
from partitur.analytics.store import FileInfo, Manifest, ParquetStore
from partitur.settings import load_settings

NAMES = ["Page Viewed", "Product Viewed", "Signed Up", "Product Added", "Checkout Started",
         "Order Completed", "Email Opened", "Search", "Cart Viewed", "Email Clicked"]
WEIGHTS = np.array([30, 20, 6, 10, 6, 4, 10, 6, 5, 3], dtype=float)
SOURCES = ["google", "newsletter", "facebook", "direct", None]
FUNNEL = ["Product Viewed", "Signed Up", "Product Added", "Checkout Started",
          "Order Completed"]
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in µs


def generate(root: Path, events: int, people: int, days: int, seed: int = 1) -> None:
    """Events sorted by time, written as ~1M-row files listed in a manifest."""
    rng = np.random.default_rng(seed)
    person = np.sort(rng.integers(0, people, events))
    counts = np.bincount(person, minlength=people)
    start = T0 + rng.integers(0, days * 86_400_000_000, people)
    gaps = rng.exponential(3_600_000_000.0, events).astype(np.int64)  # ~1 h between events
    firsts = np.r_[0, np.cumsum(counts)[:-1]]
    cum = np.cumsum(gaps)
    base = np.repeat(cum[firsts] - gaps[firsts], counts)
    t = np.repeat(start, counts) + (cum - base)
    name = rng.choice(len(NAMES), events, p=WEIGHTS / WEIGHTS.sum())
    source = rng.integers(0, len(SOURCES), people)
    order = np.argsort(t, kind="stable")
    ids = np.array([f"p_{i:020x}" for i in range(people)], dtype=object)
    store = ParquetStore(root)
    files: list[FileInfo] = []
    chunk = 1_000_000
    for n, lo in enumerate(range(0, events, chunk)):
        rows = order[lo:lo + chunk]
        size = len(rows)
        src = np.array(SOURCES, dtype=object)[source[person[rows]]]
        columns: dict[str, Any] = {
            "seq": pa.array(np.arange(lo + 1, lo + size + 1, dtype=np.int64)),
            "ts": pa.array(t[rows], pa.timestamp("us", tz="UTC")),
            "received_at": pa.array(t[rows], pa.timestamp("us", tz="UTC")),
            "profile_id": pa.array(ids[person[rows]], pa.string()),
            "type": pa.array(np.where(name[rows] == 0, "page", "track"), pa.string()),
            "event": pa.array(np.array(NAMES, dtype=object)[name[rows]], pa.string()),
            "campaign_source": pa.array(src, pa.string()),
        }
        arrays = [columns.get(f.name, pa.nulls(size, f.type)) for f in SCHEMA]
        table = pa.Table.from_arrays(arrays, schema=SCHEMA)
        files.append(store.write_events(f"raw-{n:06d}.parquet", table, T0))
    # Each file through the compaction's rewrite, as the projector leaves them.
    duck = connect(threads=2, memory_limit="4GB")
    manifest = Manifest(files=tuple(files))
    compacted = []
    for n, info in enumerate(files):
        done = rewrite.rewrite(duck, store, manifest, [info], f"c-{n:06d}.parquet", drop=None,
                               reassign=None, at_us=T0)
        assert done is not None
        compacted.append(done)
        (store.events_dir / info.name).unlink()
    duck.close()
    store.commit(Manifest(files=tuple(compacted)))


def timed(fn: Any, repeat: int) -> tuple[float, float, Any]:
    """Best and first of ``repeat`` runs, and the answer."""
    best, first, result = float("inf"), 0.0, None
    for n in range(repeat):
        start = time.perf_counter()
        result = fn()
        took = time.perf_counter() - start
        first = took if n == 0 else first
        best = min(best, took)
    return best, first, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=None, help="Keep the files here.")
    parser.add_argument("--only", default="", help="Comma-separated cases (the floor always).")
    parser.add_argument("--warm", action="store_true",
                        help="read the ids first, as the server does in the background at "
                        "start (AnalyticsService.warm), and report how long that took")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="partitur-bench-"))
    data = root / "data"
    if not (data / "analytics" / "manifest.json").exists():
        began = time.perf_counter()
        generate(data / "analytics", args.events, args.people, args.days)
        print(f"generated {args.events:,} events in {time.perf_counter() - began:.1f}s")
    settings = load_settings(data, environ={}, analytics_threads=args.threads,
                             analytics_query_timeout=600)
    from partitur.analytics.service import AnalyticsService

    engine = QueryEngine(settings)
    service = AnalyticsService.__new__(AnalyticsService)
    service._engine = engine  # queries only: no store, no projector
    service._engine_lock = threading.Lock()
    service.services = type("S", (), {"settings": settings, "clock": _Clock()})()
    span = {"from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
    steps = [{"event": e} for e in FUNNEL]
    results: dict[str, float] = {}

    def floor() -> Any:
        source = engine.source()
        with engine.cursor() as cur:
            return cur.sql(f"SELECT event, count(*) FROM {source.sql} GROUP BY event").fetchall()

    cases = {
        "scan_count_by_name": floor,
        "funnel_5_steps": lambda: service.funnel({"steps": steps, **span, "window": "14d"}),
        "funnel_breakdown": lambda: service.funnel({
            "steps": steps, **span, "window": "14d",
            "breakdown": {"property": "context.campaign.source"}}),
        "funnel_strict": lambda: service.funnel({"steps": steps, **span, "order": "strict"}),
    }
    if hasattr(service, "paths"):
        cases["paths_next_3"] = lambda: service.paths({"start": {"event": "Signed Up"},
                                                       "steps": 3, **span, "min_edge": 10})
    if hasattr(service, "kpi"):
        cases["kpi_daily_anomalies"] = lambda: service.kpi({
            "event": "Order Completed", "metric": "unique_people", "interval": "day", **span})
    if args.warm:
        began = time.perf_counter()
        with engine.cursor() as cur:
            engine.distinct_ids(cur, engine.source())
        print(f"warm-up (ids read, as at a server start) {time.perf_counter() - began:.3f}s",
              flush=True)
    only = {c for c in args.only.split(",") if c} | {"scan_count_by_name"}
    load = os.getloadavg()
    for name, fn in cases.items():
        if len(only) > 1 and name not in only:
            continue
        seconds, first, result = timed(fn, args.repeat)
        results[name] = seconds
        extra = f" (first run {first:.3f}s)"
        if name.startswith("funnel"):
            extra += " counts " + str([s["count"] for s in result["steps"]])
        print(f"{name:<22} {seconds:7.3f}s  x{seconds / results['scan_count_by_name']:5.1f} "
              f"floor{extra}", flush=True)
    rows = engine.store.manifest().rows
    print(json.dumps({"events": rows, "cpus": os.cpu_count(), "threads": args.threads,
                      "load_before": [round(x, 2) for x in load],
                      "load_after": [round(x, 2) for x in os.getloadavg()],
                      "seconds": {k: round(v, 3) for k, v in results.items()}}))


class _Clock:
    def now_us(self) -> int:
        return T0 + 90 * 86_400_000_000


if __name__ == "__main__":
    main()
