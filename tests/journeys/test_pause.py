"""Pausing a journey: nobody enters and nobody moves on; people may still leave (goal, exit
rules); on resume, waits that fell due fire and events that came while paused do not count."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.journeys.conftest import Env

H = 3600

CART: dict[str, Any] = {
    "key": "cart",
    "trigger": {"event": "Cart Abandoned"},
    "goal": {"event": "Upgraded"},
    "exit_when": [{"event": "Unsubscribed"}],
    "steps": [
        {"id": "wait-buy", "type": "wait_for_event", "event": "Order Completed",
         "timeout": "2h", "on_event": "thanks", "on_timeout": "remind"},
        {"id": "thanks", "type": "send", "channel": "email",
         "template": {"subject": "Thanks", "text": "Thank you"}, "category": "transactional"},
        {"id": "remind", "type": "send", "channel": "email",
         "template": {"subject": "Your cart", "text": "Still there"},
         "category": "transactional"},
    ],
}


def _status(env: Env, action: str) -> None:
    r = env.client.post(f"/api/v1/journeys/cart/{action}", headers=env.admin)
    assert r.status_code == 200, r.text


def _steps(env: Env, profile_id: str) -> list[str]:
    return [step for _, _, step in env.outbox(profile_id)]


def test_event_while_paused_is_held_and_the_timeout_fires_on_resume(env: Env) -> None:
    env.live(CART)
    kari = env.identify("kari")
    env.track("kari", "Cart Abandoned")
    _status(env, "pause")
    env.track("kari", "Order Completed")
    [inst] = env.where(kari)
    assert inst["status"] == "active" and inst["step"] == "wait-buy"
    held = inst["path"][-1]
    assert held["kind"] == "held" and held["reason"]["reason"] == "journey paused"
    assert env.advance(3 * H)["fired"] == 0  # the timeout fell due while paused: held
    assert env.where(kari)[0]["step"] == "wait-buy"
    _status(env, "resume")
    assert env.advance(1)["fired"] == 1
    [inst] = env.where(kari)
    assert inst["status"] == "completed"
    assert [p["kind"] for p in inst["path"]][-4:] == ["held", "timeout", "send", "complete"]
    assert _steps(env, kari) == ["remind"]  # the held order did not count


def test_paused_journey_admits_nobody_but_exit_rules_and_goals_apply(env: Env) -> None:
    env.live(CART)
    kari, ola = env.identify("kari"), env.identify("ola")
    env.identify("per")
    env.track("kari", "Cart Abandoned")
    env.track("ola", "Cart Abandoned")
    _status(env, "pause")
    env.track("per", "Cart Abandoned")
    assert env.where(env.profile_of("per")) == []
    env.track("kari", "Unsubscribed")
    env.track("ola", "Upgraded")
    [k] = env.where(kari)
    [o] = env.where(ola)
    assert k["status"] == "exited" and k["exit_reason"] == "exit rule 0: event Unsubscribed"
    assert o["status"] == "exited" and o["exit_reason"] == "goal reached"
    _status(env, "resume")
    env.advance(3 * H)
    assert env.outbox() == []
    stats = env.stats("cart")
    assert stats["entered"] == 2 and stats["converted"] == 1


def test_after_resume_events_count_again_and_a_due_timeout_beats_a_later_event(
        env: Env) -> None:
    env.live(CART)
    kari, ola = env.identify("kari"), env.identify("ola")
    env.track("kari", "Cart Abandoned")
    _status(env, "pause")
    _status(env, "resume")
    env.track("kari", "Order Completed")
    assert _steps(env, kari) == ["thanks"]
    env.track("ola", "Cart Abandoned")
    _status(env, "pause")
    env.clock.advance(timedelta(seconds=3 * H))  # past ola's timeout, no timer run yet
    _status(env, "resume")
    env.track("ola", "Order Completed")  # received after the timeout fell due
    [inst] = env.where(ola)
    assert inst["status"] == "completed"
    timeout = [p for p in inst["path"] if p["kind"] == "timeout"]
    assert timeout and timeout[0]["reason"]["late_event"]
    assert _steps(env, ola) == ["remind"]
