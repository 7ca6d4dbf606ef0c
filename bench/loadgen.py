"""The load generator: realistic Segment batches over keep-alive HTTP/1.1, from its own process.

Each generator process owns a few connections to the server and a handful of batch templates;
a request is a template filled with fresh ``messageId``s and people, so every event is unique
and the people repeat the way a shop's visitors do. Filling a template is one ``bytes %``
operation (about 30 µs for 100 events), so the generator spends its CPU on sending, not on JSON.

Two ways to send:

* closed loop (``rate=None``): every connection sends its next request as soon as the previous
  one is answered, until the request budget or the deadline is reached;
* open loop (``rate`` events/s): requests are due at fixed times whether or not earlier ones
  have been answered; latency is measured from when a request was due, so a server that falls
  behind shows it in the latency instead of silently slowing the generator down.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_EVENTS = [
    ("Product Viewed", "/products/{slug}"),
    ("Product Added", "/products/{slug}"),
    ("Cart Viewed", "/cart"),
    ("Checkout Started", "/checkout"),
    ("Products Searched", "/search"),
    ("Product List Viewed", "/c/{category}"),
    ("Promotion Clicked", "/"),
    ("Order Completed", "/checkout/done"),
]
_CATEGORIES = ["shoes", "jackets", "bags", "hats", "socks", "shirts", "trousers", "watches"]
_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
]


def _event_template(rng: random.Random, when: str, known: bool) -> str:
    """One track event as analytics.js sends it; the placeholders are filled per request: the
    messageId (random bits, so that ids land all over the dedup index as real UUIDs do, then
    the generator's prefix and a counter, so that they are unique), then the person (twice
    when the visitor is logged in)."""
    name, path = rng.choice(_EVENTS)
    category = rng.choice(_CATEGORIES)
    slug = f"{category}-{rng.randrange(10_000):04d}"
    path = path.format(slug=slug, category=category)
    ids = '"userId":"u%d","anonymousId":"a%d"' if known else '"anonymousId":"a%d"'
    price = rng.randrange(500, 30_000) / 100
    return (
        '{"type":"track","event":"' + name + '","messageId":"%016x-%s-%x",' + ids + ","
        '"timestamp":"' + when + '",'
        '"properties":{"product_id":"' + slug + '","category":"' + category + '",'
        f'"price":{price},"currency":"EUR","quantity":{rng.randrange(1, 4)}}},'
        '"context":{"ip":"203.0.113.' + str(rng.randrange(1, 255)) + '",'
        '"userAgent":"' + rng.choice(_AGENTS) + '",'
        '"page":{"url":"https://shop.example' + path + '"},'
        '"library":{"name":"analytics.js","version":"5.2.0"},"locale":"de-DE"}}'
    )


@dataclass(frozen=True)
class Template:
    text: bytes  # a whole request body with placeholders
    known: tuple[bool, ...]  # per event: whether it carries a userId too


def make_templates(seed: int, events: int, count: int = 12) -> list[Template]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    when = (now - timedelta(seconds=2)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    sent = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    out = []
    for _ in range(count):
        known = tuple(rng.random() < 0.3 for _ in range(events))
        body = ",".join(_event_template(rng, when, k) for k in known)
        text = '{"batch":[' + body + '],"sentAt":"' + sent + '"}'
        out.append(Template(text.encode(), known))
    return out


class Bodies:
    """Unique bodies from templates: every event gets a new messageId and a person drawn from a
    population (a few people are much more active than most, as on a real site)."""

    def __init__(self, seed: int, events: int, population: int, run: str) -> None:
        self.templates = make_templates(seed, events)
        self.rng = random.Random(seed + 1)
        self.population = population
        self.prefix = f"{run}-{seed}".encode()
        self.counter = 0

    def next(self) -> bytes:
        template = self.templates[self.rng.randrange(len(self.templates))]
        args: list[Any] = []
        rand = self.rng.random
        bits = self.rng.getrandbits
        pop = self.population
        prefix = self.prefix
        counter = self.counter
        for known in template.known:
            person = int(pop * rand() ** 3)  # skewed: low numbers are the frequent visitors
            counter += 1
            args.append(bits(64))
            args.append(prefix)
            args.append(counter)
            args.append(person)
            if known:
                args.append(person)
        self.counter = counter
        return template.text % tuple(args)


@dataclass
class Plan:
    host: str
    port: int
    path: str
    key: str
    connections: int
    events: int  # per request
    population: int
    seconds: float
    requests: int | None = None  # budget for this process (closed loop)
    rate: float | None = None  # events/s for this process (open loop)
    seed: int = 1
    run: str = "r"


@dataclass
class Result:
    requests: int = 0
    events: int = 0
    errors: int = 0
    first_error: str = ""
    latencies: list[float] = field(default_factory=list)  # seconds
    started: float = 0.0  # time.time() of the first request
    finished: float = 0.0
    late: int = 0  # open loop: requests that could not start on time (no free connection)
    cpu: float = 0.0  # this process's CPU seconds


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def post(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        data = await self.reader.readexactly(length) if length else b""
        return status, data


async def _connect(plan: Plan) -> _Conn:
    reader, writer = await asyncio.open_connection(plan.host, plan.port)
    return _Conn(reader, writer)


def _head(plan: Plan) -> bytes:
    auth = base64.b64encode(f"{plan.key}:".encode()).decode()
    return (
        f"POST {plan.path} HTTP/1.1\r\nHost: {plan.host}:{plan.port}\r\n"
        f"Authorization: Basic {auth}\r\nContent-Type: application/json\r\n"
        "Content-Length: "
    ).encode()


async def _closed_loop(plan: Plan, result: Result) -> None:
    bodies = Bodies(plan.seed, plan.events, plan.population, plan.run)
    head = _head(plan)
    deadline = time.monotonic() + plan.seconds
    budget = [plan.requests if plan.requests is not None else 1 << 62]

    async def drive() -> None:
        conn = await _connect(plan)
        try:
            while budget[0] > 0 and time.monotonic() < deadline:
                budget[0] -= 1
                body = bodies.next()
                t0 = time.perf_counter()
                status, data = await conn.post(head, body)
                result.latencies.append(time.perf_counter() - t0)
                _count(result, status, data, plan.events)
        finally:
            conn.writer.close()

    result.started = time.time()
    await asyncio.gather(*(drive() for _ in range(plan.connections)))
    result.finished = time.time()


async def _open_loop(plan: Plan, result: Result) -> None:
    assert plan.rate is not None
    bodies = Bodies(plan.seed, plan.events, plan.population, plan.run)
    head = _head(plan)
    idle: asyncio.Queue[_Conn] = asyncio.Queue()
    for _ in range(plan.connections):
        idle.put_nowait(await _connect(plan))
    interval = plan.events / plan.rate
    total = int(plan.seconds / interval)
    tasks = set()

    async def one(due: float) -> None:
        if idle.empty():
            result.late += 1
        conn = await idle.get()
        body = bodies.next()
        status, data = await conn.post(head, body)
        result.latencies.append(time.perf_counter() - due)
        _count(result, status, data, plan.events)
        idle.put_nowait(conn)

    result.started = time.time()
    start = time.perf_counter()
    for i in range(total):
        due = start + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(one(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=plan.seconds + 60)
    result.finished = time.time()
    while not idle.empty():
        idle.get_nowait().writer.close()


def _count(result: Result, status: int, data: bytes, events: int) -> None:
    result.requests += 1
    if status == 200:
        result.events += events
    else:
        result.errors += 1
        if not result.first_error:
            result.first_error = f"{status} {data[:300].decode(errors='replace')}"


def run(plan: Plan) -> Result:
    """Run one generator (in the calling process) and return what it saw."""
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        factory = None
    result = Result()
    cpu0 = time.process_time()
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            if plan.rate is None:
                runner.run(_closed_loop(plan, result))
            else:
                runner.run(_open_loop(plan, result))
    except (OSError, asyncio.IncompleteReadError) as exc:
        result.errors += 1
        result.first_error = result.first_error or f"connection: {exc!r}"
    result.cpu = time.process_time() - cpu0
    return result


def child(plan: Plan, out: Any) -> None:
    """Entry point of a generator process: run and send the result back through ``out``."""
    out.send(run(plan))
    out.close()
