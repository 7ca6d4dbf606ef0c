"""Edges of the journey rules, end to end: re-entry after a period, the shortest and the
longest waits, and why a send was suppressed as the person's path tells it."""

from __future__ import annotations

from partitur.channels.dispatcher import Dispatcher
from tests.journeys.conftest import Env

DAY = 86_400
MAIL = {"subject": "Hello", "text": "Hello"}


def test_reentry_after_a_period(env: Env) -> None:
    env.live({"key": "again", "trigger": {"event": "Go"}, "entry": {"reentry": {"after": "2d"}},
              "steps": [{"id": "w", "type": "wait", "duration": "1h", "next": "e"},
                        {"id": "e", "type": "exit"}]})
    who = env.identify("a")
    env.track("a", "Go")
    env.advance(2 * 3600)
    env.track("a", "Go")  # two hours after entering: too soon
    assert len(env.where(who)) == 1
    env.advance(2 * DAY)
    env.track("a", "Go")
    assert len(env.where(who)) == 2


def test_a_one_second_wait_fires_a_second_later(env: Env) -> None:
    env.live({"key": "quick", "trigger": {"event": "Go"},
              "steps": [{"id": "w", "type": "wait", "duration": "1s", "next": "m"},
                        {"id": "m", "type": "send", "channel": "email", "template": MAIL}]})
    who = env.identify("a")
    env.track("a", "Go")
    assert env.outbox(who) == []
    assert env.advance(1)["fired"] == 1
    assert len(env.outbox(who)) == 1


def test_a_year_long_wait_fires_after_a_year_not_before(env: Env) -> None:
    env.live({"key": "anniversary", "trigger": {"event": "Go"},
              "steps": [{"id": "w", "type": "wait", "duration": "365d", "next": "m"},
                        {"id": "m", "type": "send", "channel": "email", "template": MAIL}]})
    who = env.identify("a")
    env.track("a", "Go")
    assert env.advance(364 * DAY)["fired"] == 0
    assert env.outbox(who) == []
    assert env.advance(DAY)["fired"] == 1
    assert len(env.outbox(who)) == 1


def test_the_path_says_why_a_send_was_suppressed(env: Env) -> None:
    env.live({"key": "promo", "trigger": {"event": "Go"},
              "steps": [{"id": "m", "type": "send", "channel": "email", "template": MAIL}]})
    who = env.identify("a", email="a@example.com", consent={"marketing_email": False})
    env.track("a", "Go")
    Dispatcher(env.services).drain()
    [instance] = env.where(who)
    [send] = [entry for entry in instance["path"] if entry["kind"] == "send"]
    assert send["step"] == "m"
    assert send["delivery"]["status"] == "suppressed"
    assert send["delivery"]["reason"] == "marketing_email consent withdrawn"
