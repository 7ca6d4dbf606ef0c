"""Channels benchmark: what the outbox and the dispatcher cost.

    python bench/channels.py                       # SQLite
    python bench/channels.py --store postgres      # PostgreSQL (a fresh schema on the test server)
    python bench/channels.py --messages 20000 --people 2000

Three figures, each through the real code (policies, rendering, recording, delivery events):

* ``enqueue``: messages per second written by :func:`partitur.channels.enqueue`, 500 per
  transaction (what the journey runner adds to its own transactions);
* ``dispatch``: messages per second from queued to recorded as sent, for web messages (no
  network: the pipeline's own ceiling) and for webhooks to a receiver in another process
  (uvicorn, answering 200 at once);
* ``dispatch_email``: the same for emails (subject, text and HTML rendered for the person,
  MIME, unsubscribe link) to an SMTP server in another process (aiosmtpd's sink), with the
  CPU this process spent per email; ``--profile FILE`` writes a cProfile of that drain;
* ``latency``: from the commit that enqueues one webhook message to the dispatcher having it
  recorded as sent (an upper bound on "handed to the channel"), p50/p99 over one message at a
  time, with the background dispatcher woken by the commit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from servers import free_port, machine, pg_schema

from partitur.channels import Dispatcher, OutboundMessage, delivery_status, enqueue
from partitur.services import Services, build_services
from partitur.settings import load_settings
from partitur.worker import ProfileWorker

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
RECEIVER = textwrap.dedent(
    """
    import sys, uvicorn
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False)
    """
)


@contextlib.contextmanager
def receiver() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    try:
        import httpx

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.post(f"http://127.0.0.1:{port}/", content=b"{}")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def store(kind: str, tmp: Path, **settings: Any) -> Iterator[Services]:
    settings.setdefault("smtp_from", "Bench <bench@example.com>")
    if kind == "postgres":
        with pg_schema(PG_URL) as url:
            services = build_services(load_settings(tmp, environ={}, database_url=url,
                                                    **settings))
            try:
                yield services
            finally:
                services.close()
    else:
        services = build_services(load_settings(tmp, environ={}, sqlite_synchronous="NORMAL",
                                                **settings))
        try:
            yield services
        finally:
            services.close()


def people(services: Services, count: int) -> list[str]:
    services.committer.start()
    try:
        _, source = services.keys.create_write_key("bench")
        from partitur.ingest.decode import decode
        from partitur.ingest.rows import to_rows

        events = [{"type": "identify", "userId": f"u{n}",
                   "traits": {"first_name": f"P{n}", "email": f"p{n}@example.com"}}
                  for n in range(count)]
        for start in range(0, count, 1000):
            body = json.dumps({"batch": events[start : start + 1000]}).encode()
            rows, _ = to_rows(decode(body, None, services.limits), None, source_id=source.id,
                              received_us=services.clock.now_us(), limits=services.limits)
            services.committer.submit_sync(rows)
    finally:
        services.committer.stop()
    ProfileWorker(services).drain()
    with services.db.read() as tx:
        rows = tx.execute("SELECT profile_id FROM identifiers WHERE id_type = 'user_id'")
    return [r[0] for r in rows]


@contextlib.contextmanager
def smtp_sink() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                             "-c", "aiosmtpd.handlers.Sink"])
    try:
        import socket

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"smtp://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def messages(ids: list[str], count: int, channel: str, url: str, tag: str) -> list[Any]:
    out = []
    for n in range(count):
        profile = ids[n % len(ids)]
        if channel == "email":
            out.append(OutboundMessage(
                key=f"{tag}:{n}", profile_id=profile, channel="email", category="transactional",
                template={"subject": "Welcome, {{ profile.traits.first_name }}",
                          "text": "Hello {{ profile.traits.first_name }}, thanks for joining.",
                          "html": "<p>Hello <b>{{ profile.traits.first_name }}</b>,</p>"
                                  "<p>thanks for joining.</p>"}))
        elif channel == "web":
            out.append(OutboundMessage(
                key=f"{tag}:{n}", profile_id=profile, channel="web", category="transactional",
                template={"title": "Hi {{ profile.traits.first_name }}", "body": "x"}))
        else:
            out.append(OutboundMessage(
                key=f"{tag}:{n}", profile_id=profile, channel="webhook", template=None,
                category="transactional",
                webhook={"url": url, "body": {"id": "{{ profile.id }}", "n": n}}))
    return out


def time_enqueue(services: Services, batch: list[Any]) -> float:
    started = time.perf_counter()
    for start in range(0, len(batch), 500):
        with services.db.transaction() as tx:
            enqueue(tx, batch[start : start + 500], services.clock.now_us())
    return len(batch) / (time.perf_counter() - started)


def time_dispatch(services: Services, count: int) -> float:
    dispatcher = Dispatcher(services)
    started = time.perf_counter()
    sent = 0
    while sent < count:
        done = dispatcher.drain()
        if done == 0:
            break
        sent += done
    return sent / (time.perf_counter() - started)


def latency(services: Services, ids: list[str], url: str, count: int) -> dict[str, float]:
    dispatcher = Dispatcher(services)
    dispatcher.start()
    try:
        dispatcher.idle.wait(10)
        waits = []
        for n in range(count):
            key = f"lat:{n}"
            message = messages(ids, 1, "webhook", url, "x")[0]
            message = OutboundMessage(**{**{f: getattr(message, f) for f in
                                            message.__dataclass_fields__}, "key": key})
            with services.db.transaction() as tx:
                enqueue(tx, [message], services.clock.now_us())
            started = time.perf_counter()
            deadline = started + 10
            while time.perf_counter() < deadline:
                with services.db.read() as tx:
                    if delivery_status(tx, [key])[key]["status"] == "sent":
                        break
                time.sleep(0.0005)
            waits.append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)
    finally:
        dispatcher.stop()
    waits.sort()
    return {"p50_ms": round(statistics.median(waits), 2),
            "p99_ms": round(waits[int(len(waits) * 0.99) - 1], 2), "max_ms": round(waits[-1], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument("--smtp-connections", type=int, default=None,
                        help="the smtp_connections setting (default: its default)")
    parser.add_argument("--only-email", action="store_true",
                        help="only the email dispatch figure")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write a cProfile of the email drain here")
    args = parser.parse_args()
    result: dict[str, Any] = {"store": args.store, "machine": machine(),
                              "messages": args.messages, "people": args.people}
    with tempfile.TemporaryDirectory() as tmp, receiver() as url, smtp_sink() as smtp, \
            store(args.store, Path(tmp), smtp_url=smtp,
                  **({"smtp_connections": args.smtp_connections}
                     if args.smtp_connections else {})) as services:
        ids = people(services, args.people)
        mails = messages(ids, args.messages, "email", url, "mail")
        time_enqueue(services, mails)
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        if args.profile is not None:
            import cProfile

            with cProfile.Profile() as prof:
                result["dispatch_email_per_s"] = round(time_dispatch(services, len(mails)))
            prof.dump_stats(args.profile)
        else:
            result["dispatch_email_per_s"] = round(time_dispatch(services, len(mails)))
        result["dispatch_email_cpu_ms_per_email"] = round(
            (time.process_time() - cpu0) * 1000 / len(mails), 3)
        result["dispatch_email_wall_ms_per_email"] = round(
            (time.perf_counter() - wall0) * 1000 / len(mails), 3)
        if args.only_email:
            print(json.dumps(result, indent=2))
            return
        web = messages(ids, args.messages, "web", url, "web")
        hooks = messages(ids, args.messages, "webhook", url, "hook")
        result["enqueue_per_s"] = round(time_enqueue(services, web))
        result["dispatch_web_per_s"] = round(time_dispatch(services, len(web)))
        time_enqueue(services, hooks)
        result["dispatch_webhook_per_s"] = round(time_dispatch(services, len(hooks)))
        result["latency"] = latency(services, ids, url, args.latency_samples)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
