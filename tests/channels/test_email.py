"""Email over a real SMTP server (aiosmtpd): multipart bodies, headers, idempotency key,
unsubscribe link, bounces and retries."""

from __future__ import annotations

from typing import Any

from partitur.channels import OutboundMessage
from tests.channels.conftest import Env, email_settings
from tests.channels.sinks import SmtpSink

WELCOME = {
    "subject": "Welcome, {{ profile.traits.first_name }}!",
    "text": "Hello {{ profile.traits.first_name }}, your plan is {{ event.properties.plan }}.",
    "html": "<p>Hello <b>{{ profile.traits.first_name }}</b></p>",
}


def message(profile: str, key: str = "welcome:v1:p:e:welcome:1", **kw: Any) -> OutboundMessage:
    base: dict[str, Any] = {
        "template": WELCOME,
        "variables": {"event": {"properties": {"plan": "pro"}},
                      "journey": {"key": "welcome", "step": "welcome"}},
        "journey": "welcome", "version": 1, "step_id": "welcome",
    }
    base.update(kw)
    return OutboundMessage(key=key, profile_id=profile, channel="email", **base)


def test_marketing_email_reaches_the_smtp_server(env_factory: Any, smtp: SmtpSink) -> None:
    env: Env = env_factory(**email_settings(smtp))
    kari = env.person("kari-1", email="Kari@Example.com", first_name="Kari",
                      consent={"marketing_email": True})
    assert env.enqueue(message(kari)) == 1
    assert env.dispatcher().drain() == 1
    [mail] = smtp.wait(1)
    assert mail.recipients == ["kari@example.com"]
    msg = mail.message
    assert msg["Subject"] == "Welcome, Kari!"
    assert msg["X-Partitur-Key"] == "welcome:v1:p:e:welcome:1"
    assert msg["Message-ID"].endswith("@acme.example>")
    assert msg["List-Unsubscribe"].startswith("<https://crm.acme.example/v1/unsubscribe?token=")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Hello Kari, your plan is pro." in text
    assert "Unsubscribe: https://crm.acme.example/v1/unsubscribe?token=" in text
    assert "<b>Kari</b>" in html and "Unsubscribe</a>" in html
    status = env.status("welcome:v1:p:e:welcome:1")["welcome:v1:p:e:welcome:1"]
    assert status["status"] == "sent"
    assert status["attempts"] == 1
    assert status["provider_id"] == msg["Message-ID"]


def test_transactional_email_goes_without_consent_or_unsubscribe_header(
    env_factory: Any, smtp: SmtpSink
) -> None:
    env: Env = env_factory(**email_settings(smtp))
    ola = env.person("ola", email="ola@example.com", first_name="Ola")  # no consent at all
    env.enqueue(message(ola, key="receipt-1", category="transactional"))
    env.dispatcher().drain()
    [mail] = smtp.wait(1)
    assert mail.message["List-Unsubscribe"] is None
    assert "Unsubscribe" not in mail.message.get_body(("plain",)).get_content()
    assert env.status("receipt-1")["receipt-1"]["status"] == "sent"


def test_stored_template_version_is_recorded(env_factory: Any, smtp: SmtpSink) -> None:
    env: Env = env_factory(**email_settings(smtp))
    for subject in ("v1", "v2 {{ profile.traits.first_name }}"):
        r = env.client.put("/api/v1/templates/welcome-email", headers=env.admin,
                           json={"channel": "email", "subject": subject, "text": "x"})
        assert r.status_code in (200, 201)
    kari = env.person("kari", email="kari@example.com", first_name="Kari",
                      consent={"marketing_email": True})
    env.enqueue(message(kari, key="k1", template="welcome-email"))
    env.dispatcher().drain()
    assert smtp.wait(1)[0].message["Subject"] == "v2 Kari"
    status = env.status("k1")["k1"]
    assert (status["template"], status["template_version"]) == ("welcome-email", 2)


def test_permanent_refusal_is_a_bounce(env_factory: Any, smtp: SmtpSink) -> None:
    env: Env = env_factory(**email_settings(smtp))
    who = env.person("b", email="bounce@example.com", first_name="B",
                     consent={"marketing_email": True})
    env.enqueue(message(who, key="b1"))
    env.dispatcher().drain()
    status = env.status("b1")["b1"]
    assert status["status"] == "failed" and status["code"] == 550
    assert status["reason"] == "attempt 1: recipient refused: 550 5.1.1 no such user"
    [bounced] = env.logged("Email Bounced")
    assert bounced["userId"] == "b"
    assert bounced["properties"]["key"] == "b1"
    assert bounced["properties"]["journey"] == "welcome"
    assert bounced["properties"]["step"] == "welcome"
    assert env.logged("Email Sent") == []


def test_temporary_refusal_is_retried_later(env_factory: Any, smtp: SmtpSink,
                                            clock: Any) -> None:
    from datetime import timedelta

    env: Env = env_factory(**email_settings(smtp), delivery_retry_base=10,
                           delivery_max_attempts=2)
    who = env.person("l", email="later@example.com", first_name="L",
                     consent={"marketing_email": True})
    env.enqueue(message(who, key="l1"))
    dispatcher = env.dispatcher()
    dispatcher.drain()
    status = env.status("l1")["l1"]
    assert status["status"] == "queued" and status["attempts"] == 1
    assert status["reason"].startswith("attempt 1: recipient refused: 451")
    assert dispatcher.drain() == 0  # not due yet: 5 to 10 s away
    clock.advance(timedelta(seconds=11))
    assert dispatcher.drain() == 1
    status = env.status("l1")["l1"]
    assert status["status"] == "dead" and status["attempts"] == 2
    assert status["reason"].endswith("(no attempts left)")
    [failed] = env.logged("Email Failed")
    assert failed["properties"]["dead"] is True


def test_missing_variable_fails_with_the_reason(env_factory: Any, smtp: SmtpSink) -> None:
    env: Env = env_factory(**email_settings(smtp))
    who = env.person("m", email="m@example.com", consent={"marketing_email": True})  # no name
    env.enqueue(message(who, key="m1"))
    env.dispatcher().drain()
    status = env.status("m1")["m1"]
    assert status["status"] == "failed"
    assert status["reason"] == "template: subject: 'dict object' has no attribute 'first_name'"
    assert smtp.mails == []
    [failed] = env.logged("Email Failed")
    assert failed["properties"]["reason"] == status["reason"]


def test_no_address_is_suppressed(env_factory: Any, smtp: SmtpSink) -> None:
    env: Env = env_factory(**email_settings(smtp))
    who = env.person("n", first_name="N", consent={"marketing_email": True})
    env.enqueue(message(who, key="n1"), message(who, key="n2", to="test@qa.example"))
    env.dispatcher().drain()
    statuses = env.status("n1", "n2")
    assert statuses["n1"]["status"] == "suppressed"
    assert statuses["n1"]["reason"] == "no email address on the profile"
    assert statuses["n2"]["status"] == "sent"
    assert smtp.wait(1)[0].recipients == ["test@qa.example"]


def test_unconfigured_email_fails_saying_what_to_set(env_factory: Any) -> None:
    env: Env = env_factory()
    who = env.person("u", email="u@example.com", first_name="U",
                     consent={"marketing_email": True})
    env.enqueue(message(who, key="u1"))
    env.dispatcher().drain()
    assert env.status("u1")["u1"]["reason"] == (
        "attempt 1: email is not configured: set PARTITUR_SMTP_URL and PARTITUR_SMTP_FROM")
