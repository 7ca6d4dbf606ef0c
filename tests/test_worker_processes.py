"""``worker_processes``: ``partitur serve`` keeps the API in its own process and starts
``partitur worker`` children for profiles, journeys and analytics; a child that dies is
started again, and the children stop with the server (also when it is killed)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from partitur.errors import InvalidInput
from partitur.settings import load_settings
from partitur.worker.processes import plan
from tests.helpers import PartiturServer, http


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _health(server: PartiturServer) -> dict[str, Any]:
    body: dict[str, Any] = http("GET", f"{server.url}/health").json()
    return body


def _children(server: PartiturServer) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in _health(server)["worker_processes"]}


def _until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _send(server: PartiturServer, key: str, people: range, event: str) -> None:
    batch = []
    for n in people:
        batch.append({"type": "identify", "userId": f"u{n}", "anonymousId": f"a{n}",
                      "traits": {"email": f"p{n}@example.com", "n": n}})
        batch.append({"type": "track", "anonymousId": f"a{n}", "event": event})
    assert http("POST", f"{server.url}/v1/batch", {"batch": batch}, key=key).status == 200


def test_the_layout_of_the_children(tmp_path: Path) -> None:
    def layout(**values: Any) -> list[tuple[str, list[str]]]:
        settings = load_settings(tmp_path, environ={}, **values)
        return [(c.name, c.args) for c in plan(settings)]

    assert layout(worker_processes=1) == [("events-0", ["--role", "events"]),
                                          ("analytics", ["--role", "analytics"])]
    assert layout(worker_processes=2, database_url="postgresql://h/db", partitions=256,
                  analytics_enabled=False) == [
        ("events-0", ["--role", "events", "--parts", "0:128"]),
        ("events-1", ["--role", "events", "--parts", "128:256"])]
    # partitur serve's defaults: one events process and the projector's, with the system
    # clock only; an app built in-process starts only what is asked for explicitly.
    settings = load_settings(tmp_path, environ={})
    assert [(c.name, c.args) for c in plan(settings, serving=True)] == [
        ("events-0", ["--role", "events"]), ("analytics", ["--role", "analytics"])]
    assert plan(settings) == []
    assert plan(load_settings(tmp_path, environ={}, clock="manual"), serving=True) == []
    assert [c.name for c in plan(load_settings(tmp_path, environ={}, worker_processes=0),
                                 serving=True)] == ["analytics"]
    assert plan(load_settings(tmp_path, environ={}, worker_processes=0,
                              analytics_process=False), serving=True) == []
    assert [c.name for c in plan(load_settings(tmp_path, environ={}, analytics_enabled=False),
                                 serving=True)] == ["events-0"]
    with pytest.raises(InvalidInput, match="needs PostgreSQL"):
        layout(worker_processes=2)
    with pytest.raises(InvalidInput, match="system clock"):
        layout(worker_processes=1, clock="manual")


@pytest.mark.serial
def test_with_worker_processes_0_the_server_keeps_the_worker_and_projects_in_a_child(
    tmp_path: Path, database_url: str | None
) -> None:
    server = PartiturServer(tmp_path / "data", database_url=database_url,
                            settings={"analytics_flush_seconds": "0.2", "worker_processes": 0})
    try:
        server.start()
        with server.services() as services:
            admin = services.keys.create_admin_key("test")
        key = server.create_write_key("web")
        children = _until(lambda: _children(server), 30, "the children")
        assert list(children) == ["analytics"]
        assert children["analytics"]["running"]
        assert children["analytics"]["pid"] != server.proc.pid  # type: ignore[union-attr]

        _send(server, key, range(30), "Joined")
        _until(lambda: _health(server)["backlog"] == 0, 60, "the backlog to drain")

        def joined() -> bool:
            reply = http("POST", f"{server.url}/api/v1/analytics/funnel",
                         {"steps": [{"event": "Joined"}]},
                         headers={"Authorization": f"Bearer {admin}"})
            return reply.status == 200 and reply.json()["steps"][0]["count"] == 30
        _until(joined, 30, "analytics to count the 30 people")
        pid = children["analytics"]["pid"]
        assert server.stop() == 0
        _until(lambda: not _alive(pid), 30, "the child to stop")
        server.assert_clean_log()
    finally:
        server.close()


@pytest.mark.serial
def test_children_do_the_work_are_restarted_and_stop_with_the_server(
    tmp_path: Path, database_url: str | None
) -> None:
    count = 2 if database_url else 1
    server = PartiturServer(tmp_path / "data", database_url=database_url, settings={
        "worker_processes": count, "analytics_flush_seconds": "0.2"})
    try:
        server.start()
        with server.services() as services:
            admin = services.keys.create_admin_key("test")
        key = server.create_write_key("web")
        auth = {"Authorization": f"Bearer {admin}"}
        children = _until(lambda: _children(server), 30, "the children")
        assert sorted(children) == sorted([*(f"events-{n}" for n in range(count)), "analytics"])
        assert all(c["running"] and c["pid"] != server.proc.pid  # type: ignore[union-attr]
                   for c in children.values())

        _send(server, key, range(40), "Joined")
        _until(lambda: _health(server)["backlog"] == 0, 60, "the backlog to drain")
        found = http("GET", f"{server.url}/api/v1/profiles/lookup?type=email&value="
                     "p7%40example.com", headers=auth)
        assert found.status == 200, found.body
        assert found.json()["traits"]["n"] == 7

        def joined() -> bool:
            reply = http("POST", f"{server.url}/api/v1/analytics/funnel",
                         {"steps": [{"event": "Joined"}]}, headers=auth)
            return reply.status == 200 and reply.json()["steps"][0]["count"] == 40
        _until(joined, 30, "analytics to count the 40 people")

        # A child killed is started again and goes on with the work.
        victim = children["events-0"]["pid"]
        os.kill(victim, 9)
        again = _until(lambda: (c := _children(server)["events-0"])["restarts"] == 1
                       and c["running"] and c, 30, "the child to be started again")
        assert again["pid"] != victim
        _send(server, key, range(40, 60), "Joined")
        _until(lambda: _health(server)["backlog"] == 0, 60, "the backlog to drain")

        # Stopped with the server.
        pids = [c["pid"] for c in _children(server).values()]
        assert server.stop() == 0
        _until(lambda: not any(_alive(p) for p in pids), 30, "the children to stop")

        # Killed with the server: they notice and stop on their own.
        server.start()
        pids = [c["pid"] for c in _until(lambda: _children(server), 30, "children").values()]
        assert all(_alive(p) for p in pids)
        server.kill()
        _until(lambda: not any(_alive(p) for p in pids), 30, "orphaned children to stop")
        server.assert_clean_log()
    finally:
        server.close()


def test_a_nudge_wakes_the_worker_and_the_end_of_the_pipe_stops_it() -> None:
    import threading

    from partitur.worker.standalone import _read_nudges

    read_end, write_end = os.pipe()
    wake, stop = threading.Event(), threading.Event()
    reader = threading.Thread(target=_read_nudges, args=(read_end, wake, stop), daemon=True)
    reader.start()
    try:
        assert not wake.wait(0.2)
        os.write(write_end, b"\n")  # what the server writes after a commit
        assert wake.wait(5)
        assert not stop.is_set()
    finally:
        os.close(write_end)  # the server has gone
    assert stop.wait(5)
    reader.join(timeout=5)
    os.close(read_end)
