"""The journey API: drafts and errors, schema, versions with migration, status changes,
test runs and simulations, the clock route, and timers that survive a restart."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.clock import ManualClock
from partitur.services import Services
from partitur.worker import ProfileWorker
from tests.journeys.conftest import ROOT, Env, example

H = 3600


def test_bad_draft_is_a_400_naming_the_step(env: Env) -> None:
    doc = example("welcome")
    doc["steps"][3]["variants"][1]["weight"] = 0
    r = env.client.put("/api/v1/journeys/welcome", json=doc, headers=env.admin)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "invalid_journey"
    assert error["message"].startswith("step 'split': steps[3].variants[1].weight:")
    assert error["details"][0]["step"] == "split"
    r = env.client.put("/api/v1/journeys/welcome", content=b"{nope", headers=env.admin)
    assert r.status_code == 400
    assert env.client.put("/api/v1/journeys/welcome", json=doc).status_code == 401


def test_yaml_draft_and_missing_templates_block_publishing(env: Env) -> None:
    text = (ROOT / "examples/journeys/welcome.yaml").read_bytes()
    r = env.client.put("/api/v1/journeys/welcome", content=text,
                       headers={**env.admin, "Content-Type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert any("missing template 'welcome-email'" in w for w in r.json()["warnings"])
    r = env.client.post("/api/v1/journeys/welcome/publish", headers=env.admin)
    assert r.status_code == 400
    assert "step 'welcome'" in r.json()["error"]["message"]
    env.templates()
    assert env.publish("welcome")["version"] == 1
    body = env.client.get("/api/v1/journeys/welcome", headers=env.admin).json()
    assert body["status"] == "live" and body["live_version"] == 1
    assert body["draft"]["key"] == "welcome"
    listed = env.client.get("/api/v1/journeys", headers=env.admin).json()["journeys"]
    assert [j["key"] for j in listed] == ["welcome"]


def test_schema_is_published_and_accepts_the_examples(env: Env) -> None:
    r = env.client.get("/api/v1/schemas/journey.json")
    assert r.status_code == 200
    validator = jsonschema_rs.validator_for(r.json())
    for path in sorted((ROOT / "examples/journeys").glob("*.yaml")):
        assert validator.is_valid(yaml.safe_load(path.read_text())), path.name
    bad = example("welcome")
    bad["steps"][0]["type"] = "teleport"
    assert not validator.is_valid(bad)


def test_publish_reports_waiting_people_and_migrates(env: Env) -> None:
    env.templates()
    env.live(example("welcome"))
    kari = env.identify("kari", plan="free")
    ola = env.identify("ola", plan="free")
    env.track("kari", "User Registered")
    env.track("ola", "User Registered")
    doc = example("welcome")
    doc["steps"][1]["timeout"] = "48h"  # wait-order changed
    env.put(doc)
    report = env.publish("welcome", dry_run=True)
    assert report["dry_run"] is True and report["version"] == 2
    assert report["report"] == [{"version": 1, "step": "wait-order", "waiting": 2,
                                 "change": "changed"}]
    assert env.client.get("/api/v1/journeys/welcome",
                          headers=env.admin).json()["live_version"] == 1
    result = env.publish("welcome")  # let them finish on version 1
    assert result["migrated"] == 0
    env.advance(24 * H)  # version 1's 24 h timeout still applies to them
    assert {i["version"] for i in env.where(kari)} == {1}
    assert env.where(kari)[0]["step"] != "wait-order"
    env.identify("eva", plan="free")
    env.track("eva", "User Registered")
    doc["steps"][1]["timeout"] = "72h"
    env.put(doc)
    still_on_1 = [i for p in (kari, ola) for i in env.where(p) if i["status"] == "active"]
    moved = env.publish("welcome", migrate=True)
    assert moved["version"] == 3 and moved["migrated"] == 1 + len(still_on_1)
    eva = env.profile_of("eva")
    [inst] = env.where(eva)
    assert inst["version"] == 3 and inst["step"] == "wait-order"
    assert ola != kari


def test_removed_step_people_stay_on_their_version(env: Env) -> None:
    env.templates()
    env.live(example("welcome"))
    kari = env.identify("kari", plan="free")
    env.track("kari", "User Registered")
    doc = example("welcome")
    doc["steps"][0]["next"] = "done"
    doc["steps"] = [s for s in doc["steps"] if s["id"] in ("welcome", "done")]
    env.put(doc)
    result = env.publish("welcome", migrate=True)
    assert result["report"][0]["change"] == "removed" and result["migrated"] == 0
    assert env.where(kari)[0]["version"] == 1


def test_pause_holds_timers_and_entries_resume_fires_them(env: Env) -> None:
    env.templates()
    env.live(example("welcome"))
    kari = env.identify("kari", plan="pro")
    env.identify("ola", plan="pro")
    env.track("kari", "User Registered")
    r = env.client.post("/api/v1/journeys/welcome/pause", headers=env.admin)
    assert r.status_code == 200 and r.json()["status"] == "paused"
    env.track("ola", "User Registered")
    assert env.where(env.profile_of("ola")) == []
    assert env.advance(25 * H)["fired"] == 0
    assert env.where(kari)[0]["step"] == "wait-order"
    env.client.post("/api/v1/journeys/welcome/resume", headers=env.admin)
    assert env.advance(1)["fired"] == 1
    assert env.where(kari)[0]["status"] == "completed"


def test_archive_ends_everyone(env: Env) -> None:
    env.templates()
    env.live(example("welcome"))
    kari = env.identify("kari")
    env.track("kari", "User Registered")
    r = env.client.post("/api/v1/journeys/welcome/archive", headers=env.admin)
    assert r.status_code == 200 and r.json()["halted"] == 1
    [inst] = env.where(kari)
    assert inst["status"] == "exited" and inst["exit_reason"] == "journey archived"
    assert env.client.post("/api/v1/journeys/welcome/resume",
                           headers=env.admin).status_code == 409
    assert env.client.post("/api/v1/journeys/nope/pause", headers=env.admin).status_code == 404


def test_test_run_of_a_stored_person_sends_only_to_the_test_address(env: Env) -> None:
    env.templates()
    env.put(example("welcome"))  # a draft: nobody enters it for real
    kari = env.identify("kari", plan="free")
    r = env.client.post("/api/v1/journeys/welcome/test", headers=env.admin,
                        json={"profile_id": kari, "to": "qa@example.com"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed"
    kinds = [p["kind"] for p in body["path"] if "kind" in p]
    assert kinds[:4] == ["enter", "send", "wait_for_event", "timeout"]
    assert "split" in kinds
    queued = [m for m in body["messages"] if m["queued"]]
    assert queued and all(m["to"] == "qa@example.com" for m in queued)
    with env.services.db.read() as tx:
        rows = tx.execute("SELECT key, recipient, category FROM outbox")
    assert {r[1] for r in rows} == {"qa@example.com"}
    assert all(r[0].startswith("test:") and r[2] == "transactional" for r in rows)
    assert env.where(kari) == []  # no real instance


def test_test_run_of_a_synthetic_person_with_events(env: Env) -> None:
    env.put(example("welcome"))
    r = env.client.post("/api/v1/journeys/welcome/test", headers=env.admin, json={
        "person": {"traits": {"plan": "free"}},
        "events": [{"event": "Order Completed", "after": "2h"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["converted"] is True and body["exit_reason"] == "goal reached"
    assert all(not m["queued"] for m in body["messages"])
    bad = env.client.post("/api/v1/journeys/welcome/test", headers=env.admin,
                          json={"bogus": 1})
    assert bad.status_code == 400


def test_simulate_replays_stored_events_without_sending(env: Env) -> None:
    env.templates()
    for i in range(6):
        env.identify(f"u{i}", plan="pro" if i % 2 else "free")
    start = env.clock.now()
    env.send(*[{"type": "track", "userId": f"u{i}", "event": "User Registered"}
               for i in range(6)])
    env.send({"type": "track", "userId": "u0", "event": "Order Completed"})
    env.process()
    env.put(example("welcome"))
    r = env.client.post("/api/v1/journeys/welcome/simulate", headers=env.admin, json={
        "from": start.isoformat(), "to": "2026-02-01"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["entered"] == 6 and body["converted"] == 1 and body["sent"] == 0
    steps = {s["step"]: s for s in body["steps"]}
    assert steps["welcome"]["reached"] == 6 and steps["welcome"]["messages"] == 6
    assert steps["branch-plan"]["reached"] == 5
    assert steps["split"]["reached"] == 2  # the free ones that did not order
    assert env.outbox() == []
    bad = env.client.post("/api/v1/journeys/welcome/simulate", headers=env.admin,
                          json={"from": "2026-02-01", "to": "2026-01-01"})
    assert bad.status_code == 400


def test_clock_route_only_with_a_manual_clock(make_services: Any) -> None:
    services: Services = make_services(worker_enabled=False)
    token = services.keys.create_admin_key("t")
    with TestClient(create_app(services=services)) as client:
        r = client.post("/api/v1/clock/advance", json={"seconds": 5},
                        headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 404


def test_clock_route_checks_input(env: Env) -> None:
    for bad in ({"seconds": -1}, {"seconds": "5"}, {}):
        r = env.client.post("/api/v1/clock/advance", json=bad, headers=env.admin)
        assert r.status_code == 400
    assert env.client.post("/api/v1/clock/advance", json={"seconds": 1}).status_code == 401


def test_timers_survive_a_restart(make_services: Any, clock: ManualClock,
                                  tmp_path: Path) -> None:
    first: Services = make_services(worker_enabled=False, clock="manual")
    key, _ = first.keys.create_write_key("web")
    token = first.keys.create_admin_key("t")
    admin = {"Authorization": f"Bearer {token}"}
    doc = {"key": "later", "trigger": {"event": "Signed Up"}, "steps": [
        {"id": "w", "type": "wait", "duration": "30d", "next": "mail"},
        {"id": "mail", "type": "send", "channel": "email",
         "template": {"subject": "Hi", "text": "Month one"}, "next": "end"},
        {"id": "end", "type": "exit"}]}
    with TestClient(create_app(services=first)) as client:
        assert client.put("/api/v1/journeys/later", json=doc, headers=admin).status_code == 201
        client.post("/api/v1/journeys/later/publish", headers=admin)
        client.post("/v1/batch", json={"writeKey": key, "batch": [
            {"type": "track", "userId": f"p{i}", "event": "Signed Up"} for i in range(5)]})
        ProfileWorker(first).drain()
    first.close()
    second: Services = make_services(worker_enabled=True, clock="manual",
                                     dispatcher_enabled=False)
    with TestClient(create_app(services=second)) as client:
        clock.advance(__import__("datetime").timedelta(days=30, seconds=1))
        runner = second.extra["journey_runner"]
        runner.kick.set()
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with second.db.read() as tx:
                sent = tx.one("SELECT COUNT(*) FROM outbox")
            if sent and sent[0] == 5:
                break
            time.sleep(0.05)
        assert sent is not None and sent[0] == 5
        r = client.get("/api/v1/journeys/later/stats", headers=admin)
        assert r.json()["steps"][1] == {"step": "mail", "entered": 5, "waiting": 0,
                                        "exited": 0, "converted": 0}
    assert copy.copy(doc)["key"] == "later"


@pytest.mark.parametrize("seconds", [1.5])
def test_short_wait_fires_on_time_with_the_runner(make_services: Any, seconds: float) -> None:
    """A real clock: a wait of 1.5 s is sent within a second of its wake time."""
    import time

    services: Services = make_services(worker_enabled=True, dispatcher_enabled=False)
    services.clock = __import__("partitur.clock", fromlist=["SystemClock"]).SystemClock()
    services.extra["journeys"].clock = services.clock
    key, _ = services.keys.create_write_key("web")
    token = services.keys.create_admin_key("t")
    admin = {"Authorization": f"Bearer {token}"}
    doc = {"key": "quick", "trigger": {"event": "Go"}, "steps": [
        {"id": "w", "type": "wait", "duration": "2s", "next": "mail"},
        {"id": "mail", "type": "send", "channel": "email",
         "template": {"subject": "Hi", "text": "now"}}]}
    with TestClient(create_app(services=services)) as client:
        client.put("/api/v1/journeys/quick", json=doc, headers=admin)
        client.post("/api/v1/journeys/quick/publish", headers=admin)
        client.post("/v1/batch", json={"writeKey": key, "batch": [
            {"type": "track", "userId": "a", "event": "Go"}]})
        deadline = time.monotonic() + 10
        wake = None
        while time.monotonic() < deadline and wake is None:
            with services.db.read() as tx:
                row = tx.one("SELECT wake_at FROM journey_instances")
            wake = row[0] if row else None
            time.sleep(0.01)
        assert wake is not None
        created = None
        while time.monotonic() < deadline and created is None:
            with services.db.read() as tx:
                row = tx.one("SELECT created_at FROM outbox")
            created = row[0] if row else None
            time.sleep(0.01)
        assert created is not None
        late = (int(created) - int(wake)) / 1e6
        assert 0 <= late < 1.0, late
    assert seconds > 0


def test_test_run_options_are_checked(env: Env) -> None:
    env.put(example("welcome"))
    for options in ({"version": "latest"}, {"version": 7}, {"events": "x"}, {"to": 5}):
        r = env.client.post("/api/v1/journeys/welcome/test", headers=env.admin, json=options)
        assert r.status_code in (400, 404), (options, r.text)
    assert env.client.get("/api/v1/journeys/nope", headers=env.admin).status_code == 404
    r = env.client.post("/api/v1/journeys/welcome/simulate", headers=env.admin,
                        json={"from": "2026-01-01", "to": "2026-01-02", "version": "x"})
    assert r.status_code == 400
