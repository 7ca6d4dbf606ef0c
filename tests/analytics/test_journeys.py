"""Journey drop-off and experiments, from what the journey engine recorded while people went
through real journeys (HTTP ingestion, the worker, the manual clock's timers), on both stores."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from partitur.analytics.experiments import compare, srm
from partitur.app import create_app
from partitur.clock import ManualClock
from partitur.services import Services
from tests.analytics.conftest import Env

DROPOFF = {
    "key": "onboarding", "name": "Onboarding",
    "trigger": {"event": "Signed Up"},
    "goal": {"event": "Order Completed", "within": "14d"},
    "exit_when": [{"event": "Unsubscribed"}],
    "steps": [
        {"id": "wait-cart", "type": "wait_for_event", "event": "Product Added",
         "timeout": "1h", "on_event": "thanks", "on_timeout": "done"},
        {"id": "thanks", "type": "update_profile", "set": {"carted": True}, "next": "done"},
        {"id": "done", "type": "exit"},
    ],
}


def experiment_doc(weights: tuple[int, int]) -> dict[str, Any]:
    return {
        "key": "promo", "name": "Promo test",
        "trigger": {"event": "Signed Up"},
        "goal": {"event": "Order Completed", "within": "14d"},
        "steps": [
            {"id": "split", "type": "split", "variants": [
                {"name": "nudge", "weight": weights[0], "next": "nudge-wait"},
                {"name": "control", "weight": weights[1], "next": "done"}]},
            {"id": "nudge-wait", "type": "wait", "duration": "1h", "next": "done"},
            {"id": "done", "type": "exit"},
        ],
    }


@pytest.fixture
def env(make_services: Any, clock: ManualClock) -> Iterator[Env]:
    clock.set(datetime(2026, 3, 1, tzinfo=UTC))
    services: Services = make_services(worker_enabled=False, clock="manual",
                                       dispatcher_enabled=False)
    key, _ = services.keys.create_write_key("web")
    token = services.keys.create_admin_key("tests")
    with TestClient(create_app(services=services)) as client:
        yield Env(services, client, clock, key, {"Authorization": f"Bearer {token}"})


def live(env: Env, doc: dict[str, Any]) -> None:
    r = env.client.put(f"/api/v1/journeys/{doc['key']}", json=doc, headers=env.admin)
    assert r.status_code in (200, 201), r.text
    r = env.client.post(f"/api/v1/journeys/{doc['key']}/publish", json={}, headers=env.admin)
    assert r.status_code in (200, 201), r.text


def advance(env: Env, minutes: float) -> None:
    r = env.client.post("/api/v1/clock/advance", json={"seconds": minutes * 60},
                        headers=env.admin)
    assert r.status_code == 200, r.text
    env.process()


def now_event(user: str, event: str) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": event}


def test_dropoff_per_step_with_reasons_and_times(env: Env) -> None:
    live(env, DROPOFF)
    env.send(*(now_event(u, "Signed Up") for u in ("p1", "p2", "p3", "p4")))
    env.process()  # minute 0: four people wait for a cart
    advance(env, 10)
    env.send(now_event("p1", "Product Added"))  # minute 10: p1 moves on (600 s)
    env.process()
    advance(env, 10)
    env.send(now_event("p3", "Unsubscribed"))  # minute 20: p3 exits by the rule (1200 s)
    env.process()
    advance(env, 10)
    env.send(now_event("p4", "Order Completed"))  # minute 30: p4 reaches the goal (1800 s)
    env.process()
    advance(env, 20)
    env.send(now_event("p5", "Signed Up"))  # minute 50: p5 enters, times out at 110
    env.process()
    advance(env, 10)  # minute 60: p2 times out (3600 s) and goes to 'done'
    result = env.post("/api/v1/analytics/journey", {"journey": "onboarding"})
    steps = {s["id"]: s for s in result["steps"]}
    assert result["entered"] == 5
    wait = steps["wait-cart"]
    assert (wait["reached"], wait["moved_on"], wait["waiting"], wait["timed_out"],
            wait["exited"], wait["goal"]) == (5, 1, 1, 1, 1, 1)
    assert wait["dropped"] == 3
    assert wait["median_time_s"] == 1500.0  # of 600, 1200, 1800, 3600
    assert (steps["thanks"]["reached"], steps["thanks"]["moved_on"]) == (1, 1)
    assert (steps["done"]["reached"], steps["done"]["completed"]) == (2, 2)  # p1, p2
    waiting = env.post("/api/v1/analytics/people", {
        "source": "journey", "journey": "onboarding", "step": "wait-cart", "status": "waiting"})
    assert [p["profile_id"] for p in waiting["people"]] == [env.profile_of("p5")]
    fell = env.post("/api/v1/analytics/people", {
        "source": "journey", "journey": "onboarding", "step": "wait-cart",
        "status": "exited"})
    assert [p["profile_id"] for p in fell["people"]] == [env.profile_of("p3")]
    r = env.client.get("/api/v1/analytics/journeys/onboarding/dropoff?format=csv",
                       headers=env.admin)
    assert r.status_code == 200 and r.text.splitlines()[1].startswith("wait-cart,")


def test_experiment_arms_lift_and_sample_ratio_mismatch(env: Env) -> None:
    live(env, experiment_doc((50, 50)))
    users = [f"x{i}" for i in range(40)]
    env.send(*(now_event(u, "Signed Up") for u in users))
    env.process()
    arms: dict[str, str] = {}
    for u in users:
        r = env.client.get(f"/api/v1/profiles/{env.profile_of(u)}/journeys", headers=env.admin)
        [inst] = r.json()["journeys"]
        arms[u] = inst["arms"]["split"]
    # Nudged people with an even number order; in control, every fourth.
    buyers = [u for i, u in enumerate(users)
              if (arms[u] == "nudge" and i % 2 == 0) or (arms[u] == "control" and i % 4 == 0)]
    env.send(*(now_event(u, "Order Completed") for u in buyers))
    env.process()
    result = env.post("/api/v1/analytics/experiment", {"journey": "promo"})
    [split] = result["splits"]
    rows = {a["name"]: a for a in split["arms"]}
    for arm in ("nudge", "control"):
        members = [u for u in users if arms[u] == arm]
        assert rows[arm]["entered"] == len(members)
        assert rows[arm]["converted"] == len([u for u in buyers if arms[u] == arm])
    assert split["control"] == "control"
    nudge, control = rows["nudge"], rows["control"]
    assert nudge["vs_control"] == compare(nudge["converted"], nudge["entered"],
                                          control["converted"], control["entered"])
    assert split["warning"] is None or split["srm"]["p_value"] < 0.001
    assert "z-test" in result["method"]
    people = env.post("/api/v1/analytics/people", {
        "source": "experiment", "journey": "promo", "step": "split", "arm": "nudge",
        "converted": True})
    assert sorted(p["profile_id"] for p in people["people"]) == sorted(
        env.profile_of(u) for u in buyers if arms[u] == "nudge")
    # The live version now says 90/10, but the people entered 50/50: a mismatch.
    live(env, experiment_doc((90, 10)))
    warned = env.post("/api/v1/analytics/experiment", {"journey": "promo"})["splits"][0]
    assert warned["srm"]["mismatch"] is True
    assert warned["warning"].startswith("sample ratio mismatch: the arms got ")


def test_lift_intervals_and_p_value_on_a_textbook_case() -> None:
    # 60/100 against 40/100: difference 0.2, SE sqrt(.24/100 + .24/100) = 0.069282,
    # 95 % interval 0.2 -/+ 1.96 x 0.069282; pooled p 0.5, z = 0.2 / 0.070711 = 2.8284,
    # two-sided p = 0.004678; risk ratio 1.5, SE(log) = sqrt(1/60 - 1/100 + 1/40 - 1/100).
    out = compare(60, 100, 40, 100)
    assert out["absolute"] == 0.2
    assert out["absolute_ci"] == pytest.approx([0.064210, 0.335790], abs=1e-6)
    assert out["p_value"] == pytest.approx(0.004678, abs=1e-6)
    se_log = math.sqrt(1 / 60 - 1 / 100 + 1 / 40 - 1 / 100)
    assert out["relative"] == pytest.approx(0.5)
    assert out["relative_ci"] == pytest.approx(
        [1.5 * math.exp(-1.959964 * se_log) - 1, 1.5 * math.exp(1.959964 * se_log) - 1],
        abs=1e-5)
    # 80 / 20 entries where the weights say 50 / 50: chi-square 36, p about 2e-9.
    check = srm([80, 20], [50, 50])
    assert check["chi_square"] == 36.0 and check["mismatch"] is True
    assert srm([52, 48], [50, 50])["mismatch"] is False
