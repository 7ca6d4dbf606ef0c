"""Profile worker benchmark, in-process: how fast identity and profile processing drains a queue.

    python bench/processing.py                              # SQLite, 50,000 events, 5,000 people
    python bench/processing.py --store postgres --repeat 3
    python bench/processing.py --workload harness --events 200000   # bench/loadgen.py's events
    python bench/processing.py --profile /tmp/worker.prof   # cProfile of the drains

No HTTP while measuring. The events are loaded once through the real ingest path (``/v1/batch``
through the app, worker off) into a template store; every repetition then starts from a copy
of it (a file copy for SQLite, ``CREATE DATABASE ... TEMPLATE`` for PostgreSQL), so runs
compare like with like. The profile worker (with every batch hook the server registers:
segments, journeys, analytics; none of them has definitions here) drains the queue, and the
report gives events/s per run and the time spent in the hooks.

Workloads: ``mix`` (10 % identify with traits and consent, the rest track calls carrying a
consent context, people drawn uniformly) and ``harness`` (the bodies ``bench/ingest.py``
sends: 30 % of the events carry a userId besides the anonymousId, people skewed towards
frequent visitors).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import loadgen
from servers import machine
from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.clock import ManualClock, iso
from partitur.services import Services, build_services
from partitur.settings import load_settings
from partitur.store.db import SqliteDatabase
from partitur.worker import ProfileWorker
from partitur.worker.checkpoint import WORKER_AUTOCHECKPOINT, Checkpointer
from partitur.worker.hooks import BatchContext

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
DAY_S = 86_400


def mix_events(count: int, people: int, start_s: int, seed: int = 11) -> Iterator[bytes]:
    """Request bodies of 500 events: identify (traits, consent) and track (consent context)."""
    rng = random.Random(seed)
    span = 10 * DAY_S
    batch: list[dict[str, Any]] = []
    for i in range(count):
        user = f"user-{rng.randrange(people)}"
        anon = f"anon-{user}"
        when = iso((start_s + span * i // count) * 1_000_000)
        consent = {"categoryPreferences": {"analytics": True,
                                           "marketing_email": rng.random() < 0.7}}
        if rng.random() < 0.1:
            batch.append({
                "type": "identify", "userId": user, "anonymousId": anon, "timestamp": when,
                "traits": {"plan": rng.choice(["free", "pro", "team"]),
                           "email": f"{user}@example.com",
                           "country": rng.choice(["NO", "SE", "DE", "FR", "US"])},
                "context": {"consent": consent},
            })
        else:
            event: dict[str, Any] = {
                "type": "track", "anonymousId": anon, "timestamp": when,
                "event": rng.choice(["Page Viewed", "Product Viewed", "Order Completed"]),
                "properties": {"sku": f"sku-{rng.randrange(100)}", "price": 12.5},
                "context": {"consent": consent, "page": {"path": "/p"}},
            }
            if rng.random() < 0.5:
                event["userId"] = user
            batch.append(event)
        if len(batch) == 500:
            yield json.dumps({"batch": batch}).encode()
            batch = []
    if batch:
        yield json.dumps({"batch": batch}).encode()


def harness_events(count: int, people: int) -> Iterator[bytes]:
    bodies = loadgen.Bodies(7, 100, people, "p")
    for _ in range(-(-count // 100)):
        yield bodies.next()


class TimedHook:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def __call__(self, batch: BatchContext) -> None:
        t0 = time.perf_counter()
        self.inner(batch)
        self.seconds += time.perf_counter() - t0


def open_services(tmp: Path, url: str | None, batch: int, clock: ManualClock) -> Services:
    settings = load_settings(tmp / "data", environ={}, database_url=url,
                             worker_enabled=False, worker_batch=batch)
    return build_services(settings, clock=clock)


def load(services: Services, bodies: Iterator[bytes]) -> int:
    key, _ = services.keys.create_write_key("bench")
    import base64

    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    with TestClient(create_app(services=services, start_workers=False)) as client:
        for body in bodies:
            r = client.post("/v1/batch", content=body,
                            headers={"Authorization": auth, "Content-Type": "application/json"})
            assert r.status_code == 200, r.text
    with services.db.read() as tx:
        return services.events.backlog(tx)


def _pg(base: str, db: str) -> str:
    head, _, tail = base.rpartition("/")
    query = ""
    if "?" in tail:
        tail, query = tail.split("?", 1)
        query = "?" + query
    return f"{head}/{db}{query}"


@contextlib.contextmanager
def template(kind: str, base: str, bodies: Iterator[bytes], batch: int,
             start: ManualClock) -> Iterator[tuple[Path, str | None, int]]:
    """A loaded store to copy from: (directory, PostgreSQL database name or None, queued)."""
    with tempfile.TemporaryDirectory(prefix="partitur-proc-") as tmp:
        root = Path(tmp)
        if kind == "sqlite":
            services = open_services(root / "tpl", None, batch, start)
            try:
                queued = load(services, bodies)
            finally:
                services.close()
            yield root, None, queued
            return
        import psycopg

        name = "bench_tpl_" + uuid.uuid4().hex[:8]
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        try:
            services = open_services(root / "tpl", _pg(base, name), batch, start)
            try:
                queued = load(services, bodies)
            finally:
                services.close()
            yield root, name, queued
        finally:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def copy_of(root: Path, base: str, pg_template: str | None) -> Iterator[tuple[Path, str | None]]:
    run = root / ("run_" + uuid.uuid4().hex[:8])
    if pg_template is None:
        shutil.copytree(root / "tpl", run)
        try:
            yield run, None
        finally:
            shutil.rmtree(run, ignore_errors=True)
        return
    import psycopg

    name = "bench_run_" + uuid.uuid4().hex[:8]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    try:
        yield run, _pg(base, name)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def drain(run: Path, url: str | None, batch: int, clock: ManualClock,
          profiler: cProfile.Profile | None, checkpoints: str) -> dict[str, Any]:
    services = open_services(run, url, batch, clock)
    try:
        timed = [TimedHook(h) for h in services.batch_hooks]
        services.batch_hooks[:] = timed
        worker = ProfileWorker(services)
        checkpointer = None
        if isinstance(services.db, SqliteDatabase) and checkpoints == "thread":  # as serve does
            checkpointer = Checkpointer(services.db)
            checkpointer.start()
            worker.processor.wal_autocheckpoint = WORKER_AUTOCHECKPOINT
        if profiler is not None:
            profiler.enable()
        t0 = time.perf_counter()
        try:
            processed = worker.drain()
        finally:
            elapsed = time.perf_counter() - t0
            if profiler is not None:
                profiler.disable()
            if checkpointer is not None:
                checkpointer.stop()
        with services.db.read() as tx:
            people = tx.one("SELECT COUNT(*) FROM profiles WHERE merged_into IS NULL")
            left = services.events.backlog(tx)
        hooks = sum(h.seconds for h in timed)
        wal = Path(services.db.path + "-wal") if isinstance(services.db, SqliteDatabase) else None
        return {
            "wal_mib": round(wal.stat().st_size / 2**20, 1) if wal and wal.exists() else None,
            "events": processed, "seconds": round(elapsed, 2),
            "events_per_s": round(processed / elapsed), "batches": worker.batches,
            "hooks_s": round(hooks, 2), "people": people[0] if people else None,
            "backlog_after": left,
        }
    finally:
        services.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--database-url", default=PG_URL)
    parser.add_argument("--workload", choices=["mix", "harness"], default="mix")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=None, help="worker_batch (default: setting)")
    parser.add_argument("--repeat", type=int, default=3, help="drains of fresh copies")
    parser.add_argument(
        "--checkpoints", choices=["thread", "inline"], default="thread",
        help="SQLite: WAL checkpoints in their own thread as the server does, or in commits")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats here")
    args = parser.parse_args(argv)
    if not 1 <= args.repeat <= 20:
        parser.error("--repeat must be 1..20")
    clock = ManualClock()
    start_s = clock.now_us() // 1_000_000
    clock.advance(timedelta(days=10))
    bodies = (mix_events(args.events, args.people, start_s) if args.workload == "mix"
              else harness_events(args.events, args.people))
    batch = args.batch or load_settings(Path("."), environ={}).worker_batch
    profiler = cProfile.Profile() if args.profile else None
    runs = []
    t0 = time.perf_counter()
    with template(args.store, args.database_url, bodies, batch, clock) as (root, tpl, queued):
        load_s = time.perf_counter() - t0
        for _ in range(args.repeat):
            with copy_of(root, args.database_url, tpl) as (run, url):
                runs.append(drain(run, url, batch, clock, profiler, args.checkpoints))
    if profiler is not None:
        profiler.dump_stats(str(args.profile))
    rates = sorted(r["events_per_s"] for r in runs)
    print(json.dumps({
        "store": args.store, "workload": args.workload, "events": args.events,
        "people": args.people, "worker_batch": batch, "queued": queued,
        "load_s": round(load_s, 1), "machine": machine(), "runs": runs,
        "events_per_s_median": rates[len(rates) // 2], "events_per_s_best": rates[-1],
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
