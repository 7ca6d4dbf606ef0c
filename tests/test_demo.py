"""The demo: its workspace, its simulated population through the real tracking API, and
``partitur serve --demo`` as a real server, started twice on the same data directory."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.clock import ManualClock
from partitur.demo import (
    ADMIN_TOKEN,
    WRITE_KEYS,
    Population,
    Simulator,
    ensure_workspace,
    setup_demo,
)
from partitur.demo.sender import loopback_url
from partitur.errors import InvalidInput
from partitur.services import Services
from tests.conftest import wait_processed


def test_population_is_deterministic_from_its_seed() -> None:
    def story(seed: int) -> list[Any]:
        population = Population(seed=seed, size=50, run="r")
        return [
            (item.source, item.message)
            for tick in range(20)
            for item in population.tick(1_800_000_000_000_000 + tick * 1_000_000, 10)
        ]

    first = story(11)
    assert first == story(11)
    assert first != story(12)
    assert len({m["messageId"] for _, m in first}) == len(first)
    assert {source for source, _ in first} <= set(WRITE_KEYS)


def test_tick_respects_the_budget_up_to_one_session() -> None:
    population = Population(seed=1, size=20)
    assert population.tick(0, 0) == []
    for budget in (1, 5, 40):
        batch = population.tick(0, budget)
        assert budget <= len(batch) < budget + 12


def test_workspace_is_idempotent_and_its_keys_work(
    make_services: Any, client: TestClient, services: Services
) -> None:
    first = ensure_workspace(services)
    again = ensure_workspace(make_services())
    assert first.write_keys == again.write_keys == WRITE_KEYS
    assert first.admin_token == again.admin_token == ADMIN_TOKEN
    assert {s.name for s in services.keys.list_sources()} == set(WRITE_KEYS)
    assert len(services.keys.list_keys()) == len(WRITE_KEYS) + 1
    for source, key in WRITE_KEYS.items():
        r = client.post("/v1/track", json={"writeKey": key, "userId": "u", "event": "Pinged"})
        assert r.status_code == 200, (source, r.text)
    r = client.get("/api/v1/sources", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 200, r.text


def test_demo_refuses_to_listen_beyond_loopback(make_services: Any) -> None:
    with pytest.raises(InvalidInput, match="loopback"):
        ensure_workspace(make_services(host="0.0.0.0"))
    with pytest.raises(InvalidInput, match="loopback"):
        ensure_workspace(make_services(host="192.0.2.10"))
    with pytest.raises(ValueError, match="loopback"):
        Simulator("http://192.0.2.10:8910", WRITE_KEYS, Population(size=1), ManualClock())
    assert loopback_url("localhost", 1) == "http://127.0.0.1:1"
    assert loopback_url("::1", 2) == "http://[::1]:2"


def test_simulated_people_become_profiles(
    client: TestClient, services: Services, clock: ManualClock
) -> None:
    """Every event the population sends is accepted, and the profiles tell its story."""
    ensure_workspace(services)
    population = Population(seed=5, size=40)
    for _ in range(40):
        clock.advance(timedelta(seconds=30))
        by_source: dict[str, list[dict[str, Any]]] = {}
        for item in population.tick(clock.now_us(), 40):
            by_source.setdefault(item.source, []).append(item.message)
        for source, batch in by_source.items():
            r = client.post("/v1/batch", json={"writeKey": WRITE_KEYS[source], "batch": batch})
            assert r.status_code == 200, r.text
    wait_processed(services)

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    known = [p for p in population.people if p.signed_up]
    two_devices = [p for p in known if sum(d.signed_in for d in p.devices) == 2]
    buyers = [p for p in known if p.orders]
    assert known and two_devices and buyers, "the story should cover sign-ups, devices, orders"
    for person in known:
        r = client.get(
            "/api/v1/profiles/lookup",
            params={"type": "email", "value": person.email},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        profile = r.json()
        ids = {(i["type"], i["value"]) for i in profile["identifiers"]}
        assert ("user_id", person.user_id) in ids
        for device in person.devices:
            if device.signed_in:
                assert ("anonymous_id", device.anonymous_id) in ids
                if device.device_id:
                    assert ("device_id", device.device_id) in ids
        assert {k: v["granted"] for k, v in profile["consent"].items()} == person.consent
        assert profile["traits"]["email"] == person.email
        if person.orders:
            assert profile["traits"]["lifecycle_stage"] == "customer"
            assert ("phone", person.phone.replace(" ", "")) in ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_simulator_runs_only_while_the_app_runs(services: Services) -> None:
    app = create_app(services=services)
    lines: list[str] = []
    simulator = setup_demo(app, services, echo=lines.append)
    assert ADMIN_TOKEN in lines[0] and WRITE_KEYS["web"] in lines[0]
    assert not simulator.running
    with TestClient(app):
        assert simulator.running
    assert not simulator.running


# -- the real server ---------------------------------------------------------------------------


def http(
    url: str, *, token: str | None = None, key: str | None = None, body: Any = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    if key:
        basic = base64.b64encode(f"{key}:".encode()).decode()
        request.add_header("Authorization", f"Basic {basic}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class DemoServer:
    def __init__(self, data: Path, log: Path, database_url: str | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARTITUR_")}
        if database_url:
            env["PARTITUR_DATABASE_URL"] = database_url
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "partitur",
                    "serve",
                    "--demo",
                    "--data",
                    str(data),
                    "--port",
                    str(self.port),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def wait_ready(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if http(f"{self.base}/health")[0] == 200:
                    return self.log.read_text()
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready in {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def profiles(server: DemoServer, token: str) -> list[Any]:
    status, body = http(
        f"{server.base}/api/v1/profiles?trait=plan&value=free&limit=500", token=token
    )
    assert status == 200, body
    return list(body["profiles"])


@pytest.mark.serial
def test_serve_demo_twice_on_the_same_data(tmp_path: Path, database_url: str | None) -> None:
    data = tmp_path / "demo"
    seen: list[int] = []
    for run in range(2):
        server = DemoServer(data, tmp_path / f"run{run}.log", database_url)
        try:
            printed = server.wait_ready()
            store = http(f"{server.base}/health")[1]["store"]
            assert store == ("postgres" if database_url else "sqlite")
            token = re.search(r"admin token\s+(\S+)", printed)
            keys = dict(re.findall(r"^ {2}(?:write key)? +(\w+) +(\S+)$", printed, re.M))
            assert token and keys.keys() == WRITE_KEYS.keys(), printed
            assert f"curl -u {keys['web']}: {server.base}/v1/identify" in printed
            # The printed keys work...
            for source, key in keys.items():
                status, body = http(
                    f"{server.base}/v1/track",
                    key=key,
                    body={"userId": f"tester-{source}", "event": "Pinged"},
                )
                assert status == 200, body
            # ...and the simulated people arrive (at about 4 events/s; sign-ups within seconds).
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                count = len(profiles(server, token.group(1)))
                if count > (seen[-1] if seen else 0):
                    break
                time.sleep(0.5)
            seen.append(count)
        finally:
            code = server.stop()
        assert code == 0, server.log.read_text()
        assert "Traceback" not in server.log.read_text()
    assert seen[1] > seen[0] > 0


def test_the_demo_sends_what_its_tracking_plan_describes() -> None:
    """Every event the population sends is in the plan and valid, except the deliberate
    mistakes (an app build that sends prices as text), which the plan catches."""
    import jsonschema_rs
    import yaml

    from partitur.demo.workspace import plan_text

    plan = yaml.safe_load(plan_text())
    schemas = {e["name"]: jsonschema_rs.validator_for(e["properties"]) for e in plan["events"]}
    traits = jsonschema_rs.validator_for(plan["identify"]["traits"])
    population = Population(seed=3, size=60, run="p")
    invalid: list[dict[str, Any]] = []
    calls: set[str] = set()
    for tick in range(60):
        for item in population.tick(tick * 1_000_000, 30):
            message = item.message
            calls.add(message["type"])
            if message["type"] == "track":
                assert message["event"] in schemas, message["event"]
                if not schemas[message["event"]].is_valid(message.get("properties", {})):
                    invalid.append(message)
            elif message["type"] == "identify":
                assert traits.is_valid(message["traits"]), message["traits"]
    assert calls == {"page", "screen", "track", "identify"}
    assert invalid, "the simulation includes a few plan violations to look at"
    for message in invalid:
        assert message["event"] == "Product Viewed"
        assert isinstance(message["properties"]["price"], str)
