"""Deleting a segment: its members exit (recorded, handed to journeys), and a segment that a
published journey uses is refused with the journey named."""

from __future__ import annotations

from typing import Any

import pytest

from tests.segments.conftest import Env


def _journey(key: str, **parts: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"key": key, "trigger": {"event": "Signed Up"},
                           "steps": [{"id": "done", "type": "exit"}]}
    doc.update(parts)
    return doc


def _publish(env: Env, doc: dict[str, Any]) -> None:
    journeys = env.services.extra["journeys"]
    journeys.put(doc)
    journeys.publish(doc["key"])


def test_delete_exits_every_member_with_the_reason(env: Env) -> None:
    env.define("pro", {"trait": "plan", "equals": "pro"})
    people = [env.identify(f"u{i}", plan="pro") for i in range(3)]
    other = env.identify("u9", plan="free")
    assert env.members("pro") == set(people)
    env.changes()
    r = env.client.delete("/api/v1/segments/pro", headers=env.admin)
    assert r.status_code == 204, r.text
    assert sorted(env.changes()) == sorted(("other", f"{p}:pro", False) for p in people)
    assert env.client.get("/api/v1/segments/pro/members", headers=env.admin).status_code == 404
    for pid in people:
        body = env.client.get(f"/api/v1/profiles/{pid}/segments", headers=env.admin).json()
        assert body["segments"] == []
        last = body["history"][0]
        assert (last["segment"], last["entered"], last["cause"]) == ("pro", False, "deleted")
        assert last["seen"] == {"segment deleted": "pro"}
    body = env.client.get(f"/api/v1/profiles/{other}/segments", headers=env.admin).json()
    assert all(h["cause"] != "deleted" for h in body["history"])
    with env.services.db.read() as tx:
        assert tx.one("SELECT COUNT(*) FROM segment_due WHERE segment = 'pro'") == (0,)


def test_delete_pages_through_many_members(env: Env) -> None:
    env.put({"key": "list", "type": "static"}, status=201)
    people = [env.identify(f"u{i}") for i in range(7)]
    env.client.post("/api/v1/segments/list/members", json={"profile_ids": people},
                    headers=env.admin)
    env.changes()
    with env.services.db.transaction() as tx:
        service = env.services.extra["segments"]
        tx.execute("DELETE FROM segments WHERE key = 'list'")
        assert service._exit_all(tx, "list", env.clock.now_us(), page=3) == 7
    assert len(env.changes()) == 7


@pytest.mark.parametrize(
    ("parts", "where"),
    [
        ({"trigger": {"segment_entered": "pro"}}, "trigger"),
        ({"trigger": {"segment_exited": "pro"}}, "trigger"),
        ({"trigger": {"schedule": "0 9 * * MON", "segment": "pro"}}, "trigger"),
        ({"entry": {"audience": {"not": {"segment": "pro"}}}}, "entry.audience"),
        ({"exit_when": [{"segment_exited": "pro"}]}, "exit_when[0]"),
        ({"exit_when": [{"event": "X"}, {"condition": {"any": [{"segment": "pro"}]}}]},
         "exit_when[1]"),
        ({"steps": [{"id": "b", "type": "branch", "default": "done",
                     "branches": [{"when": {"segment": "pro"}, "next": "done"}]},
                    {"id": "done", "type": "exit"}]}, "steps[0] (b)"),
    ],
)
def test_a_segment_a_published_journey_uses_is_not_deleted(
    env: Env, parts: dict[str, Any], where: str
) -> None:
    env.define("pro", {"trait": "plan", "equals": "pro"})
    env.identify("u1", plan="pro")
    _publish(env, _journey("welcome", **parts))
    r = env.client.delete("/api/v1/segments/pro", headers=env.admin)
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert "journey welcome" in error["message"]
    assert where in error["message"]
    assert error["details"] == [{"journey": "welcome", "version": 1, "path": where}]
    assert env.members("pro")  # nothing happened
    env.services.extra["journeys"].set_status("welcome", "pause")
    assert env.client.delete("/api/v1/segments/pro", headers=env.admin).status_code == 409
    env.services.extra["journeys"].set_status("welcome", "archive")
    assert env.client.delete("/api/v1/segments/pro", headers=env.admin).status_code == 204


def test_a_draft_or_an_unrelated_journey_does_not_hold_a_segment(env: Env) -> None:
    env.define("pro", {"trait": "plan", "equals": "pro"})
    env.define("vip", {"trait": "vip", "equals": True})
    _publish(env, _journey("vips", trigger={"segment_entered": "vip"}))
    env.services.extra["journeys"].put(_journey("draft", trigger={"segment_entered": "pro"}))
    assert env.client.delete("/api/v1/segments/pro", headers=env.admin).status_code == 204


def test_an_old_version_people_are_still_in_holds_the_segment(env: Env) -> None:
    env.define("pro", {"trait": "plan", "equals": "pro"})
    branchy = _journey("welcome", steps=[
        {"id": "w", "type": "wait", "duration": "1d", "next": "b"},
        {"id": "b", "type": "branch", "default": "done",
         "branches": [{"when": {"segment": "pro"}, "next": "done"}]},
        {"id": "done", "type": "exit"}])
    _publish(env, branchy)
    env.track("u1", "Signed Up")  # waits in version 1
    _publish(env, _journey("welcome"))  # version 2 does not use the segment
    r = env.client.delete("/api/v1/segments/pro", headers=env.admin)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["details"] == [
        {"journey": "welcome", "version": 1, "path": "steps[1] (b)"}]
