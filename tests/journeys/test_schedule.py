"""Scheduled journeys and segment changes by time passing reach journeys too."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.journeys.conftest import Env


def test_schedule_enters_segment_members_at_the_cron_time(env: Env) -> None:
    r = env.client.put("/api/v1/segments/digest", headers=env.admin,
                       json={"key": "digest", "condition": {"trait": "digest", "equals": True}})
    assert r.status_code == 201, r.text
    a = env.identify("a", digest=True)
    env.identify("b", digest=False)
    assert env.clock.now() == datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday
    env.live({"key": "weekly", "trigger": {"schedule": "0 9 * * MON", "segment": "digest"},
              "entry": {"reentry": "always"},
              "steps": [{"id": "mail", "type": "send", "channel": "email",
                         "template": {"subject": "This week", "text": "News"}}]})
    env.advance(60)  # the first look sets the next firing: Monday 5 January, 09:00
    assert env.outbox() == []
    env.advance(4 * 86400)  # Monday 00:01
    assert env.outbox() == []
    env.advance(9 * 3600)  # Monday 09:01
    assert [(s, c) for _, c, s in env.outbox()] == [("mail", "email")]
    assert env.outbox(a)
    env.advance(7 * 86400)
    assert len(env.outbox(a)) == 2  # re-entry: always


def test_segment_entered_by_time_passing(env: Env) -> None:
    r = env.client.put("/api/v1/segments/lapsed", headers=env.admin, json={
        "key": "lapsed", "condition": {"all": [
            {"event": "Order Completed"},
            {"event": "Order Completed", "performed": False, "within": "30d"}]}})
    assert r.status_code == 201, r.text
    env.live({"key": "winback", "trigger": {"segment_entered": "lapsed"},
              "steps": [{"id": "mail", "type": "send", "channel": "email",
                         "template": {"subject": "We miss you", "text": "Come back"}}]})
    kari = env.identify("kari")
    env.track("kari", "Order Completed")
    assert env.outbox(kari) == []
    env.advance(31 * 86400)  # no new event: time alone puts Kari in the segment
    [inst] = env.where(kari)
    assert inst["status"] == "completed"
    assert inst["path"][0]["reason"]["cause"] == "entered segment lapsed"
    assert len(env.outbox(kari)) == 1


def test_firings_missed_while_paused_are_skipped(env: Env) -> None:
    r = env.client.put("/api/v1/segments/digest", headers=env.admin,
                       json={"key": "digest", "condition": {"trait": "digest", "equals": True}})
    assert r.status_code == 201, r.text
    a = env.identify("a", digest=True)
    env.live({"key": "weekly", "trigger": {"schedule": "0 9 * * MON", "segment": "digest"},
              "entry": {"reentry": "always"},
              "steps": [{"id": "mail", "type": "send", "channel": "email",
                         "template": {"subject": "This week", "text": "News"}}]})
    env.advance(60)  # next firing: Monday 5 January, 09:00
    r = env.client.post("/api/v1/journeys/weekly/pause", headers=env.admin)
    assert r.status_code == 200, r.text
    env.advance(5 * 86400)  # Tuesday: Monday's firing fell while paused
    r = env.client.post("/api/v1/journeys/weekly/resume", headers=env.admin)
    assert r.status_code == 200, r.text
    env.advance(60)
    assert env.outbox(a) == []  # not caught up on resume
    env.advance(7 * 86400)  # the next Monday fires as usual
    assert len(env.outbox(a)) == 1
