"""SMS through a Twilio-shaped API served by a local HTTP server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from partitur.channels import OutboundMessage
from tests.channels.conftest import Env
from tests.channels.sinks import HttpSink, twilio


@pytest.fixture
def provider() -> Iterator[HttpSink]:
    sink = HttpSink(answer=twilio).start()
    yield sink
    sink.stop()


def sms_settings(provider: HttpSink) -> dict[str, Any]:
    return {"sms_url": provider.url, "sms_account_sid": "AC123", "sms_auth_token": "tok",
            "sms_from": "+15550001111"}


def sms(profile: str, key: str, text: str = "Your code is {{ event.properties.code }}",
        **kw: Any) -> OutboundMessage:
    return OutboundMessage(key=key, profile_id=profile, channel="sms", template={"text": text},
                           variables={"event": {"properties": {"code": "SAVE10"}}},
                           journey="welcome", step_id="discount", **kw)


def test_sms_in_the_twilio_shape(env_factory: Any, provider: HttpSink) -> None:
    env: Env = env_factory(**sms_settings(provider), default_phone_region="NO")
    kari = env.person("kari", phone="412 34 567", consent={"sms": True})
    env.enqueue(sms(kari, "s1"))
    env.dispatcher().drain()
    [request] = provider.wait(1)
    assert request.method == "POST"
    assert request.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"AC123:tok").decode()
    assert request.headers["idempotency-key"] == "s1"
    assert request.form() == {"To": "+4741234567", "From": "+15550001111",
                              "Body": "Your code is SAVE10"}
    status = env.status("s1")["s1"]
    assert status["status"] == "sent" and status["provider_id"] == "SMs1"
    [sent] = env.logged("SMS Sent")
    assert sent["userId"] == "kari" and sent["properties"]["provider_id"] == "SMs1"


def test_sms_consent_and_refused_numbers(env_factory: Any, provider: HttpSink) -> None:
    env: Env = env_factory(**sms_settings(provider))
    quiet = env.person("q", phone="+14155550100")
    wrong = env.person("w", phone="+14155550000", consent={"sms": True})
    env.enqueue(sms(quiet, "s-q"), sms(wrong, "s-w"),
                sms(quiet, "s-otp", category="transactional"))
    env.dispatcher().drain()
    statuses = env.status("s-q", "s-w", "s-otp")
    assert statuses["s-q"]["status"] == "suppressed"
    assert statuses["s-q"]["reason"] == "no sms consent"
    assert statuses["s-w"]["status"] == "failed" and statuses["s-w"]["code"] == 400
    assert "Invalid 'To' Phone Number" in statuses["s-w"]["reason"]
    assert statuses["s-otp"]["status"] == "sent"
    assert [e["userId"] for e in env.logged("SMS Failed")] == ["w"]


def test_sms_without_a_number_or_too_long(env_factory: Any, provider: HttpSink) -> None:
    env: Env = env_factory(**sms_settings(provider))
    nobody = env.person("n", consent={"sms": True})
    long = env.person("l", phone="+14155550199", consent={"sms": True})
    env.enqueue(sms(nobody, "s-n"), sms(long, "s-l", text="x" * 2000))
    env.dispatcher().drain()
    statuses = env.status("s-n", "s-l")
    assert statuses["s-n"]["reason"] == "no phone number on the profile"
    assert statuses["s-l"]["status"] == "failed"
    assert "at most 1600 can be sent" in statuses["s-l"]["reason"]
    assert provider.requests == []
