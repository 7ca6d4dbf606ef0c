"""Several processes on one PostgreSQL: the server and two ``partitur worker`` processes share
people and timers; one worker is killed mid-way; nobody is processed twice, no timer is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from partitur.services import build_services
from partitur.settings import load_settings
from tests.conftest import PG_SKIP_REASON, PG_URL, pg_schema_url
from tests.helpers.server import PartiturServer, http

PEOPLE = 300
JOURNEY = {
    "key": "two-mails", "trigger": {"event": "Joined"},
    "steps": [
        {"id": "hello", "type": "send", "channel": "email",
         "template": {"subject": "Hello", "text": "Welcome"}, "next": "pause"},
        {"id": "pause", "type": "wait", "duration": "3s", "next": "again"},
        {"id": "again", "type": "send", "channel": "email",
         "template": {"subject": "Again", "text": "Still here"}},
    ],
}
SETTINGS = {"dispatcher_enabled": "false", "journeys_tick_seconds": "0.2",
            "journeys_batch": "20", "worker_batch": "25"}


def _worker(data_dir: Path, url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTITUR_")}
    env.update({f"PARTITUR_{k.upper()}": v for k, v in SETTINGS.items()})
    env["PARTITUR_DATABASE_URL"] = url
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "partitur", "worker", "--data", str(data_dir)],
            stdout=out, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    yield from pg_schema_url()


@pytest.mark.serial
@pytest.mark.postgres
def test_two_workers_and_a_server_share_people_and_timers(pg_url: str, tmp_path: Path) -> None:
    database_url = pg_url
    data_dir = tmp_path / "data"
    services = build_services(load_settings(data_dir, environ={}, database_url=database_url))
    try:
        services.extra["journeys"].put(JOURNEY)
        services.extra["journeys"].publish("two-mails")
        key, _ = services.keys.create_write_key("web")
    finally:
        services.close()
    workers = [_worker(data_dir, database_url, tmp_path / f"worker{i}.log") for i in (1, 2)]
    server = PartiturServer(data_dir, database_url=database_url, settings=SETTINGS)
    try:
        server.start()
        for start in range(0, PEOPLE, 50):
            batch = [{"type": "track", "userId": f"u{i}", "event": "Joined"}
                     for i in range(start, start + 50)]
            assert http("POST", f"{server.url}/v1/batch", {"batch": batch},
                        key=key).status == 200
            if start == 100:
                time.sleep(0.5)
                workers[0].send_signal(signal.SIGKILL)  # a crash, mid-way
                workers[0].wait(timeout=30)
        deadline = time.monotonic() + 90
        done = 0
        check = build_services(load_settings(data_dir, environ={},
                                             database_url=database_url))
        try:
            while time.monotonic() < deadline:
                with check.db.read() as tx:
                    row = tx.one("SELECT COUNT(*) FROM journey_instances "
                                 "WHERE status = 'completed'")
                done = int(row[0]) if row else 0
                if done == PEOPLE:
                    break
                time.sleep(0.2)
            assert done == PEOPLE, (done, server.log()[-2000:])
            with check.db.read() as tx:
                per_person = tx.execute(
                    "SELECT profile_id, kind, COUNT(*) FROM journey_path "
                    "GROUP BY profile_id, kind")
                stats = dict(((s, m), v) for s, m, v in tx.execute(
                    "SELECT step, metric, value FROM journey_stats WHERE journey = ?",
                    ("two-mails",)))
                messages = tx.one("SELECT COUNT(*), COUNT(DISTINCT key) FROM outbox")
                instances = tx.one("SELECT COUNT(*), COUNT(DISTINCT profile_id) "
                                   "FROM journey_instances")
        finally:
            check.close()
        assert instances == (PEOPLE, PEOPLE)
        assert {(kind, n) for _, kind, n in per_person} == {
            ("enter", 1), ("send", 2), ("wait", 1), ("wake", 1), ("complete", 1)}
        assert len({pid for pid, _, _ in per_person}) == PEOPLE
        assert stats[("", "entered")] == PEOPLE
        assert stats[("again", "entered")] == PEOPLE
        assert messages == (2 * PEOPLE, 2 * PEOPLE)
    finally:
        server.close()
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
