"""Send-time policies against the real store and a real SMTP server: consent, frequency caps,
quiet hours in the person's time zone, erased people, per-channel rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from partitur.channels import OutboundMessage
from partitur.clock import ManualClock
from tests.channels.conftest import Env, email_settings
from tests.channels.sinks import SmtpSink

MAIL = {"subject": "News", "text": "Hello"}


def mail(profile: str, key: str, **kw: Any) -> OutboundMessage:
    return OutboundMessage(key=key, profile_id=profile, channel="email", template=MAIL,
                           journey="news", step_id="send", **kw)


def test_no_marketing_email_without_consent(env_factory: Any, smtp: SmtpSink) -> None:
    env: Env = env_factory(**email_settings(smtp))
    silent = env.person("silent", email="s@example.com")
    refused = env.person("refused", email="r@example.com", consent={"marketing_email": False})
    glad = env.person("glad", email="g@example.com", consent={"marketing_email": True})
    env.enqueue(mail(silent, "m-s"), mail(refused, "m-r"), mail(glad, "m-g"))
    env.dispatcher().drain()
    statuses = env.status("m-s", "m-r", "m-g")
    assert statuses["m-s"]["status"] == "suppressed"
    assert statuses["m-s"]["reason"] == "no marketing_email consent"
    assert statuses["m-r"]["reason"] == "marketing_email consent withdrawn"
    assert statuses["m-g"]["status"] == "sent"
    assert [m.recipients for m in smtp.wait(1)] == [["g@example.com"]]
    suppressed = env.logged("Message Suppressed")
    assert sorted(e["userId"] for e in suppressed) == ["refused", "silent"]
    assert {e["properties"]["reason"] for e in suppressed} == {
        "no marketing_email consent", "marketing_email consent withdrawn"}
    assert all(e["properties"]["journey"] == "news" for e in suppressed)


def test_frequency_cap_per_channel(env_factory: Any, smtp: SmtpSink, clock: ManualClock) -> None:
    env: Env = env_factory(**email_settings(smtp), frequency_caps={"email": "1/1d"})
    kari = env.person("kari", email="k@example.com", consent={"marketing_email": True})
    dispatcher = env.dispatcher()
    env.enqueue(mail(kari, "a1"), mail(kari, "a2"),
                mail(kari, "t1", category="transactional"))
    dispatcher.drain()
    statuses = env.status("a1", "a2", "t1")
    assert [statuses[k]["status"] for k in ("a1", "a2", "t1")] == ["sent", "suppressed", "sent"]
    assert statuses["a2"]["reason"] == "frequency cap email 1/1d reached"
    clock.advance(timedelta(hours=23))
    env.enqueue(mail(kari, "a3"))
    dispatcher.drain()
    assert env.status("a3")["a3"]["status"] == "suppressed"
    clock.advance(timedelta(hours=2))
    env.enqueue(mail(kari, "a4"))
    dispatcher.drain()
    assert env.status("a4")["a4"]["status"] == "sent"
    assert len(smtp.wait(3)) == 3


def test_quiet_hours_defer_to_the_morning_in_the_persons_zone(
    env_factory: Any, smtp: SmtpSink, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 6, 1, 20, 30, tzinfo=UTC))  # 22:30 in Oslo, 16:30 in New York
    env: Env = env_factory(**email_settings(smtp), quiet_hours="21:00-08:00",
                           default_timezone="America/New_York")
    oslo = env.person("oslo", email="o@example.com", timezone="Europe/Oslo",
                      consent={"marketing_email": True})
    ny = env.person("ny", email="n@example.com", consent={"marketing_email": True})
    env.enqueue(mail(oslo, "q-oslo"), mail(ny, "q-ny"),
                mail(oslo, "q-tx", category="transactional"))
    dispatcher = env.dispatcher()
    dispatcher.drain()
    statuses = env.status("q-oslo", "q-ny", "q-tx")
    assert statuses["q-ny"]["status"] == "sent" and statuses["q-tx"]["status"] == "sent"
    assert statuses["q-oslo"]["status"] == "queued"
    assert statuses["q-oslo"]["reason"] == (
        "quiet hours 21:00-08:00 Europe/Oslo: deferred to 2026-06-02T06:00:00.000Z")
    assert statuses["q-oslo"]["due_at"] == "2026-06-02T06:00:00.000Z"
    assert statuses["q-oslo"]["attempts"] == 0
    clock.set(datetime(2026, 6, 2, 5, 59, tzinfo=UTC))
    assert dispatcher.drain() == 0
    clock.set(datetime(2026, 6, 2, 6, 0, tzinfo=UTC))
    dispatcher.drain()
    assert env.status("q-oslo")["q-oslo"]["status"] == "sent"
    assert len(smtp.wait(3)) == 3


def test_quiet_hours_skip_and_the_events_zone(
    env_factory: Any, smtp: SmtpSink, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 6, 1, 14, 0, tzinfo=UTC))  # 23:00 in Tokyo
    env: Env = env_factory(**email_settings(smtp), quiet_hours="21:00-08:00",
                           quiet_hours_policy="skip")
    who = env.person("t", email="t@example.com", consent={"marketing_email": True})
    env.enqueue(mail(who, "skip-1", variables={"event": {"context": {"timezone": "Asia/Tokyo"}}}),
                mail(who, "skip-2"))
    env.dispatcher().drain()
    statuses = env.status("skip-1", "skip-2")
    assert statuses["skip-1"]["status"] == "suppressed"
    assert statuses["skip-1"]["reason"] == "quiet hours 21:00-08:00 Asia/Tokyo"
    assert statuses["skip-2"]["status"] == "sent"  # UTC by default: 14:00


def test_erased_people_are_never_sent_to(env_factory: Any, smtp: SmtpSink) -> None:
    env: Env = env_factory(**email_settings(smtp))
    gone = env.person("gone", email="gone@example.com", consent={"marketing_email": True})
    env.enqueue(mail(gone, "e1"), mail(gone, "e2", category="transactional"))
    r = env.client.post("/api/v1/privacy/erase", headers=env.admin,
                        json={"type": "user_id", "value": "gone"})
    assert r.status_code == 200, r.text
    env.dispatcher().drain()
    assert env.status("e1", "e2") == {}  # erasure removed the queued messages themselves
    # A message queued after the erasure (e.g. by a step already under way) finds nobody.
    env.enqueue(mail(gone, "e3", category="transactional"))
    env.dispatcher().drain()
    statuses = env.status("e3")
    assert statuses["e3"]["status"] == "suppressed"
    assert statuses["e3"]["reason"] == "the person was erased or is unknown"
    assert smtp.mails == []
    assert env.logged("Message Suppressed") == []  # nobody left to attribute it to


def test_merged_profiles_are_followed(env_factory: Any, smtp: SmtpSink) -> None:
    env: Env = env_factory(**email_settings(smtp))
    env.send({"type": "identify", "anonymousId": "anon-1", "traits": {"email": "m@example.com"},
              "context": {"consent": {"categoryPreferences": {"marketing_email": True}}}})
    env.process()
    with env.services.db.read() as tx:
        old = tx.one("SELECT profile_id FROM identifiers WHERE key = 'anonymous_id:anon-1'")
    assert old is not None
    env.enqueue(mail(old[0], "mg"))
    env.send({"type": "identify", "anonymousId": "anon-1", "userId": "u-1"},
             {"type": "identify", "anonymousId": "anon-2", "userId": "u-1"})
    env.process()
    env.dispatcher().drain()
    assert env.status("mg")["mg"]["status"] == "sent"
    [sent] = env.logged("Email Sent")
    assert sent["userId"] == "u-1"


def test_rate_limit_per_channel(env_factory: Any, smtp: SmtpSink) -> None:
    env: Env = env_factory(**email_settings(smtp), channel_rate_limits={"email": 3})
    who = env.person("r", email="r@example.com", consent={"marketing_email": True})
    env.enqueue(*(mail(who, f"r{n}", category="transactional") for n in range(7)))
    now = [1000.0]
    dispatcher = env.dispatcher(monotonic=lambda: now[0])
    assert dispatcher.drain() == 3  # a burst of 3, then the bucket is empty at this instant
    now[0] += 1.0
    assert dispatcher.drain() == 3
    now[0] += 0.34
    assert dispatcher.drain() == 1
    assert len(smtp.wait(7)) == 7
