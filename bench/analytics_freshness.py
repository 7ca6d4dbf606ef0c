"""Analytics freshness: how long after an event is acknowledged it can be queried.

Runs the real app in-process with its background threads (ingestion group commit, profile
worker, analytics projector) on the system clock, sends one event at a time over HTTP and
polls DuckDB over the Parquet files until the event is counted. Optionally keeps a background
load of other events flowing while it measures.

Usage::

    .venv/bin/python bench/analytics_freshness.py --samples 30 --load 500
    PARTITUR_DATABASE_URL=postgresql://... .venv/bin/python bench/analytics_freshness.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.services import build_services
from partitur.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--load", type=int, default=0, help="Background events per second.")
    parser.add_argument("--flush", type=float, default=1.0, help="analytics_flush_seconds")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="partitur-fresh-"))
    settings = load_settings(root / "data", database_url=os.environ.get("PARTITUR_DATABASE_URL"),
                             analytics_flush_seconds=args.flush, sqlite_synchronous="NORMAL")
    services = build_services(settings)
    key, _ = services.keys.create_write_key("bench")
    stop = threading.Event()
    lags: list[float] = []
    with TestClient(create_app(services=services)) as client:
        loader = threading.Thread(target=_load, args=(client, key, args.load, stop), daemon=True)
        if args.load:
            loader.start()
        engine = services.extra["analytics"].engine
        for _ in range(args.samples):
            name = f"probe-{uuid.uuid4().hex[:8]}"
            r = client.post("/v1/track", json={"writeKey": key, "userId": "probe",
                                               "event": name})
            assert r.status_code == 200, r.text
            acked = time.perf_counter()
            deadline = acked + 60
            while time.perf_counter() < deadline:
                source = engine.source()
                with engine.cursor() as cur:
                    found = cur.sql(f"SELECT count(*) FROM {source.sql} WHERE event = ?",
                                    params=[name]).fetchall()[0][0]
                if found:
                    lags.append(time.perf_counter() - acked)
                    break
                time.sleep(0.02)
            time.sleep(0.2)
        stop.set()
    services.close()
    lags.sort()
    summary: dict[str, Any] = {
        "store": services.db.dialect, "samples": len(lags), "load_events_per_s": args.load,
        "flush_seconds": args.flush,
        "p50_s": round(statistics.median(lags), 3),
        "p95_s": round(lags[int(len(lags) * 0.95) - 1], 3),
        "max_s": round(lags[-1], 3),
    }
    print(json.dumps(summary))


def _load(client: TestClient, key: str, rate: int, stop: threading.Event) -> None:
    """``rate`` events a second in batches of 100."""
    batch = max(1, min(100, rate))
    every = batch / rate if rate else 1.0
    n = 0
    while not stop.is_set():
        events = [{"type": "track", "userId": f"load-{(n + i) % 5000}", "event": "Page Viewed"}
                  for i in range(batch)]
        n += batch
        client.post("/v1/batch", json={"writeKey": key, "batch": events})
        stop.wait(every)


if __name__ == "__main__":
    main()
