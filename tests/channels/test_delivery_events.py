"""Delivery events land in the event log once, attributed to the person's profile, and
show on their timeline after the worker has processed them."""

from __future__ import annotations

from typing import Any

from partitur.channels import OutboundMessage
from partitur.channels.events import event_message_id
from tests.channels.conftest import Env, email_settings
from tests.channels.sinks import SmtpSink


def test_events_reach_the_persons_timeline_once(env_factory: Any, smtp: SmtpSink) -> None:
    env: Env = env_factory(**email_settings(smtp))
    env.send({"type": "identify", "anonymousId": "anon-only",
              "traits": {"email": "a@example.com"},
              "context": {"consent": {"categoryPreferences": {"marketing_email": True}}}})
    env.process()
    with env.services.db.read() as tx:
        row = tx.one("SELECT profile_id FROM identifiers WHERE key = 'anonymous_id:anon-only'")
    assert row is not None
    profile = row[0]
    env.enqueue(OutboundMessage(key="d1", profile_id=profile, channel="email",
                                template={"subject": "S", "text": "T"}, journey="j",
                                version=1, step_id="s1"))
    dispatcher = env.dispatcher()
    dispatcher.drain()
    [sent] = env.logged("Email Sent")
    assert sent["anonymousId"] == "anon-only" and "userId" not in sent
    assert sent["messageId"] == event_message_id("d1", "Email Sent")
    assert sent["properties"] == {"key": "d1", "channel": "email", "category": "marketing",
                                  "journey": "j", "journey_version": 1, "step": "s1",
                                  "provider_id": sent["properties"]["provider_id"],
                                  "attempts": 1}
    assert sent["context"]["library"]["name"] == "partitur-channels"

    # Writing the same delivery event again (a retried record) is dropped by the log.
    finisher = dispatcher.finisher
    with env.services.db.transaction() as tx:
        finisher._events.append(("Email Sent", profile, {"key": "d1"}))
        assert finisher.flush(tx, env.services.clock.now_us()) == 0
    assert len(env.logged("Email Sent")) == 1

    env.process()
    events = env.client.get(f"/api/v1/profiles/{profile}/events", headers=env.admin).json()
    assert [e["event"] for e in events["events"] if e["type"] == "track"] == ["Email Sent"]
    assert events["events"][0]["_partitur"]["source"].startswith("src_")
