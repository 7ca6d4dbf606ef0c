"""Where PostgreSQL's CPU goes when events are appended: the database backend's CPU time, read
from ``/proc`` (so the server must be on this machine), around each statement of the append
path, per event.

    python bench/pg_append.py --database-url postgresql://postgres@127.0.0.1:5432/test

A fresh schema is migrated and dropped afterwards. The statements are those of
``PostgresEventLog`` (claim of the messageIds, sequence numbers, ``COPY`` into the log, the
queue rows), run in groups as the group commit runs them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from partitur.services import build_services
from partitur.settings import load_settings
from partitur.store.db import pg_int_array
from partitur.store.events import EVENT_COLUMNS, PostgresEventLog


def ticks(pid: int) -> int:
    """User and system CPU of a process, in clock ticks (1/100 s)."""
    fields = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()
    return int(fields[11]) + int(fields[12])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--group", type=int, default=2_000)
    args = p.parse_args()
    schema = "bench_append_" + uuid.uuid4().hex[:8]
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{args.database_url}?options=-csearch_path%3D{schema}"
    services = build_services(load_settings(Path(tempfile.mkdtemp()), environ={},
                                            database_url=url))
    log = services.events
    assert isinstance(log, PostgresEventLog)
    body = json.dumps({"type": "track", "event": "Product Viewed",
                       "properties": {"sku": "x" * 40, "price": 12.5},
                       "context": {"ip": "127.0.0.1", "userAgent": "Mozilla/5.0 " * 5,
                                   "page": {"url": "https://shop.example/p/1"}}})
    now = int(time.time() * 1e6)
    parts = {"claim": 0, "sequence": 0, "copy": 0, "queue": 0, "commit": 0}
    wall = time.perf_counter()
    groups = args.events // args.group
    for g in range(groups):
        base = g * args.group
        rows = [(uuid.uuid4().hex, "src", "track", "Product Viewed", None,
                 f"a{(base + i) % 200_000}", now, now + base + i, (base + i) % 256, body)
                for i in range(args.group)]
        with services.db.transaction() as tx:
            pid = int(tx.one("SELECT pg_backend_pid()")[0])  # type: ignore[index]
            t0 = ticks(pid)
            log._claim(tx, rows)
            t1 = ticks(pid)
            found = tx.execute("SELECT nextval('events_seq') FROM generate_series(1, ?)",
                               (len(rows),))
            seqs = sorted(int(r[0]) for r in found)
            t2 = ticks(pid)
            raw = tx.raw  # type: ignore[attr-defined]
            with raw.cursor() as cur, cur.copy(
                    f"COPY events ({EVENT_COLUMNS}) FROM STDIN") as copy:
                for seq, row in zip(seqs, rows, strict=True):
                    copy.write_row((seq, *row))
            t3 = ticks(pid)
            tx.execute(
                "INSERT INTO event_queue (seq, part, received_at) "
                "SELECT * FROM unnest(?::bigint[], ?::integer[], ?::bigint[])",
                (pg_int_array(seqs), pg_int_array(r[8] for r in rows),
                 pg_int_array(r[7] for r in rows)),
            )
            t4 = ticks(pid)
        parts["claim"] += t1 - t0
        parts["sequence"] += t2 - t1
        parts["copy"] += t3 - t2
        parts["queue"] += t4 - t3
        parts["commit"] += ticks(pid) - t4
    events = groups * args.group
    out = {"events": events, "group": args.group,
           "wall_us_per_event": round((time.perf_counter() - wall) * 1e6 / events, 2)}
    out.update({f"db_cpu_us_per_event_{k}": round(v * 1e4 / events, 2)
                for k, v in parts.items()})
    out["db_cpu_us_per_event"] = round(sum(parts.values()) * 1e4 / events, 2)
    print(json.dumps(out))
    services.close()
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
