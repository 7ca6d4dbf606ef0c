"""Undoing a merge re-evaluates both resulting profiles: memberships follow what each of
them now is, with exits and entries recorded (cause ``unmerge``) and handed to journeys."""

from __future__ import annotations

from typing import Any

from tests.segments.conftest import Env


def _history(env: Env, pid: str) -> list[tuple[str, bool, str]]:
    body = env.client.get(f"/api/v1/profiles/{pid}/segments", headers=env.admin).json()
    return [(h["segment"], h["entered"], h["cause"]) for h in body["history"]]


def _segments(env: Env, pid: str) -> set[str]:
    body: dict[str, Any] = env.client.get(f"/api/v1/profiles/{pid}/segments",
                                          headers=env.admin).json()
    return {s["key"] for s in body["segments"]}


def test_unmerge_moves_memberships_with_the_profiles(env: Env) -> None:
    env.define("buyers", {"event": "Order Completed", "at_least": 3})
    env.define("recent-buyers", {"event": "Order Completed", "within": "30d"})
    env.define("pro", {"trait": "plan", "equals": "pro"})
    env.define("pro-buyers", {"all": [{"segment": "pro"}, {"segment": "buyers"}]})
    for _ in range(3):
        env.send({"type": "track", "anonymousId": "kiosk", "event": "Order Completed"})
    env.process()
    liv = env.identify("liv", plan="pro")
    env.send({"type": "identify", "anonymousId": "kiosk", "userId": "liv"})
    env.process()
    merged = env.profile_of("liv")
    assert merged != liv  # the anonymous profile was older: it survived
    assert _segments(env, merged) == {"buyers", "recent-buyers", "pro", "pro-buyers"}
    env.changes()

    r = env.client.post(f"/api/v1/profiles/{merged}/unmerge", json={}, headers=env.admin)
    assert r.status_code == 200, r.text
    assert r.json()["restored"] == liv
    assert env.profile_of("liv") == liv
    assert _segments(env, merged) == {"buyers", "recent-buyers"}
    assert _segments(env, liv) == {"pro"}
    assert env.members("pro") == {liv}
    assert env.members("pro-buyers") == set()
    assert sorted(env.changes()) == sorted([
        ("other", f"{merged}:pro", False),
        ("other", f"{merged}:pro-buyers", False),
        ("other", f"{liv}:pro", True),
    ])
    assert _history(env, liv)[0] == ("pro", True, "unmerge")
    assert {h for h in _history(env, merged) if h[2] == "unmerge"} == {
        ("pro", False, "unmerge"), ("pro-buyers", False, "unmerge")}

    # Time passing still works for the split-off profiles (their due rows were rebuilt).
    assert env.advance(days=31) >= 1
    assert _segments(env, merged) == {"buyers"}


def test_unmerge_without_segments_still_works(env: Env) -> None:
    env.send({"type": "track", "anonymousId": "kiosk", "event": "Viewed"})
    env.process()
    env.identify("liv")
    env.send({"type": "identify", "anonymousId": "kiosk", "userId": "liv"})
    env.process()
    merged = env.profile_of("liv")
    r = env.client.post(f"/api/v1/profiles/{merged}/unmerge", json={}, headers=env.admin)
    assert r.status_code == 200, r.text
    assert env.changes() == []


def _add(env: Env, key: str, *profiles: str) -> None:
    r = env.client.post(f"/api/v1/segments/{key}/members", json={"profile_ids": list(profiles)},
                        headers=env.admin)
    assert r.status_code == 200, r.text


def test_static_lists_go_back_with_the_profile_an_unmerge_restores(env: Env) -> None:
    for key in ("webinar", "vip", "newsletter"):
        env.put({"key": key, "name": key, "type": "static"})
    env.define("webinar-people", {"segment": "webinar"})  # built on a static list
    env.send({"type": "track", "anonymousId": "kiosk", "event": "Visited"})
    env.process()
    kiosk = env.client.get("/api/v1/profiles/lookup?type=anonymous_id&value=kiosk",
                           headers=env.admin).json()["id"]
    liv = env.identify("liv", plan="pro")
    _add(env, "webinar", liv)       # only Liv
    _add(env, "vip", kiosk)         # only the kiosk profile
    _add(env, "newsletter", liv, kiosk)  # both
    env.send({"type": "identify", "anonymousId": "kiosk", "userId": "liv"})
    env.process()
    merged = env.profile_of("liv")
    assert merged == kiosk  # the anonymous profile was older: it survived
    assert _segments(env, kiosk) == {"webinar", "vip", "newsletter", "webinar-people"}
    env.changes()

    r = env.client.post(f"/api/v1/profiles/{kiosk}/unmerge", json={}, headers=env.admin)
    assert r.status_code == 200, r.text
    assert r.json()["restored"] == liv
    assert _segments(env, liv) == {"webinar", "newsletter", "webinar-people"}
    assert _segments(env, kiosk) == {"vip", "newsletter"}
    assert env.members("webinar") == {liv}
    assert env.members("webinar-people") == {liv}
    assert env.members("newsletter") == {liv, kiosk}
    assert sorted(env.changes()) == sorted([
        ("other", f"{liv}:webinar", True),
        ("other", f"{liv}:newsletter", True),
        ("other", f"{kiosk}:webinar", False),
        ("other", f"{liv}:webinar-people", True),
        ("other", f"{kiosk}:webinar-people", False),
    ])
    assert ("webinar", True, "unmerge") in _history(env, liv)


def test_a_list_removal_after_the_merge_is_not_undone_by_an_unmerge(env: Env) -> None:
    env.put({"key": "vip", "name": "vip", "type": "static"})
    env.send({"type": "track", "anonymousId": "kiosk", "event": "Visited"})
    env.process()
    liv = env.identify("liv")
    _add(env, "vip", liv)
    env.send({"type": "identify", "anonymousId": "kiosk", "userId": "liv"})
    env.process()
    survivor = env.profile_of("liv")
    r = env.client.post("/api/v1/segments/vip/members/remove", headers=env.admin,
                        json={"profile_ids": [survivor]})
    assert r.status_code == 200, r.text
    r = env.client.post(f"/api/v1/profiles/{survivor}/unmerge", json={}, headers=env.admin)
    assert r.status_code == 200, r.text
    assert env.members("vip") == set()
