"""Journeys through the real app: entry in the same processing step as the event, waits
fired by the manual clock, goals, exit rules, splits, stats and a person's path."""

from __future__ import annotations

from typing import Any

from tests.journeys.conftest import Env, example


def test_event_enters_and_first_send_is_in_the_same_batch(env: Env) -> None:
    env.templates()
    env.live(example("welcome"))
    kari = env.identify("kari", plan="pro")
    env.track("kari", "User Registered")
    assert env.outbox(kari) == [(f"welcome:1:{kari}:1:welcome:1", "email", "welcome")]
    [inst] = env.where(kari)
    assert inst["status"] == "active" and inst["step"] == "wait-order"
    assert inst["waiting_for"] == "Order Completed"
    kinds = [(p["step"], p["kind"]) for p in inst["path"]]
    assert kinds == [(None, "enter"), ("welcome", "send"), ("wait-order", "wait_for_event")]
    send = inst["path"][1]
    assert send["message_key"] == f"welcome:1:{kari}:1:welcome:1"
    assert send["delivery"]["status"] == "queued"


def test_timeout_branch_and_reentry_never(env: Env) -> None:
    env.templates()
    env.live(example("welcome"))
    kari = env.identify("kari", plan="pro")
    env.track("kari", "User Registered")
    fired = env.advance(23 * 3600)
    assert fired["fired"] == 0
    fired = env.advance(3600)
    assert fired["fired"] == 1
    [inst] = env.where(kari)
    assert inst["status"] == "completed" and inst["step"] == "done"
    branch = next(p for p in inst["path"] if p["kind"] == "branch")
    assert branch["reason"]["seen"] == {"trait:plan": "pro"}
    env.track("kari", "User Registered")  # reentry: never
    assert len(env.where(kari)) == 1


def test_goal_converts_and_counts(env: Env) -> None:
    env.templates()
    env.live(example("welcome"))
    kari = env.identify("kari", plan="free")
    env.track("kari", "User Registered")
    env.advance(3600)
    env.track("kari", "Order Completed", total=12)
    [inst] = env.where(kari)
    assert inst["status"] == "exited" and inst["exit_reason"] == "goal reached"
    assert inst["converted_at"] is not None
    stats = env.stats("welcome")
    assert stats["entered"] == 1 and stats["converted"] == 1 and stats["active"] == 0
    step = {s["step"]: s for s in stats["steps"]}
    assert step["wait-order"]["converted"] == 1 and step["wait-order"]["exited"] == 1
    assert step["welcome"]["entered"] == 1


def test_exit_rule_and_split_stats(env: Env) -> None:
    env.templates()
    env.live(example("welcome"))
    people = [env.identify(f"u{i}", plan="free") for i in range(12)]
    env.send(*[{"type": "track", "userId": f"u{i}", "event": "User Registered"}
               for i in range(12)])
    env.process()
    env.track("u0", "Unsubscribed")
    [first] = env.where(people[0])
    assert first["exit_reason"] == "exit rule 0: event Unsubscribed"
    env.advance(24 * 3600)
    stats = env.stats("welcome")
    split = next(s for s in stats["steps"] if s["step"] == "split")
    arms = split["arms"]
    assert sum(a["entered"] for a in arms.values()) == 11 == split["entered"]
    for pid in people[1:]:
        [inst] = env.where(pid)
        assert set(inst["arms"]) == {"split"}
    sms = [m for m in env.outbox() if m[1] == "sms"]
    assert len(sms) == arms.get("discount", {}).get("entered", 0)
    waiting = {s["step"]: s["waiting"] for s in stats["steps"]}
    assert waiting["reminder"] == arms.get("reminder", {}).get("entered", 0)
    env.advance(2 * 86400)
    reminders = [m for m in env.outbox() if m[2] == "remind-mail"]
    assert len(reminders) == waiting["reminder"]
    assert env.stats("welcome")["active"] == 0


def test_wait_for_event_matches_the_trigger_cart(env: Env) -> None:
    doc: dict[str, Any] = example("abandoned-cart")
    del doc["goal"]
    env.live(doc)
    kari = env.identify("kari", consent={"marketing_email": True}, timezone="Europe/Oslo")
    env.track("kari", "Cart Abandoned", cart_id="c1", total=40)
    env.track("kari", "Order Completed", cart_id="c2")
    [inst] = env.where(kari)
    assert inst["status"] == "active" and inst["step"] == "wait-purchase"
    env.track("kari", "Order Completed", cart_id="c1")
    [inst] = env.where(kari)
    assert inst["status"] == "completed"
    env.process()  # the emitted event comes back through the log
    with env.services.db.read() as tx:
        row = tx.one("SELECT body FROM events WHERE event = 'Cart Recovered'")
    assert row is not None and '"cart_id":"c1"' in row[0]


def test_audience_and_trigger_filter(env: Env) -> None:
    env.live(example("abandoned-cart"))
    no = env.identify("no", consent={"marketing_email": False})
    yes = env.identify("yes", consent={"marketing_email": True})
    env.track("no", "Cart Abandoned", cart_id="c", total=40)
    env.track("yes", "Cart Abandoned", cart_id="c", total=5)  # below the filter
    assert env.where(no) == [] and env.where(yes) == []
    env.track("yes", "Cart Abandoned", cart_id="c", total=25)
    assert len(env.where(yes)) == 1


def test_update_profile_and_webhook_after_local_morning(env: Env) -> None:
    env.live(example("abandoned-cart"))
    kari = env.identify("kari", consent={"marketing_email": True}, timezone="Europe/Oslo")
    env.track("kari", "Cart Abandoned", cart_id="c7", total=40)
    env.advance(2 * 3600)
    [inst] = env.where(kari)
    assert inst["step"] == "morning"
    env.advance(4 * 86400)
    env.process()
    r = env.client.get(f"/api/v1/profiles/{kari}", headers=env.admin)
    assert r.json()["traits"]["last_cart_reminder"] == "c7"
    assert sorted((c, s) for _, c, s in env.outbox(kari)) == [
        ("email", "remind"), ("webhook", "crm")]


def test_segment_trigger_enters_in_the_same_step(env: Env) -> None:
    r = env.client.put("/api/v1/segments/pros", headers=env.admin,
                       json={"key": "pros", "condition": {"trait": "plan", "equals": "pro"}})
    assert r.status_code == 201, r.text
    env.live({"key": "pro-welcome", "trigger": {"segment_entered": "pros"},
              "exit_when": [{"segment_exited": "pros"}],
              "steps": [{"id": "w", "type": "wait", "duration": "1d", "next": "e"},
                        {"id": "e", "type": "exit"}]})
    kari = env.identify("kari", plan="pro")
    [inst] = env.where(kari)
    assert inst["status"] == "active" and inst["path"][0]["reason"]["cause"] == \
        "entered segment pros"
    env.identify("kari", plan="free")
    [inst] = env.where(kari)
    assert inst["exit_reason"] == "exit rule 0: left segment pros"
