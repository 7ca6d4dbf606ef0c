"""Crash safety: SIGKILL the server under load; every acknowledged event survives, once.

Several client threads send batches with unique messageIds to a real ``partitur serve`` and note
which were answered 200. The server is killed mid-load (twice), restarted on the same data, and
the clients retry as real ones do: some batches that were acknowledged, and every one that was
not. Then every acknowledged messageId must be in the event log exactly once, nothing must be
stored twice, and the profile worker must drain the queue (every event processed).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PartiturServer, http

pytestmark = pytest.mark.serial

THREADS = 6
BATCH = 20
MAX_BATCHES = 250  # per thread and round: at most 6 * 250 * 20 = 30,000 events a round
KILL_AFTER = 150  # acknowledged batches before the kill (or KILL_DEADLINE seconds)
KILL_DEADLINE = 20.0


def make_batch(round_: int, thread: int, n: int) -> dict[str, Any]:
    events = []
    for i in range(BATCH):
        person = f"{thread}-{(n * BATCH + i) % 37}"
        event: dict[str, Any] = {
            "messageId": f"crash-{round_}-{thread}-{n}-{i}",
            "anonymousId": f"anon-{person}",
            "type": "track",
            "event": "Crash Tested",
            "properties": {"n": n, "i": i},
        }
        if i % 5 == 0:
            event.update(type="identify", userId=f"user-{person}",
                         traits={"email": f"p{person}@example.com"})
            del event["event"], event["properties"]
        events.append(event)
    return {"batch": events}


def ids(batch: dict[str, Any]) -> list[str]:
    return [event["messageId"] for event in batch["batch"]]


@dataclass
class Load:
    """Client threads sending until stopped, a bound reached, or the server goes away."""

    url: str
    key: str
    round: int
    acked: list[dict[str, Any]] = field(default_factory=list)
    unacked: list[dict[str, Any]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, thread: int) -> None:
        host, port = self.url.removeprefix("http://").split(":")
        conn = HTTPConnection(host, int(port), timeout=30)
        try:
            for n in range(MAX_BATCHES):
                if self.stop.is_set():
                    return
                batch = make_batch(self.round, thread, n)
                try:
                    status = http("POST", f"{self.url}/v1/batch", batch, key=self.key,
                                  conn=conn).status
                except (OSError, HTTPException):
                    status = 0
                with self.lock:
                    (self.acked if status == 200 else self.unacked).append(batch)
                if status == 0:
                    return  # the server is gone; a real client would queue and retry later
        finally:
            conn.close()

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.run, args=(t,)) for t in range(THREADS)]
        for t in threads:
            t.start()
        return threads


def stored_counts(server: PartiturServer) -> dict[str, int]:
    with server.services() as services, services.db.read() as tx:
        rows = tx.execute("SELECT message_id, COUNT(*) FROM events GROUP BY message_id")
    return {r[0]: int(r[1]) for r in rows}


def wait_processed(server: PartiturServer, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    backlog = None
    while time.monotonic() < deadline:
        backlog = http("GET", f"{server.url}/health").json()["backlog"]
        if backlog == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"{backlog} events still unprocessed after {timeout}s")


def test_sigkill_under_load_loses_no_acknowledged_event(
    tmp_path: Path, database_url: str | None
) -> None:
    server = PartiturServer(tmp_path / "data", database_url=database_url)
    try:
        server.start()
        key = server.create_write_key("crash")
        acked: list[dict[str, Any]] = []
        unacked: list[dict[str, Any]] = []
        for round_ in range(2):
            load = Load(server.url, key, round_)
            threads = load.start()
            deadline = time.monotonic() + KILL_DEADLINE
            while len(load.acked) < KILL_AFTER and time.monotonic() < deadline:
                time.sleep(0.01)
            server.kill()  # mid-load: requests are in flight, some commits half done
            load.stop.set()
            for t in threads:
                t.join(timeout=60)
                assert not t.is_alive()
            assert load.acked, f"nothing was acknowledged before the kill:\n{server.log()}"
            acked += load.acked
            unacked += load.unacked

            server.start()  # the same data, a new process
            # A batch in flight at the kill is either wholly stored (committed, not yet
            # answered) or not at all.
            counts = stored_counts(server)
            for batch in load.unacked:
                assert len({mid in counts for mid in ids(batch)}) == 1, "half a batch stored"
            # Clients retry: every other acknowledged batch, and all that were not.
            for batch in load.acked[::2] + load.unacked:
                reply = http("POST", f"{server.url}/v1/batch", batch, key=key)
                assert reply.status == 200, reply.body

        counts = stored_counts(server)
        sent = {mid for batch in acked + unacked for mid in ids(batch)}
        assert all(n == 1 for n in counts.values()), "an event was stored twice"
        missing = [mid for batch in acked for mid in ids(batch) if mid not in counts]
        assert missing == [], f"{len(missing)} acknowledged events lost, e.g. {missing[:3]}"
        retried = [mid for batch in unacked for mid in ids(batch) if mid not in counts]
        assert retried == [], "a retried batch was not stored"
        assert set(counts) == sent  # nothing foreign, nothing invented

        wait_processed(server)
        with server.services() as services, services.db.read() as tx:
            assert services.events.backlog(tx) == 0
            assert services.events.count(tx) == len(sent)
        assert server.stop() == 0
        server.assert_clean_log()
    finally:
        server.close()
