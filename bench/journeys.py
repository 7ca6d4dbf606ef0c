"""Journey benchmarks: step transitions, event → outbox latency, memory with people asleep.

    python bench/journeys.py transitions [--store postgres] [--people 50000]
    python bench/journeys.py transitions --store postgres --workers 2 [--people 40000]
    python bench/journeys.py latency [--rate 1000] [--seconds 10]
    python bench/journeys.py memory [--people 1000000]

``transitions``: people waiting in a chain of one-second waits; the manual clock moves one
second at a time and the timer runner's own code (:func:`partitur.journeys.fire_due`) claims
every due row, advances it and writes the row, its path entry and counters, in transactions of
``journeys_batch`` rows. Compared with a bare loop of ``UPDATE journey_instances ... WHERE id =
?`` in transactions of the same size on the same store: the ratio to what storage allows.

With ``--workers N`` (PostgreSQL) the timers are fired by N separate processes on the same
database, as N ``partitur worker`` processes would: each runs ``fire_due`` for the same due
time, claiming batches with ``FOR UPDATE SKIP LOCKED``; the rate is all rows fired over the
time from the first process starting to the last one finishing (per round).

``latency``: ``partitur serve``'s app under uvicorn in this process (system clock, worker and
timer runner on, dispatcher off), a client posting ``--rate`` events/s (batches of 10), each a
new person entering a journey whose first step is an email; a watcher polls the outbox every
2 ms and stamps each new message, so the figure (request sent → message committed to the
outbox and seen) is an upper bound on "handed to the channel".

``memory``: ``--people`` instances asleep in a 30-day wait, written in batches; the resident
memory of this process (which runs the timer runner's refresh and ticks) and the store's size
are reported at several counts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from servers import machine, pg_schema, proc_cpu

from partitur.clock import ManualClock
from partitur.journeys import fire_due
from partitur.journeys.engine import Enter, Person, advance, new_instance
from partitur.journeys.store import apply
from partitur.services import Services, build_services
from partitur.settings import load_settings

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def make_services(store: str, **overrides: Any) -> Iterator[Services]:
    clock = overrides.pop("clock_obj", None) or ManualClock()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        url = stack.enter_context(pg_schema(PG_URL)) if store == "postgres" else None
        settings = load_settings(Path(tmp) / "data", environ={}, database_url=url,
                                 **overrides)
        services = build_services(settings, clock=clock)
        try:
            yield services
        finally:
            services.close()


def publish(services: Services, doc: dict[str, Any]) -> Any:
    journeys = services.extra["journeys"]
    journeys.put(doc)
    journeys.publish(doc["key"])
    with services.db.read() as tx:
        return journeys.cache.version(tx, doc["key"], 1)


def seed(services: Services, journey: Any, people: int, batch: int = 5000) -> float:
    """``people`` instances entered now (in their first wait); returns seconds taken."""
    journeys = services.extra["journeys"]
    now = services.clock.now_us()
    started = time.perf_counter()
    for start in range(0, people, batch):
        steps = []
        for i in range(start, min(people, start + batch)):
            inst = new_instance(journey, 1, f"p{i:08d}", 1, now)
            steps.append((advance(journey, inst, Enter(Person(inst.profile_id), None, "bench"),
                                  now), None))
        with services.db.transaction() as tx:
            apply(tx, steps, now, journeys.effects())
    return time.perf_counter() - started


def chain(length: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [
        {"id": f"w{i}", "type": "wait", "duration": "1s", "next": f"w{i + 1}"}
        for i in range(length)
    ]
    steps.append({"id": f"w{length}", "type": "exit"})
    return {"key": "chain", "trigger": {"event": "Bench"}, "steps": steps}


def transitions(args: argparse.Namespace) -> dict[str, Any]:
    rounds = 3
    with make_services(args.store, journeys_batch=args.batch) as services:
        assert isinstance(services.clock, ManualClock)
        journey = publish(services, chain(rounds + 1))
        seeded = seed(services, journey, args.people)
        service = services.extra["journeys"]
        rates = []
        cpu_us = []  # this process's CPU per transition (on SQLite the store's work too)
        for _ in range(rounds):
            services.clock.advance(timedelta(seconds=1))
            started, cpu = time.perf_counter(), time.process_time()
            fired = fire_due(service, services.clock.now_us())
            elapsed = time.perf_counter() - started
            cpu_us.append(round((time.process_time() - cpu) / fired * 1e6, 1))
            assert fired == args.people, fired
            rates.append(fired / elapsed)
        with services.db.read() as tx:
            ids = [r[0] for r in tx.execute("SELECT id FROM journey_instances ORDER BY id")]
        started = time.perf_counter()
        now = services.clock.now_us()
        for start in range(0, len(ids), args.batch):
            with services.db.transaction() as tx:
                tx.executemany(
                    "UPDATE journey_instances SET step = ?, wake_at = ?, state_version = "
                    "state_version + 1, updated_at = ? WHERE id = ?",
                    [("bare", now + 1_000_000, now, iid) for iid in ids[start:start + args.batch]],
                )
        bare = len(ids) / (time.perf_counter() - started)
    best = max(rates)
    return {"store": args.store, "people": args.people, "batch": args.batch,
            "seed_rate": round(args.people / seeded), "transitions_per_s": [round(r) for r in
                                                                          rates],
            "cpu_us_per_transition": cpu_us,
            "best": round(best), "bare_update_per_s": round(bare),
            "ratio_to_bare": round(best / bare, 2)}


def transitions_workers(args: argparse.Namespace) -> dict[str, Any]:
    """Seed here, fire in ``args.workers`` processes; they are told the due time on stdin."""
    import subprocess

    rounds = 3
    with make_services("postgres", journeys_batch=args.batch) as services:
        assert isinstance(services.clock, ManualClock)
        journey = publish(services, chain(rounds + 1))
        seed(services, journey, args.people)
        url = services.settings.database_url
        assert url is not None
        procs = [subprocess.Popen(
            [sys.executable, __file__, "timer-worker", "--database-url", url,
             "--batch", str(args.batch)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(args.workers)]
        try:
            for proc in procs:  # each says "ready" once its services are open
                assert _line(proc).strip() == "ready"
            results = []
            for _ in range(rounds):
                services.clock.advance(timedelta(seconds=1))
                now = services.clock.now_us()
                server_cpu = postgres_cpu()
                for proc in procs:
                    assert proc.stdin is not None
                    proc.stdin.write(f"{now}\n")
                    proc.stdin.flush()
                done = [json.loads(_line(proc)) for proc in procs]
                fired = sum(d["fired"] for d in done)
                assert fired == args.people, fired
                span = max(d["end"] for d in done) - min(d["start"] for d in done)
                server_cpu = postgres_cpu() - server_cpu
                results.append({"per_s": round(fired / span),
                                "per_worker": [d["fired"] for d in done],
                                "cpu_s": [round(d["cpu"], 2) for d in done],
                                "client_cpu_us": round(sum(d["cpu"] for d in done) / fired
                                                       * 1e6, 1),
                                "server_cpu_us": round(server_cpu / fired * 1e6, 1)})
        finally:
            for proc in procs:
                if proc.stdin is not None:
                    proc.stdin.close()
            for proc in procs:
                proc.wait(timeout=60)
                if proc.stdout is not None:
                    proc.stdout.close()
    best = max(r["per_s"] for r in results)
    return {"store": "postgres", "workers": args.workers, "people": args.people,
            "batch": args.batch, "rounds": results, "best": best,
            "best_per_worker": round(best / args.workers)}


def postgres_cpu() -> float:
    """CPU seconds used so far by the local PostgreSQL server's processes (0 when the server
    is elsewhere): what a transition costs on the server side, per transition fired."""
    total = 0.0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "postgres":
                total += proc_cpu(int(comm.parent.name))
        except OSError:
            continue
    return total


def _line(proc: Any) -> str:
    line: str = proc.stdout.readline()
    if not line:
        raise RuntimeError("a timer worker stopped")
    return line


def timer_worker(args: argparse.Namespace) -> None:
    """One process firing timers for ``transitions --workers``: a due time per stdin line."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(Path(tmp) / "data", environ={},
                                 database_url=args.database_url, journeys_batch=args.batch)
        services = build_services(settings, clock=ManualClock())
        try:
            service = services.extra["journeys"]
            print("ready", flush=True)
            for line in sys.stdin:
                if not line.strip():
                    break
                started, cpu = time.time(), time.process_time()
                fired = fire_due(service, int(line))
                print(json.dumps({"fired": fired, "start": started, "end": time.time(),
                                  "cpu": time.process_time() - cpu}), flush=True)
        finally:
            services.close()


def latency(args: argparse.Namespace) -> dict[str, Any]:
    """Event → outbox (and → sent) latency against ``partitur serve`` in its own process."""
    import sqlite3

    import httpx
    from servers import Server, free_port

    smtp = None
    env: dict[str, str] = {"PARTITUR_DISPATCHER_ENABLED": "false"}
    if args.until == "sent":  # the dispatcher on, email handed to an SMTP server (aiosmtpd's
        # sink, in a process of its own)
        smtp_port = free_port()
        smtp = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}",
             "-c", "aiosmtpd.handlers.Sink"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        env = {"PARTITUR_DISPATCHER_ENABLED": "true",
               "PARTITUR_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
               "PARTITUR_SMTP_CONNECTIONS": str(args.smtp_connections),
               "PARTITUR_SMTP_FROM": "Bench <bench@example.com>"}
    if args.worker_processes is not None:
        env["PARTITUR_WORKER_PROCESSES"] = str(args.worker_processes)
    tmp = Path(tempfile.mkdtemp(prefix="partitur-latency-"))
    data = tmp / "data"
    services = build_services(load_settings(data, environ={}))
    try:
        services.extra["journeys"].put({
            "key": "first-mail", "trigger": {"event": "Signed Up"}, "steps": [
                {"id": "hello", "type": "send", "channel": "email", "category": "transactional",
                 "template": {"subject": "Hi {{ profile.traits.email }}",
                              "text": "Welcome", "html": "<p>Welcome</p>"}}]})
        services.extra["journeys"].publish("first-mail")
    finally:
        services.close()
    server = Server(data, worker=True, env=env)
    key = server.create_key()
    sent: dict[str, float] = {}
    per_request = 10
    # The first ``--warmup`` seconds of sign-ups are sent at the same pace but not measured:
    # the first messages after a start pay for opening connections and compiling the
    # journey and its template (in a worker process the backlog of that is gone after about
    # a second and a half).
    skip = int(args.rate * args.warmup)
    total = skip + int(args.rate * args.seconds)
    clients = max(1, args.clients)
    interval = per_request * clients / args.rate  # each client's pace
    column = "sent_at" if args.until == "sent" else "created_at"
    rows: list[Any] = []
    with server:
        cpu0 = server.cpu()

        def client_loop(c: int) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{server.port}",
                              auth=(key, "")) as client:
                for k, n in enumerate(range(c * per_request, total, per_request * clients)):
                    pause = start + k * interval - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                    # Each new person's sign-up (the trigger); to be sent, an email needs the
                    # person's address first (an identify).
                    batch = [call for i in range(n, min(total, n + per_request)) for call in (
                        {"type": "identify", "userId": f"u{i}", "messageId": f"i{i}",
                         "traits": {"email": f"u{i}@example.com"}},
                        {"type": "track", "userId": f"u{i}", "event": "Signed Up",
                         "messageId": f"m{i}"})]
                    stamp = time.time()
                    r = client.post("/v1/batch", json={"batch": batch})
                    assert r.status_code == 200, r.text
                    for event in batch:
                        if event["type"] == "track" and int(event["messageId"][1:]) >= skip:
                            sent[event["messageId"]] = stamp

        start = time.perf_counter()
        threads = [threading.Thread(target=client_loop, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.seconds * 3 + 60)
        elapsed = time.perf_counter() - start
        achieved = total / elapsed
        # The server stamps each message when it is enqueued (created_at) and when it is
        # recorded as sent (sent_at), on this machine's clock: read them once at the end.
        db = sqlite3.connect(f"file:{data / 'partitur.db'}?mode=ro", uri=True, timeout=30)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            rows = db.execute(f"SELECT variables, created_at, {column} FROM outbox "
                              f"WHERE {column} IS NOT NULL").fetchall()
            if len(rows) >= total:
                break
            time.sleep(0.5)
        cpu = (server.cpu() - cpu0) / elapsed
        db.close()
    if smtp is not None:
        smtp.terminate()
        smtp.wait(timeout=10)
    done = {json.loads(v)["event"].get("messageId"): (c, d) for v, c, d in rows}
    out: dict[str, Any] = {"until": args.until, "rate": args.rate,
                           "achieved_rate": round(achieved), "warmup_s": args.warmup,
                           "events": total - skip,
                           "messages": sum(1 for m in sent if m in done),
                           "cpu_server": round(cpu, 2),
                           "worker_processes": args.worker_processes}
    for name, index in (("outbox", 0), ("sent", 1)) if args.until == "sent" else (
            ("outbox", 0),):
        waits = sorted(done[m][index] / 1000 - sent[m] * 1000 for m in sent if m in done)
        out[name] = {"p50_ms": round(statistics.median(waits), 1),
                     "p99_ms": round(waits[int(len(waits) * 0.99) - 1], 1),
                     "max_ms": round(waits[-1], 1)}
    return out


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(args: argparse.Namespace) -> dict[str, Any]:
    from partitur.journeys import JourneyRunner

    points = []
    doc = {"key": "sleepers", "trigger": {"event": "Bench"}, "steps": [
        {"id": "sleep", "type": "wait", "duration": "30d", "next": "end"},
        {"id": "end", "type": "exit"}]}
    with make_services("sqlite") as services:
        journey = publish(services, doc)
        runner = JourneyRunner(services.extra["journeys"])
        done = 0
        marks = sorted({m for m in (args.people // 10, args.people // 4, args.people // 2,
                                    args.people) if m})
        for mark in marks:
            _seed_from(services, journey, done, mark - done)
            done = mark
            runner.refresh()
            runner.tick()
            size = Path(services.settings.sqlite_path).stat().st_size
            wal = Path(str(services.settings.sqlite_path) + "-wal")
            size += wal.stat().st_size if wal.exists() else 0
            points.append({"sleeping": done, "rss_mb": round(rss_mb(), 1),
                           "db_mb": round(size / 2**20, 1),
                           "bytes_per_person": round(size / done)})
    return {"points": points}


def _seed_from(services: Services, journey: Any, first: int, count: int) -> None:
    journeys = services.extra["journeys"]
    now = services.clock.now_us()
    for start in range(first, first + count, 5000):
        steps = []
        for i in range(start, min(first + count, start + 5000)):
            inst = new_instance(journey, 1, f"p{i:08d}", 1, now)
            steps.append((advance(journey, inst, Enter(Person(inst.profile_id), None, "b"),
                                  now), None))
        with services.db.transaction() as tx:
            apply(tx, steps, now, journeys.effects())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["transitions", "latency", "memory", "timer-worker"])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=0,
                        help="transitions on PostgreSQL: fire timers in this many processes")
    parser.add_argument("--database-url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--people", type=int, default=None)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--smtp-connections", type=int, default=4,
                        help="latency --until sent: the smtp_connections setting")
    parser.add_argument("--clients", type=int, default=4,
                        help="latency: client threads sharing the rate")
    parser.add_argument("--until", choices=["outbox", "sent"], default="outbox",
                        help="latency: to the message committed in the outbox, or also to it "
                        "sent (dispatcher on, accepted by an SMTP server in another process)")
    parser.add_argument("--worker-processes", type=int, default=None,
                        help="latency: the server's worker_processes setting (unset: its "
                        "default, one worker process)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="latency: seconds of load sent first and not measured")
    args = parser.parse_args(argv)
    if args.mode == "timer-worker":
        timer_worker(args)
        return 0
    if args.people is None:
        args.people = 1_000_000 if args.mode == "memory" else 50_000
    if args.mode == "transitions" and args.workers:
        if args.store != "postgres":
            parser.error("--workers needs --store postgres (SQLite has one writer)")
        if not 1 <= args.workers <= 8:
            parser.error("--workers is 1 to 8")
        args.mode = "transitions-workers"
    modes = {"transitions": transitions, "transitions-workers": transitions_workers,
             "latency": latency, "memory": memory}
    result = modes[args.mode](args)
    print(json.dumps({"machine": machine(), **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
