"""What analytics costs the pipeline: the batch hook's share of profile processing, and how
fast the projector writes Parquet and compacts it.

Loads N realistic events through the HTTP API (worker off), then drains the profile worker
once with the analytics hook and once without it (two fresh stores, same events), then
flushes the outbox to Parquet and compacts the files.

Usage::

    .venv/bin/python bench/analytics_projector.py --events 50000
    .venv/bin/python bench/analytics_projector.py --events 50000 --database-url postgresql://...
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.services import Services, build_services
from partitur.settings import load_settings
from partitur.worker import ProfileWorker

NAMES = ["Page Viewed", "Product Viewed", "Product Added", "Order Completed", "Search"]


def _events(n: int, people: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        person = rng.randrange(people)
        out.append({
            "type": "track", "event": rng.choice(NAMES), "messageId": f"m-{seed}-{i}",
            "userId": f"user-{person}",
            "properties": {"sku": f"sku-{rng.randrange(500)}", "price": rng.randrange(5, 500)},
            "context": {"campaign": {"source": rng.choice(["google", "mail", "ads"])},
                        "page": {"url": f"https://shop.example/p/{rng.randrange(200)}"}},
        })
    return out


SCHEMAS: list[str] = []


def _store(url: str | None, root: Path) -> Services:
    if url:
        import psycopg

        schema = "bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        SCHEMAS.append(schema)
        sep = "&" if "?" in url else "?"
        url = f"{url}{sep}options=-csearch_path%3D{schema}"
    settings = load_settings(root, environ={}, database_url=url, worker_enabled=False,
                             sqlite_synchronous="NORMAL", worker_batch=2000,
                             analytics_batch=5000)
    return build_services(settings)


def _load(services: Services, events: list[dict[str, Any]]) -> None:
    key, _ = services.keys.create_write_key("bench")
    with TestClient(create_app(services=services)) as client:
        for start in range(0, len(events), 500):
            r = client.post("/v1/batch", json={"writeKey": key,
                                               "batch": events[start:start + 500]})
            assert r.status_code == 200, r.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    events = _events(args.events, args.people, 1)
    results: dict[str, Any] = {"events": args.events}
    for with_hook in (False, True):
        services = _store(args.database_url, Path(tempfile.mkdtemp(prefix="partitur-proj-")))
        results["store"] = services.db.dialect
        _load(services, events)
        analytics = services.extra["analytics"]
        if not with_hook:
            services.batch_hooks.remove(analytics.hook)
        began = time.perf_counter()
        done = ProfileWorker(services).drain()
        took = time.perf_counter() - began
        results["worker_events_per_s_" + ("with_hook" if with_hook else "without_hook")] = (
            round(done / took))
        if with_hook:
            began = time.perf_counter()
            written = analytics.projector.flush()
            results["projector_events_per_s"] = round(written / (time.perf_counter() - began))
            results["files_before_compaction"] = len(analytics.projector.store.manifest().files)
            began = time.perf_counter()
            analytics.projector.cycle(compact=True)
            results["compaction_s"] = round(time.perf_counter() - began, 3)
            results["files_after_compaction"] = len(analytics.projector.store.manifest().files)
        services.close()
    base = results["worker_events_per_s_without_hook"]
    hooked = results["worker_events_per_s_with_hook"]
    results["hook_us_per_event"] = round((1 / hooked - 1 / base) * 1e6, 1)
    print(json.dumps(results))
    if args.database_url and SCHEMAS:
        import psycopg

        with psycopg.connect(args.database_url, autocommit=True) as conn:
            for schema in SCHEMAS:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
