"""SMTP security options against real aiosmtpd servers: STARTTLS with AUTH, implicit TLS, and
refusing to send in clear text when STARTTLS is required."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from partitur.channels import DeliveryError, Envelope
from partitur.channels.email import SmtpConfig, SmtpTransport
from tests.channels.sinks import SmtpSink, self_signed

ENVELOPE = Envelope(key="k:1", channel="email", profile_id="p", category="transactional",
                    to="kari@example.com", content={"subject": "Hi", "text": "Hello"})


def send(url: str, envelope: Envelope = ENVELOPE) -> str | None:
    async def go() -> str | None:
        transport = SmtpTransport(SmtpConfig.from_url(url), "Acme <a@acme.example>")
        try:
            return (await transport.send(envelope)).provider_id
        finally:
            await transport.aclose()

    return asyncio.run(go())


def test_starttls_with_login(tmp_path: Path) -> None:
    cert = self_signed(tmp_path)
    sink = SmtpSink(tls="starttls", cert=cert, users={"news": "s3cret"}).start()
    try:
        send(f"smtp://news:s3cret@127.0.0.1:{sink.port}?cafile={cert[0]}")
        [mail] = sink.wait(1)
        assert mail.tls and mail.login == "news"
        with pytest.raises(DeliveryError, match="authentication failed") as bad:
            send(f"smtp://news:wrong@127.0.0.1:{sink.port}?cafile={cert[0]}")
        assert bad.value.retryable
        with pytest.raises(DeliveryError, match="SMTP connection failed") as untrusted:
            send(f"smtp://news:s3cret@127.0.0.1:{sink.port}")  # self-signed, not trusted
        assert untrusted.value.retryable
    finally:
        sink.stop()


def test_implicit_tls(tmp_path: Path) -> None:
    cert = self_signed(tmp_path)
    sink = SmtpSink(tls="smtps", cert=cert).start()
    try:
        send(f"smtps://127.0.0.1:{sink.port}?verify=false")
        assert sink.wait(1)[0].tls
    finally:
        sink.stop()


def test_starttls_always_refuses_a_server_without_it() -> None:
    sink = SmtpSink().start()
    try:
        with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
            send(f"smtp://127.0.0.1:{sink.port}?starttls=always")
        assert sink.mails == []
        send(f"smtp://127.0.0.1:{sink.port}")  # auto: plain when not offered
        assert not sink.wait(1)[0].tls
    finally:
        sink.stop()


def test_connections_are_reused() -> None:
    sink = SmtpSink().start()

    async def go() -> None:
        transport = SmtpTransport(SmtpConfig.from_url(f"smtp://127.0.0.1:{sink.port}"),
                                  "a@acme.example", connections=1)
        try:
            for n in range(3):
                await transport.send(_with_key(n))
        finally:
            await transport.aclose()

    try:
        asyncio.run(go())
        assert [m.message["X-Partitur-Key"] for m in sink.wait(3)] == ["k0", "k1", "k2"]
    finally:
        sink.stop()


def _with_key(n: int) -> Envelope:
    return Envelope(key=f"k{n}", channel="email", profile_id="p", category="transactional",
                    to="kari@example.com", content={"subject": "Hi", "text": "Hello"})


def test_url_parsing() -> None:
    c = SmtpConfig.from_url("smtp://user%40x:p%3Ass@mail.example:587?starttls=always&timeout=5")
    assert (c.host, c.port, c.tls, c.starttls) == ("mail.example", 587, False, "always")
    assert (c.username, c.password, c.timeout) == ("user@x", "p:ss", 5.0)
    s = SmtpConfig.from_url("smtps://mail.example")
    assert (s.port, s.tls, s.starttls) == (465, True, "never")
    with pytest.raises(Exception, match="smtp://"):
        SmtpConfig.from_url("http://mail.example")
