"""The demo: its workspace, its simulated population through the real tracking API, and
``partitur serve --demo`` as a real server, started twice on the same data directory."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.channels.events import SOURCE_NAME as CHANNEL_SOURCE
from partitur.clock import ManualClock
from partitur.demo import (
    ADMIN_TOKEN,
    PLAN_POLICY,
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
from tests.helpers import PartiturServer, free_port, http


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
    services.keys.update_source("crm", plan_policy={"unplanned_events": "block"})
    again = ensure_workspace(make_services())
    assert first.write_keys == again.write_keys == WRITE_KEYS
    assert first.admin_token == again.admin_token == ADMIN_TOKEN
    assert (first.plan, again.plan) == ("version 1 (applied)", "version 1 (unchanged)")
    assert len(services.keys.list_keys()) == len(WRITE_KEYS) + 1
    policies = {s.name: s.plan_policy for s in services.keys.list_sources()}
    policies.pop(CHANNEL_SOURCE, None)  # where delivery events come from, made on first send
    assert policies.keys() == WRITE_KEYS.keys()
    assert policies.pop("crm") == {"unplanned_events": "block"}, "an operator's choice stays"
    assert all(p == PLAN_POLICY for p in policies.values())
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for source, key in WRITE_KEYS.items():
        r = client.post("/v1/track", json={"writeKey": key, "userId": "u", "event": "Pinged"})
        assert r.status_code == 200, (source, r.text)
    r = client.get("/api/v1/tracking-plan", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    # An event outside the plan is flagged and kept by three sources, blocked by the CRM.
    r = client.get("/api/v1/tracking-plan/rejected", params={"event": "Pinged"}, headers=admin)
    actions = sorted(item["action"] for item in r.json()["rejected"])
    assert actions == ["blocked", "flagged", "flagged", "flagged"]


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
    sent: list[dict[str, Any]] = []
    for _ in range(40):
        clock.advance(timedelta(seconds=30))
        by_source: dict[str, list[dict[str, Any]]] = {}
        for item in population.tick(clock.now_us(), 40):
            by_source.setdefault(item.source, []).append(item.message)
            sent.append(item.message)
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

    # Everything the population sends is in the plan and valid, except the deliberate mistakes
    # (an app build that sends prices as text), which the plan flags.
    mistakes = sum(isinstance(m.get("properties", {}).get("price"), str) for m in sent)
    assert mistakes, "the simulation includes a few plan violations to look at"
    r = client.get("/api/v1/tracking-plan/violations", headers=admin)
    assert r.status_code == 200, r.text
    assert [(v["event"], v["rule"], v["count"]) for v in r.json()["violations"]] == [
        ("Product Viewed", "schema", mistakes)
    ]


def test_simulator_runs_only_while_the_app_runs(make_services: Any) -> None:
    # A port nobody listens on: the simulator must not reach any other server meanwhile.
    services = make_services(port=free_port())
    app = create_app(services=services)
    lines: list[str] = []
    simulator = setup_demo(app, services, echo=lines.append)
    assert ADMIN_TOKEN in lines[0] and WRITE_KEYS["web"] in lines[0]
    assert not simulator.running
    with TestClient(app):
        assert simulator.running
    assert not simulator.running


# -- the real server ---------------------------------------------------------------------------


def demo_server(data: Path, database_url: str | None = None) -> PartiturServer:
    """``partitur serve --demo`` in a subprocess (not yet started)."""
    return PartiturServer(data, database_url=database_url, args=["--demo"])


def printed_keys(log: str) -> tuple[dict[str, str], str]:
    """The write keys by source and the admin token, as the banner shows them."""
    token = re.search(r"^  admin token +(\S+)$", log, re.M)
    keys = dict(re.findall(r"^ {2}(?:write key)? +(\w+) +(\S+)$", log, re.M))
    assert token, log
    return keys, token.group(1)


def profile_count(server: PartiturServer, token: str) -> int:
    reply = http(
        "GET",
        f"{server.url}/api/v1/profiles?trait=plan&value=free&limit=500",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status == 200, reply.body
    return len(reply.json()["profiles"])


@pytest.mark.serial
def test_serve_demo_twice_on_the_same_data(tmp_path: Path, database_url: str | None) -> None:
    server = demo_server(tmp_path / "demo", database_url)
    seen: list[int] = []
    try:
        for _ in range(2):
            server.start()
            store = http("GET", f"{server.url}/health").json()["store"]
            assert store == ("postgres" if database_url else "sqlite")
            keys, token = printed_keys(server.log())
            assert keys == WRITE_KEYS and token == ADMIN_TOKEN, server.log()
            assert f"curl -u {keys['web']}: {server.url}/v1/identify" in server.log()
            # The printed keys work...
            for source, key in keys.items():
                event = {"userId": f"tester-{source}", "event": "Pinged"}
                reply = http("POST", f"{server.url}/v1/track", event, key=key)
                assert reply.status == 200, reply.body
            # ...and the simulated people arrive (about 4 events/s; sign-ups within seconds).
            deadline = time.monotonic() + 60
            count = profile_count(server, token)
            while count <= (seen[-1] if seen else 0) and time.monotonic() < deadline:
                time.sleep(0.5)
                count = profile_count(server, token)
            seen.append(count)
            assert server.stop() == 0, server.log()
            server.assert_clean_log()
    finally:
        server.close()
    assert seen[1] > seen[0] > 0
