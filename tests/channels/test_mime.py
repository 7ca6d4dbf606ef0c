"""The MIME message an email becomes: what mail readers parse out of it, whatever the
template produced (non-ASCII, long lines, lines of a single dot, header injection)."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

from partitur.channels.base import Envelope
from partitur.channels.email import build_email, message_id

SENDER = "Åse i Acme <news@acme.example>"


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def content(part: Any) -> str:
    """The decoded body with the wire's CRLF line ends read as newlines."""
    return str(part.get_content()).replace("\r\n", "\n")


def envelope(**content: Any) -> Envelope:
    return Envelope(key="welcome:v1:p:e:welcome:1", channel="email", profile_id="p",
                    category="marketing", to="kari@example.com", content=content,
                    unsubscribe_url="https://crm.acme.example/v1/unsubscribe?token=abc")


def test_multipart_with_headers_readers_understand() -> None:
    data = build_email(envelope(subject="Velkommen, Kåre \u2013 50 % rabatt 🎉",
                                text="Hei Kåre,\nsee you.", html="<p>Hei <b>Kåre</b></p>"),
                       SENDER, date_s=0)
    msg = parse(data)
    assert msg["Subject"] == "Velkommen, Kåre \u2013 50 % rabatt 🎉"
    assert msg["From"].addresses[0].display_name == "Åse i Acme"
    assert msg["From"].addresses[0].addr_spec == "news@acme.example"
    assert msg["To"] == "kari@example.com"
    assert msg["Message-ID"] == message_id("welcome:v1:p:e:welcome:1", SENDER)
    assert msg["X-Partitur-Key"] == "welcome:v1:p:e:welcome:1"
    assert msg["Date"].datetime.timestamp() == 0
    assert msg["List-Unsubscribe"] == "<https://crm.acme.example/v1/unsubscribe?token=abc>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    assert content(msg.get_body(("plain",))) == "Hei Kåre,\nsee you.\n"
    assert content(msg.get_body(("html",))) == "<p>Hei <b>Kåre</b></p>\n"
    assert not msg.defects and all(not part.defects for part in msg.walk())
    # Every line ends in CRLF and stays within the 78 characters RFC 5322 recommends.
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    assert data.isascii()  # 7-bit clean: any relay takes it


def test_long_lines_dots_and_trailing_space_survive() -> None:
    text = ("word " * 60).strip() + "\n.\n..\nends with space   \nmore\r\nwindows\r\n=3D literal"
    msg = parse(build_email(envelope(subject="s" * 200, text=text), SENDER))
    assert msg["Subject"] == "s" * 200
    assert msg.get_content_type() == "text/plain"
    assert content(msg) == text.replace("\r\n", "\n") + "\n"


def test_html_only_and_empty() -> None:
    msg = parse(build_email(envelope(subject="x", html="<p>only</p>"), SENDER))
    assert msg.get_content_type() == "text/html"
    assert content(msg) == "<p>only</p>\n"
    assert content(parse(build_email(envelope(subject=""), SENDER))) == "\n"


def test_no_header_injection() -> None:
    env = Envelope(key="k\r\nBcc: evil@example.com", channel="email", profile_id="p",
                   category="transactional", to="kari@example.com\r\nBcc: evil@example.com",
                   content={"subject": "Hi\r\nBcc: evil@example.com", "text": "t"})
    msg = parse(build_email(env, SENDER))
    assert msg["Bcc"] is None
    assert "evil@example.com" in msg["Subject"]  # kept as text on the one header line
