"""Membership in real time: the event that makes someone qualify puts them in the segment in
the same processing step, and the journey hook after ours sees the change there."""

from __future__ import annotations

from tests.segments.conftest import Env


def test_event_puts_person_in_segment_in_the_same_step(env: Env) -> None:
    env.define("buyers", {"event": "Order Completed", "where": {"total": {"gte": 100}}})
    kari = env.identify("kari", plan="free")
    assert env.members("buyers") == set()
    env.changes()
    env.track("kari", "Order Completed", total=50)
    assert env.members("buyers") == set()
    env.track("kari", "Order Completed", total=150)
    assert env.members("buyers") == {kari}
    assert env.changes() == [("event", f"{kari}:buyers", True)]


def test_trait_change_enters_and_leaves(env: Env) -> None:
    env.define("pro", {"trait": "plan", "equals": "pro"})
    kari = env.identify("kari", plan="free")
    assert env.members("pro") == set()
    env.identify("kari", plan="pro")
    assert env.members("pro") == {kari}
    env.identify("kari", plan="free")
    assert env.members("pro") == set()
    assert env.changes() == [("event", f"{kari}:pro", True), ("event", f"{kari}:pro", False)]


def test_consent_change_is_seen(env: Env) -> None:
    env.define("mailable", {"consent": "marketing_email", "is": True})
    kari = env.identify("kari", consent={"marketing_email": True})
    assert env.members("mailable") == {kari}
    env.identify("kari", consent={"marketing_email": False})
    assert env.members("mailable") == set()


def test_new_person_meets_a_negative_condition_at_once(env: Env) -> None:
    env.define("never-bought", {"event": "Order Completed", "performed": False})
    kari = env.identify("kari")
    assert env.members("never-bought") == {kari}
    env.track("kari", "Order Completed")
    assert env.members("never-bought") == set()


def test_segment_of_segments_settles_in_one_step(env: Env) -> None:
    env.define("pro", {"trait": "plan", "equals": "pro"})
    env.define("pro-buyers", {"all": [{"segment": "pro"}, {"event": "Order Completed"}]})
    env.define("other", {"segment": "pro-buyers", "member": False})
    kari = env.identify("kari", plan="free")
    env.track("kari", "Order Completed")
    assert env.members("other") == {kari}
    env.changes()
    env.identify("kari", plan="pro")  # only a trait changed; the chain follows
    assert env.members("pro") == {kari}
    assert env.members("pro-buyers") == {kari}
    assert env.members("other") == set()
    assert sorted(env.changes()) == [
        ("event", f"{kari}:other", False),
        ("event", f"{kari}:pro", True),
        ("event", f"{kari}:pro-buyers", True),
    ]


def test_merge_keeps_the_survivor_right(env: Env) -> None:
    env.define("buyers", {"event": "Order Completed"})
    env.send({"type": "track", "anonymousId": "anon-1", "event": "Order Completed"})
    env.process()
    env.identify("kari", plan="free")
    env.send({"type": "identify", "anonymousId": "anon-1", "userId": "kari"})
    env.process()
    kari = env.profile_of("kari")
    assert env.members("buyers") == {kari}
    with env.services.db.read() as tx:
        rows = tx.execute("SELECT profile_id FROM segment_members")
    assert [r[0] for r in rows] == [kari]


def test_unrelated_events_do_not_evaluate_segments(env: Env) -> None:
    env.define("buyers", {"event": "Order Completed"})
    env.define("pro", {"trait": "plan", "equals": "pro"})
    env.identify("kari", plan="free")
    hook = env.services.extra["segments"].hook
    before = hook.evaluated
    env.track("kari", "Page Scrolled")
    assert hook.evaluated == before
    env.track("kari", "Order Completed")
    assert hook.evaluated == before + 1


def test_profile_subject_for_journey_branches(env: Env) -> None:
    from partitur.conditions import evaluate, next_change_us, parse_condition
    from partitur.profiles import store as profile_store
    from partitur.segments import profile_subject

    env.define("pro", {"trait": "plan", "equals": "pro"})
    kari = env.identify("kari", plan="pro", consent={"marketing_email": True})
    env.track("kari", "Order Completed", total=120)
    env.track("kari", "Order Completed", total=20)
    cond = parse_condition({"all": [
        {"segment": "pro"}, {"consent": "marketing_email"},
        {"event": "Order Completed", "within": "30d", "where": {"total": {"gte": 100}}},
        {"event_property": "cart_id", "equals": "c-1"},
    ]})
    now = env.clock.now_us()
    with env.services.db.read() as tx:
        state = profile_store.get(tx, kari)
        assert state is not None
        subject = profile_subject(tx, state, now, event={"properties": {"cart_id": "c-1"}},
                                  dialect=env.services.db.dialect)
        result = evaluate(cond, subject)
        change = next_change_us(cond, subject)
    assert result.result is True
    assert result.seen["event:Order Completed within 30d where "
                       '{"total":{"gte":100}}'] == 1
    assert change == now + 30 * 86_400_000_000 + 1
