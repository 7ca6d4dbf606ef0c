"""Segment benchmark: what real-time membership costs the profile worker, per event.

    python bench/segments.py                                  # SQLite, 20,000 events, 2,000 people
    python bench/segments.py --store postgres                 # the same on PostgreSQL
    python bench/segments.py --events 50000 --people 5000 --segments 20
    python bench/segments.py --scenario history --history 1000   # all-time over long histories

In-process, no HTTP: the same events are loaded into two fresh stores (through the real
ingest path, with the worker off), then the profile worker drains each: once with no
segments defined, once with ``--segments`` realistic segments (traits, consent, events in
windows with property filters, segments of segments). The difference, and the time spent
inside the segment hook, is the cost per event. Then the two other paths: a backfill of a new
segment over everyone, and due changes fired by moving the manual clock 31 days.

The history scenario (``--scenario history``) gives ``--history-people`` people ``--history``
past orders each, then processes rounds of new orders with one segment "at least 3 orders":
once over all time (read from the stored per-person totals) and once with a window as long as
the history (every past order read on each evaluation, as all time used to be).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from servers import machine, pg_schema
from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.clock import ManualClock, iso
from partitur.segments import fire_due, run_backfills
from partitur.services import Services, build_services
from partitur.settings import load_settings
from partitur.worker import ProfileWorker
from partitur.worker.hooks import BatchContext

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
DAY_S = 86_400

SEGMENTS: list[dict[str, Any]] = [
    {"key": "pro", "condition": {"trait": "plan", "equals": "pro"}},
    {"key": "nordics", "condition": {"trait": "country", "in": ["NO", "SE", "DK", "FI"]}},
    {"key": "reachable", "condition": {"all": [{"trait": "email", "exists": True},
                                               {"consent": "marketing_email", "is": True}]}},
    {"key": "new-signups", "condition": {"trait": "signed_up_at", "within_last": "14d"}},
    {"key": "buyers-30d", "condition": {"event": "Order Completed", "within": "30d"}},
    {"key": "frequent", "condition": {"event": "Order Completed", "at_least": 3,
                                      "within": "30d"}},
    {"key": "big-spenders", "condition": {"event": "Order Completed",
                                          "where": {"total": {"gte": 200}}}},
    {"key": "lapsed", "condition": {"all": [
        {"event": "Order Completed"},
        {"event": "Order Completed", "performed": False, "within": "30d"}]}},
    {"key": "shoe-browsers", "condition": {"event": "Product Viewed", "at_least": 2,
                                           "within": "7d", "where": {"category": "shoes"}}},
    {"key": "cart-abandoners", "condition": {"all": [
        {"event": "Product Added", "within": "1d"},
        {"event": "Order Completed", "performed": False, "within": "1d"}]}},
    {"key": "pro-lapsed", "condition": {"all": [{"segment": "pro"}, {"segment": "lapsed"}]}},
    {"key": "engaged", "condition": {"event": "Page Viewed", "at_least": 5, "within": "7d"}},
    {"key": "eur-buyers", "condition": {"event": "Order Completed",
                                        "where": {"currency": "EUR"}}},
    {"key": "non-pro-nordics", "condition": {"all": [{"segment": "nordics"},
                                                     {"not": {"segment": "pro"}}]}},
    {"key": "silent", "condition": {"event": "Page Viewed", "performed": False,
                                    "within": "14d"}},
    {"key": "teams", "condition": {"trait": "company.size", "gte": 50}},
    {"key": "gmail", "condition": {"trait": "email", "contains": "@gmail."}},
    {"key": "searchers", "condition": {"event": "Products Searched", "within": "30d"}},
    {"key": "reachable-lapsed", "condition": {"all": [{"segment": "reachable"},
                                                      {"segment": "lapsed"}]}},
    {"key": "sms-ok", "condition": {"consent": "sms", "is": True}},
]


def make_events(count: int, people: int, start_s: int, seed: int = 7) -> list[dict[str, Any]]:
    """Identify calls (traits, consent) and track calls over 20 days, in time order."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    span = 20 * DAY_S
    for i in range(count):
        user = f"user-{rng.randrange(people)}"
        when = iso((start_s + span * i // count) * 1_000_000)
        roll = rng.random()
        if roll < 0.1:
            out.append({
                "type": "identify", "userId": user, "timestamp": when,
                "traits": {
                    "plan": rng.choice(["free", "free", "pro", "team"]),
                    "country": rng.choice(["NO", "SE", "DE", "FR", "US"]),
                    "email": f"{user}@{rng.choice(['gmail.com', 'example.com'])}",
                    "signed_up_at": iso((start_s - rng.randrange(40) * DAY_S) * 1_000_000),
                    "company": {"size": rng.randrange(1, 500)},
                },
                "context": {"consent": {"categoryPreferences": {
                    "marketing_email": rng.random() < 0.7, "sms": rng.random() < 0.3}}},
            })
            continue
        name = rng.choices(
            ["Page Viewed", "Product Viewed", "Product Added", "Order Completed",
             "Products Searched"], weights=[50, 25, 10, 5, 10])[0]
        props: dict[str, Any] = {"page": "/p"}
        if name == "Product Viewed" or name == "Product Added":
            props = {"sku": f"sku-{rng.randrange(100)}",
                     "category": rng.choice(["shoes", "shirts", "hats"])}
        elif name == "Order Completed":
            props = {"total": rng.randrange(5, 400), "currency": rng.choice(["EUR", "NOK"])}
        elif name == "Products Searched":
            props = {"query": "boots"}
        out.append({"type": "track", "userId": user, "event": name, "timestamp": when,
                    "properties": props})
    return out


class TimedHook:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def __call__(self, batch: BatchContext) -> None:
        t0 = time.perf_counter()
        self.inner(batch)
        self.seconds += time.perf_counter() - t0


@contextlib.contextmanager
def fresh_store(kind: str, base: str) -> Iterator[tuple[Path, str | None]]:
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "postgres":
            with pg_schema(base) as url:
                yield Path(tmp), url
        else:
            yield Path(tmp), None


def load(services: Services, events: list[dict[str, Any]]) -> None:
    key, _ = services.keys.create_write_key("bench")
    with TestClient(create_app(services=services, start_workers=False)) as client:
        for start in range(0, len(events), 500):
            r = client.post("/v1/batch", json={"writeKey": key,
                                               "batch": events[start : start + 500]})
            assert r.status_code == 200, r.text


def run(kind: str, base: str, events: list[dict[str, Any]], segments: int,
        batch: int) -> dict[str, Any]:
    with fresh_store(kind, base) as (tmp, url):
        clock = ManualClock()
        settings = load_settings(tmp / "data", environ={}, database_url=url,
                                 worker_enabled=False, worker_batch=batch)
        services = build_services(settings, clock=clock)
        try:
            service = services.extra["segments"]
            for doc in SEGMENTS[:segments]:
                service.put(doc)
            run_backfills(services)  # nobody yet: marks the backfills done
            hook = TimedHook(service.hook)
            services.batch_hooks[services.batch_hooks.index(service.hook)] = hook
            clock.advance(timedelta(days=20))  # the events span the last 20 days
            load(services, events)
            t0 = time.perf_counter()
            processed = ProfileWorker(services).drain()
            elapsed = time.perf_counter() - t0
            # ``processed`` also counts the Segment Entered/Exited events the changes wrote
            # (processed in the same drain); the rate is of the events sent.
            sent = len(events)
            out: dict[str, Any] = {
                "segments": segments, "events": sent, "seconds": round(elapsed, 2),
                "segment_events": processed - sent,
                "events_per_s": round(sent / elapsed),
                "hook_seconds": round(hook.seconds, 2),
                "hook_us_per_event": round(hook.seconds / processed * 1e6, 1),
                "evaluations": service.hook.evaluated,
            }
            if segments:
                with services.db.read() as tx:
                    out["memberships"] = tx.one("SELECT COUNT(*) FROM segment_members")[0]
                    out["due_rows"] = tx.one("SELECT COUNT(*) FROM segment_due")[0]
                    people = tx.one("SELECT COUNT(*) FROM profiles")[0]
                service.put({"key": "bench-backfill", "condition": {"all": [
                    {"trait": "plan", "in": ["pro", "team"]},
                    {"event": "Order Completed", "within": "30d",
                     "where": {"total": {"gte": 50}}}]}})
                t0 = time.perf_counter()
                run_backfills(services)
                backfill_s = time.perf_counter() - t0
                out["backfill_people_per_s"] = round(people / backfill_s)
                clock.advance(timedelta(days=31))
                t0 = time.perf_counter()
                fired = fire_due(services, clock.now_us())
                due_s = time.perf_counter() - t0
                out["due_fired"] = fired
                out["due_per_s"] = round(fired / due_s) if due_s else None
            return out
        finally:
            services.close()


HISTORY_SEGMENTS = {
    # The same test two ways: all time reads the stored total; a window as long as the
    # history reads every event in it, which is what all time cost before the totals.
    "all_time": {"key": "frequent", "condition": {"event": "Order Completed", "at_least": 3}},
    "long_window": {"key": "frequent", "condition": {"event": "Order Completed",
                                                     "at_least": 3, "within": "3650d"}},
}


def run_history(kind: str, base: str, people: int, history: int, rounds: int,
                per_round: int, batch: int, variant: str) -> dict[str, Any]:
    """People with ``history`` past orders each; then ``rounds`` rounds of ``per_round`` new
    orders each, processed by the worker with one segment over their orders: the hook's time
    and the stored events it read, per new event, round by round."""
    with fresh_store(kind, base) as (tmp, url):
        clock = ManualClock()
        settings = load_settings(tmp / "data", environ={}, database_url=url,
                                 worker_enabled=False, worker_batch=batch)
        services = build_services(settings, clock=clock)
        try:
            now_s = clock.now_us() // 1_000_000
            past = [{"type": "track", "userId": f"user-{p}", "event": "Order Completed",
                     "timestamp": iso((now_s - 300 * DAY_S + i * 60) * 1_000_000)}
                    for i in range(history) for p in range(people)]
            load(services, past)
            ProfileWorker(services).drain()
            if kind == "postgres":  # as autovacuum would after a load this size
                with services.db.transaction() as tx:
                    tx.execute("ANALYZE")
            service = services.extra["segments"]
            service.put(HISTORY_SEGMENTS[variant])
            run_backfills(services)
            ProfileWorker(services).drain()  # the backfill's Segment Entered events
            hook = TimedHook(service.hook)
            services.batch_hooks[services.batch_hooks.index(service.hook)] = hook
            out: dict[str, Any] = {"people": people, "history_per_person": history,
                                   "rounds": []}
            for _ in range(rounds):
                clock.advance(timedelta(seconds=1))
                load(services, [{"type": "track", "userId": f"user-{p}",
                                 "event": "Order Completed"}
                                for _ in range(per_round) for p in range(people)])
                hook.seconds = 0.0
                rows_before = service.hook.event_rows
                processed = ProfileWorker(services).drain()
                out["rounds"].append({
                    "events": processed,
                    "hook_us_per_event": round(hook.seconds / processed * 1e6, 1),
                    "rows_read_per_event": round(
                        (service.hook.event_rows - rows_before) / processed, 1),
                })
            with services.db.read() as tx:
                out["members"] = tx.one("SELECT COUNT(*) FROM segment_members")[0]
            return out
        finally:
            services.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--database-url", default=PG_URL)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--people", type=int, default=2_000)
    parser.add_argument("--segments", type=int, default=len(SEGMENTS))
    parser.add_argument("--batch", type=int, default=2_000, help="worker_batch")
    parser.add_argument("--scenario", choices=["mix", "history", "all"], default="all",
                        help="mix: realistic events and segments; history: an all-time "
                             "condition over long histories")
    parser.add_argument("--history-people", type=int, default=100)
    parser.add_argument("--history", type=int, default=1_000,
                        help="past orders per person in the history scenario")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-round", type=int, default=1,
                        help="new orders per person in each round of the history scenario")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"store": args.store, "machine": machine()}
    if args.scenario in ("mix", "all"):
        start = ManualClock().now_us() // 1_000_000
        events = make_events(args.events, args.people, start)
        base = run(args.store, args.database_url, events, 0, args.batch)
        with_segments = run(args.store, args.database_url, events, args.segments, args.batch)
        extra = (1 / with_segments["events_per_s"] - 1 / base["events_per_s"]) * 1e6
        report.update({"people": args.people, "without_segments": base,
                       "with_segments": with_segments, "extra_us_per_event": round(extra, 1)})
    if args.scenario in ("history", "all"):
        report["history"] = {
            variant: run_history(args.store, args.database_url, args.history_people,
                                 args.history, args.rounds, args.per_round, args.batch,
                                 variant)
            for variant in HISTORY_SEGMENTS
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
