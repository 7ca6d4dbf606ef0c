"""Ingestion benchmark: ``partitur serve`` in one process, load from others, over loopback.

    python bench/ingest.py                                   # quick: SQLite ack + the bare ceiling
    python bench/ingest.py --mode ack --store sqlite         # events/s acknowledged durably
    python bench/ingest.py --mode ack --store postgres --worker
    python bench/ingest.py --mode sustained --rate 10000 --seconds 60   # does the backlog drain?
    python bench/ingest.py --mode processing --events 200000            # worker throughput
    python bench/ingest.py --mode ack --bare                 # decode-and-discard ceiling

Every request is a ``/v1/batch`` of ``--batch`` (100) realistic track events with unique
messageIds. The server and the generators share this machine's cores: the report says how much
CPU each side used, so a figure can be read for what it is. Nothing outside pyproject's
dependencies is needed; PostgreSQL runs need a reachable server (``--database-url``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import loadgen
from servers import (
    HOST,
    Server,
    machine,
    machine_cpu,
    pg_schema,
    pg_version,
    proc_cpu,
    proc_status,
    wait_quiet,
)

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


# -- driving load --------------------------------------------------------------------------------
def drive(
    server: Server,
    key: str,
    args: argparse.Namespace,
    *,
    seconds: float,
    requests: int | None = None,
    rate: float | None = None,
    run: str = "r",
) -> dict[str, Any]:
    """Run ``args.procs`` generator processes against the server; the merged result."""
    before = wait_quiet(args.quiet, args.quiet_wait) if args.quiet_wait and run != "warm" else None
    ctx = mp.get_context("spawn")
    procs, pipes = [], []
    for i in range(args.procs):
        plan = loadgen.Plan(
            host=HOST,
            port=server.port,
            path=args.path,
            key=key,
            connections=args.connections,
            events=args.batch,
            population=args.population,
            seconds=seconds,
            requests=None if requests is None else -(-requests // args.procs),
            rate=None if rate is None else rate / args.procs,
            seed=1000 * i + 7,
            run=run,
        )
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=loadgen.child, args=(plan, child), daemon=True)
        proc.start()
        child.close()
        procs.append(proc)
        pipes.append(parent)
    cpu0, busy0, total0 = server.cpu(), *machine_cpu()
    threads0 = server.threads()
    results: list[loadgen.Result] = []
    for proc, pipe in zip(procs, pipes, strict=True):
        if pipe.poll(seconds + 120):
            results.append(pipe.recv())
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    cpu1, busy1, total1 = server.cpu(), *machine_cpu()
    threads1 = server.threads()
    if len(results) != len(procs):
        raise RuntimeError("a load generator did not report back")
    started = min(r.started for r in results)
    wall = max(r.finished for r in results) - started
    latencies = sorted(x for r in results for x in r.latencies)
    events = sum(r.events for r in results)
    cores = (total1 - total0) / (wall or 1) or 1
    return {
        "requests": sum(r.requests for r in results),
        "events": events,
        "errors": sum(r.errors for r in results),
        "first_error": next((r.first_error for r in results if r.first_error), ""),
        "late": sum(r.late for r in results),
        "seconds": round(wall, 2),
        "events_per_s": round(events / wall) if wall else 0,
        "p50_ms": _ms(latencies, 0.50),
        "p99_ms": _ms(latencies, 0.99),
        "max_ms": _ms(latencies, 1.0),
        "cpu_server": round((cpu1 - cpu0) / wall, 2) if wall else 0,
        "cpu_server_threads": {
            name: round((used - threads0.get(name, 0.0)) / wall, 2)
            for name, used in sorted(threads1.items())
            if wall and used - threads0.get(name, 0.0) >= 0.01 * wall
        },
        "cpu_generators": round(sum(r.cpu for r in results) / wall, 2) if wall else 0,
        "cpu_machine": round((busy1 - busy0) / (total1 - total0) * cores, 2),
        "cpu_other_before": before,
    }


def _ms(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return round(sorted_values[index] * 1000, 1)


@contextmanager
def sampling(server: Server, every: float) -> Iterator[list[dict[str, Any]]]:
    """Backlog and memory every ``every`` seconds while the block runs."""
    samples: list[dict[str, Any]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def loop() -> None:
        while not stop.wait(every):
            try:
                backlog = server.backlog()
            except (OSError, RuntimeError):
                backlog = -1
            samples.append(
                {
                    "t": round(time.monotonic() - t0, 1),
                    "backlog": backlog,
                    "rss_mib": round(server.rss() / 2**20),
                }
            )

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join(timeout=120)


@contextmanager
def profiling(server: Server, args: argparse.Namespace) -> Iterator[None]:
    """``--profile FILE``: py-spy samples the server while the block runs (raw, for flame
    graphs: ``py-spy`` is not a dependency; ``pip install py-spy``)."""
    if args.profile is None:
        yield
        return
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    command = [
        spy,
        "record",
        "--pid",
        str(server.pid),
        "--format",
        "raw",
        "--threads",
        "--rate",
        "100",
        "--output",
        str(args.profile),
        *args.profile_option,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        if proc.returncode not in (0, -signal.SIGINT):
            print(f"py-spy: {err.decode(errors='replace')}", file=sys.stderr)


# -- the modes -----------------------------------------------------------------------------------
@contextmanager
def store(args: argparse.Namespace) -> Iterator[str | None]:
    if args.store == "postgres" and not args.bare:
        with pg_schema(args.database_url) as url:
            yield url
    else:
        yield None


def make_server(args: argparse.Namespace, tmp: Path, url: str | None, *, worker: bool) -> Server:
    env = {f"PARTITUR_{k.upper()}": v for k, v in (s.split("=", 1) for s in args.setting)}
    return Server(tmp / "data", url, bare=args.bare, worker=worker, env=env)


def mode_ack(args: argparse.Namespace, tmp: Path, url: str | None) -> dict[str, Any]:
    server = make_server(args, tmp, url, worker=args.worker)
    key = "bare" if args.bare else server.create_key()
    with server:
        if args.warmup:
            drive(server, key, args, seconds=args.warmup, run="warm")
        with sampling(server, 5.0) as samples, profiling(server, args):
            out = drive(server, key, args, seconds=args.seconds, requests=args.requests)
        out["peak_rss_mib"] = round(server.peak_rss() / 2**20)
        out["backlog_after"] = server.backlog()
        out["samples"] = samples
    return out


def spawn_workers(
    args: argparse.Namespace, tmp: Path, url: str | None, server: Server, *, analytics: bool
) -> list[subprocess.Popen[bytes]]:
    """``--workers`` separate ``partitur worker --role events`` processes (on PostgreSQL each
    gets an equal range of the partitions, on SQLite there is one: it shares the write lock
    with the server's ingest path, working each batch out before taking it) and, with
    ``analytics``, one ``--role analytics`` process: what ``worker_processes`` starts."""
    if url is None and args.workers != 1:
        raise SystemExit("SQLite runs one worker process (--workers 1)")
    parts = int(dict(s.split("=", 1) for s in args.setting).get("partitions", 256))
    bounds = [parts * n // args.workers for n in range(args.workers + 1)]
    procs = []
    roles = [["--role", "events", "--parts", f"{lo}:{hi}"] if url else ["--role", "events"]
             for lo, hi in itertools.pairwise(bounds)]
    if analytics:  # as `worker_processes` lays them out: the projector on its own
        roles.append(["--role", "analytics"])
    for role in roles:
        command = [*Server._partitur(), "worker", "--data", str(tmp / "data"), *role,
                   "--poll", "0.05"]
        env = {**server._env(), "PARTITUR_LOG_LEVEL": "warning"}  # --setting values, database
        procs.append(subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        ))
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def mode_sustained(args: argparse.Namespace, tmp: Path, url: str | None) -> dict[str, Any]:
    if args.workers:
        return sustained_by_workers(args, tmp, url)
    server = make_server(args, tmp, url, worker=args.worker)
    key = "bare" if args.bare else server.create_key()
    with server:
        with sampling(server, args.every) as samples:
            out = drive(server, key, args, seconds=args.seconds, rate=args.rate)
        # After the load: how long until the worker has caught up (bounded)?
        t0 = time.monotonic()
        backlog = server.backlog()
        while args.worker and backlog > 0 and time.monotonic() - t0 < args.drain_timeout:
            time.sleep(0.25)
            backlog = server.backlog()
        out["drain_after_s"] = round(time.monotonic() - t0, 1) if backlog == 0 else None
        out["backlog_after"] = backlog
        out["peak_rss_mib"] = round(server.peak_rss() / 2**20)
    return keeps_up(args, out, samples)


def sustained_by_workers(args: argparse.Namespace, tmp: Path, url: str | None) -> dict[str, Any]:
    """As ``mode_sustained``, with the server taking events only and ``--workers`` worker
    processes (with the analytics projector in the first) processing them."""
    server = make_server(args, tmp, url, worker=False)
    key = server.create_key()
    with server:
        procs = spawn_workers(args, tmp, url, server, analytics=True)
        try:
            cpu0 = sum(proc_cpu(p.pid) for p in procs)
            started = time.monotonic()
            with sampling(server, args.every) as samples:
                out = drive(server, key, args, seconds=args.seconds, rate=args.rate)
            t0 = time.monotonic()
            backlog = server.backlog()
            while backlog > 0 and time.monotonic() - t0 < args.drain_timeout:
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError("a worker exited")
                time.sleep(0.25)
                backlog = server.backlog()
            out["drain_after_s"] = round(time.monotonic() - t0, 1) if backlog == 0 else None
            out["backlog_after"] = backlog
            elapsed = time.monotonic() - started
            out["cpu_workers"] = round((sum(proc_cpu(p.pid) for p in procs) - cpu0) / elapsed, 2)
            out["peak_rss_mib"] = round(server.peak_rss() / 2**20)
            out["peak_rss_mib_per_worker"] = round(
                max(proc_status(p.pid, "VmHWM") for p in procs) / 2**20)
        finally:
            stop_workers(procs)
    out["workers"] = args.workers
    return keeps_up(args, out, samples)


def keeps_up(args: argparse.Namespace, out: dict[str, Any], samples: list[Any]) -> dict[str, Any]:
    out["samples"] = samples
    during = [s["backlog"] for s in samples if s["backlog"] >= 0]
    half = during[len(during) // 2 :] or [0]
    # Keeps up: never more than five seconds of events behind in the second half, and caught up
    # within ten seconds of the load stopping.
    limit = 5 * args.rate
    out["max_backlog"] = max(during, default=0)
    out["keeps_up"] = (
        max(half) <= limit and out["drain_after_s"] is not None and out["drain_after_s"] <= 10
    )
    return out


def mode_processing(args: argparse.Namespace, tmp: Path, url: str | None) -> dict[str, Any]:
    if args.bare:
        raise SystemExit("--mode processing has no meaning for the bare app")
    requests = -(-args.events // args.batch)
    loader = make_server(args, tmp, url, worker=False)
    key = loader.create_key()
    with loader:
        preload = drive(loader, key, args, seconds=600, requests=requests)
        queued = loader.backlog()
    if preload["errors"]:
        raise RuntimeError(f"preload failed: {preload['first_error']}")
    if args.workers:
        return processing_by_workers(args, tmp, url, queued, preload)
    server = make_server(args, tmp, url, worker=True)
    launched = time.monotonic()
    with server, profiling(server, args):
        first_seen = time.monotonic()
        first = server.backlog()
        backlog = first
        cpu0 = server.cpu()
        while backlog > 0 and time.monotonic() - first_seen < args.drain_timeout:
            time.sleep(0.2)
            backlog = server.backlog()
        elapsed = time.monotonic() - first_seen
        cpu = server.cpu() - cpu0
        peak = server.peak_rss()
    done = first - backlog
    return {
        "preload_events_per_s": preload["events_per_s"],
        "queued": queued,
        "processed_before_first_poll": queued - first,
        "startup_s": round(first_seen - launched, 2),
        "processed": done,
        "backlog_after": backlog,
        "seconds": round(elapsed, 2),
        "events_per_s": round(done / elapsed) if elapsed else 0,
        "cpu_server": round(cpu / elapsed, 2) if elapsed else 0,
        "peak_rss_mib": round(peak / 2**20),
        "drained": backlog == 0,
    }


def processing_by_workers(
    args: argparse.Namespace, tmp: Path, url: str | None, queued: int, preload: dict[str, Any]
) -> dict[str, Any]:
    """The queue drained by ``--workers`` separate worker processes as ``worker_processes``
    lays them out (see :func:`spawn_workers`); the server only answers ``/health`` for the
    backlog."""
    watcher = make_server(args, tmp, url, worker=False)
    with watcher:
        first = watcher.backlog()
        analytics = dict(s.split("=", 1) for s in args.setting).get(
            "analytics_enabled", "true").lower() not in ("0", "false", "no")
        procs = spawn_workers(args, tmp, url, watcher, analytics=analytics)
        try:
            started = time.monotonic()
            backlog = first
            while backlog > 0 and time.monotonic() - started < args.drain_timeout:
                time.sleep(0.2)
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError("a worker exited while draining")
                backlog = watcher.backlog()
            elapsed = time.monotonic() - started
            cpu = sum(proc_cpu(p.pid) for p in procs)
            peak = max(proc_status(p.pid, "VmHWM") for p in procs)
        finally:
            stop_workers(procs)
    done = first - backlog
    return {
        "preload_events_per_s": preload["events_per_s"],
        "queued": queued,
        "workers": args.workers,
        "processed": done,
        "backlog_after": backlog,
        "seconds": round(elapsed, 2),
        "events_per_s": round(done / elapsed) if elapsed else 0,
        "cpu_workers": round(cpu / elapsed, 2) if elapsed else 0,
        "peak_rss_mib_per_worker": round(peak / 2**20),
        "drained": backlog == 0,
    }


MODES = {"ack": mode_ack, "sustained": mode_sustained, "processing": mode_processing}


# -- reporting -----------------------------------------------------------------------------------
def describe(args: argparse.Namespace) -> dict[str, Any]:
    setup = {
        "store": ("bare-rows" if args.bare_rows else "bare") if args.bare else args.store,
        "mode": args.mode,
        "worker": True if args.mode == "processing" else args.worker,
        "batch": args.batch,
        "procs": args.procs,
        "connections_per_proc": args.connections,
        "population": args.population,
    }
    if args.setting:
        setup["settings"] = args.setting
    return setup


def report(name: str, setup: dict[str, Any], out: dict[str, Any]) -> None:
    print(f"\n== {name}: {json.dumps(setup)}")
    for key, value in out.items():
        if key == "samples":
            continue
        print(f"  {key:<28} {value}")
    samples = out.get("samples") or []
    if samples and setup["mode"] == "sustained":
        print("  backlog over time (s: events):")
        print("   " + ", ".join(f"{s['t']:g}: {s['backlog']}" for s in samples))


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="partitur-bench-") as tmp, store(args) as url:
        try:
            out = MODES[args.mode](args, Path(tmp), url)
        finally:
            if args.server_log:
                with args.server_log.open("a") as keep:
                    for log in sorted(Path(tmp).glob("*.log")):
                        keep.write(f"== {log.name}\n{log.read_text(errors='replace')}")
    setup = describe(args)
    report(f"{args.mode} {setup['store']}", setup, out)
    return {"setup": setup, "result": out}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--mode",
        choices=[*MODES, "quick"],
        default="quick",
        help="quick (default): SQLite ack and the bare ceiling, 10 s each",
    )
    p.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument(
        "--database-url",
        default=PG_URL,
        help="PostgreSQL server for --store postgres (a fresh schema is made in it "
        "and dropped afterwards)",
    )
    p.add_argument(
        "--bare",
        action="store_true",
        help="the decode-and-discard app (bench/bare_app.py) instead of partitur",
    )
    p.add_argument(
        "--bare-rows",
        action="store_true",
        help="the bare app running partitur's decode and to_rows, without storage",
    )
    p.add_argument(
        "--worker",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the profile worker in the server (default: off for ack, on for sustained)",
    )
    p.add_argument(
        "--seconds", type=float, default=None, help="load duration (ack: 15, sustained: 60)"
    )
    p.add_argument("--requests", type=int, default=None, help="ack: stop after this many")
    p.add_argument("--warmup", type=float, default=2.0, help="ack: seconds of load not counted")
    p.add_argument("--rate", type=float, default=10_000, help="sustained: events/s offered")
    p.add_argument("--every", type=float, default=5.0, help="sustained: sample interval, s")
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=120.0,
        help="longest wait for the backlog to empty, s",
    )
    p.add_argument("--events", type=int, default=200_000, help="processing: events preloaded")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processing: drain with this many `partitur worker` processes (PostgreSQL)",
    )
    p.add_argument("--batch", type=int, default=100, help="events per request")
    p.add_argument("--procs", type=int, default=1, help="load generator processes")
    p.add_argument(
        "--connections",
        type=int,
        default=64,
        help="connections per generator (many clients: the group commit serves them together)",
    )
    p.add_argument("--population", type=int, default=200_000, help="distinct people")
    p.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a partitur setting for the server, e.g. sqlite_synchronous=NORMAL",
    )
    p.add_argument(
        "--quiet",
        type=float,
        default=0.2,
        help="before measuring, wait until other work uses at most this many cores",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="longest wait for a quiet machine, s (0: do not wait)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record a py-spy profile of the server while it is measured (raw stacks)",
    )
    p.add_argument(
        "--profile-option",
        action="append",
        default=[],
        help="passed to py-spy record, e.g. --profile-option=--idle",
    )
    p.add_argument(
        "--server-log", type=Path, default=None, help="append the server's output to this file"
    )
    p.add_argument("--json", type=Path, default=None, help="append results to this JSON-lines file")
    args = p.parse_args(argv)
    args.bare = args.bare or args.bare_rows
    args.path = "/rows/v1/batch" if args.bare_rows else "/v1/batch"
    if args.seconds is None:
        args.seconds = 60.0 if args.mode == "sustained" else 15.0
    if args.worker is None:
        args.worker = args.mode == "sustained"
    if args.seconds <= 0 or args.seconds > 600:
        p.error("--seconds must be in (0, 600]")
    if not 1 <= args.batch <= 2500:
        p.error("--batch must be 1..2500")
    for item in args.setting:
        if "=" not in item:
            p.error(f"--setting expects NAME=VALUE, got {item!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    info = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join(["python", "bench/ingest.py", *(argv or sys.argv[1:])]),
    }
    if args.store == "postgres" and not args.bare:
        info["machine"]["postgresql"] = pg_version(args.database_url)
    print(json.dumps(info))
    runs = []
    if args.mode == "quick":
        args.mode, args.seconds = "ack", 10.0
        runs.append(run_one(args))
        args.bare = True
        runs.append(run_one(args))
        ratio = runs[0]["result"]["events_per_s"] / max(1, runs[1]["result"]["events_per_s"])
        print(f"\npartitur / bare: {ratio:.0%}")
    else:
        runs.append(run_one(args))
    if args.json:
        with args.json.open("a") as out:
            for run in runs:
                out.write(json.dumps({**info, **run}) + "\n")
    failed = any(r["result"].get("errors") for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
