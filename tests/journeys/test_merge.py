"""Profiles that merge while both are in a journey: one run is kept (the one that entered
first), the other leaves with reason ``merged``, and the kept run follows the survivor."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.journeys.conftest import Env

H = 3600

CART: dict[str, Any] = {
    "key": "cart",
    "trigger": {"event": "Cart Abandoned"},
    "goal": {"event": "Order Completed", "within": "7d"},
    "steps": [
        {"id": "wait", "type": "wait", "duration": "2h", "next": "remind"},
        {"id": "remind", "type": "send", "channel": "email", "category": "transactional",
         "template": {"subject": "Your cart", "text": "Still there"}},
    ],
}


def _anonymous(env: Env, event: str, anonymous_id: str = "anon-1") -> None:
    env.send({"type": "track", "anonymousId": anonymous_id, "event": event})
    env.process()


def _merge(env: Env, anonymous_id: str = "anon-1", user_id: str = "kari") -> str:
    env.send({"type": "identify", "anonymousId": anonymous_id, "userId": user_id})
    env.process()
    return env.profile_of(user_id)


def test_merge_keeps_the_run_that_entered_first_and_exits_the_other(env: Env) -> None:
    env.live(CART)
    _anonymous(env, "Page Viewed")  # the anonymous profile is the older: it survives
    env.identify("kari")
    kari = env.profile_of("kari")
    env.track("kari", "Cart Abandoned")  # Kari's run enters first
    env.clock.advance(timedelta(minutes=5))
    _anonymous(env, "Cart Abandoned")
    survivor = _merge(env)
    assert survivor != kari  # the older, anonymous profile survived
    runs = {r["instance_id"]: r for r in env.where(survivor)}
    assert set(runs) == {f"cart:{kari}:1", f"cart:{survivor}:1"}
    kept, other = runs[f"cart:{kari}:1"], runs[f"cart:{survivor}:1"]
    assert kept["status"] == "active" and kept["step"] == "wait"
    assert other["status"] == "exited" and other["exit_reason"] == "merged"
    assert other["path"][-1]["reason"] == {"reason": "merged", "kept": f"cart:{kari}:1",
                                           "merged_into": survivor}
    with env.services.db.read() as tx:  # nothing is left on the merged-away id
        for table in ("journey_instances", "journey_path"):
            row = tx.one(f"SELECT COUNT(*) FROM {table} WHERE profile_id = ?", (kari,))
            assert row is not None and row[0] == 0
    env.advance(3 * H)
    assert [step for _, _, step in env.outbox()] == ["remind"]  # one reminder, not two
    stats = env.stats("cart")
    assert stats["entered"] == 2 and stats["exited"] == 1 and stats["completed"] == 1


def test_one_goal_event_converts_once_after_a_merge(env: Env) -> None:
    env.live(CART)
    _anonymous(env, "Cart Abandoned")
    env.advance(3 * H)  # the anonymous run ends; its goal window stays open
    env.identify("kari")
    env.track("kari", "Cart Abandoned")
    survivor = _merge(env)
    env.track("kari", "Order Completed")
    stats = env.stats("cart")
    assert stats["converted"] == 1
    converted = [r for r in env.where(survivor) if r["converted_at"]]
    assert len(converted) == 1 and converted[0]["status"] == "exited"


def test_reentry_rule_sees_the_history_of_both_profiles(env: Env) -> None:
    env.live(CART)  # reentry: never
    _anonymous(env, "Cart Abandoned")
    env.advance(3 * H)
    env.identify("kari")
    survivor = _merge(env)
    env.track("kari", "Cart Abandoned")  # the anonymous profile's run already counted
    runs = env.where(survivor)
    assert len(runs) == 1 and runs[0]["status"] == "completed"
