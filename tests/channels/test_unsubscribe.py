"""The unsubscribe link in a real email: the page, one-click POST, the Unsubscribed event
and the withdrawn consent that then stops the next marketing email."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from partitur.channels import OutboundMessage
from tests.channels.conftest import Env, email_settings
from tests.channels.sinks import SmtpSink

MAIL = {"subject": "News", "text": "Hello", "html": "<p>Hi</p><p>{{ unsubscribe_url }}</p>"}


def test_one_click_unsubscribe_withdraws_consent(env_factory: Any, smtp: SmtpSink) -> None:
    env: Env = env_factory(**email_settings(smtp))
    kari = env.person("kari", email="kari@example.com", consent={"marketing_email": True})
    env.enqueue(OutboundMessage(key="n1", profile_id=kari, channel="email", template=MAIL,
                                journey="news"))
    dispatcher = env.dispatcher()
    dispatcher.drain()
    [mail] = smtp.wait(1)
    link = mail.message["List-Unsubscribe"].strip("<>")
    html = mail.message.get_body(("html",)).get_content()
    assert link.replace("&", "&amp;") in html or link in html
    assert html.count("Unsubscribe</a>") == 0  # the template placed the link itself
    path = urlsplit(link)
    local = f"{path.path}?{path.query}"

    page = env.client.get(local)
    assert page.status_code == 200 and "<form method='post'" in page.text
    assert env.logged("Unsubscribed") == []  # looking is not unsubscribing

    r = env.client.post(local, content=b"List-Unsubscribe=One-Click",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and "You are unsubscribed" in r.text
    [event] = env.logged("Unsubscribed")
    assert event["userId"] == "kari"
    assert event["context"]["consent"]["categoryPreferences"] == {"marketing_email": False}
    assert event["properties"]["key"] == "n1"
    env.process()
    profile = env.client.get(f"/api/v1/profiles/{kari}", headers=env.admin).json()
    assert profile["consent"]["marketing_email"]["granted"] is False

    env.enqueue(OutboundMessage(key="n2", profile_id=kari, channel="email", template=MAIL))
    dispatcher.drain()
    assert env.status("n2")["n2"]["reason"] == "marketing_email consent withdrawn"


def test_forged_or_broken_tokens_are_refused(env_factory: Any, smtp: SmtpSink) -> None:
    env: Env = env_factory(**email_settings(smtp))
    kari = env.person("kari", email="kari@example.com", consent={"marketing_email": True})
    env.enqueue(OutboundMessage(key="n1", profile_id=kari, channel="email", template=MAIL))
    env.dispatcher().drain()
    link = smtp.wait(1)[0].message["List-Unsubscribe"].strip("<>")
    token = link.split("token=", 1)[1]
    payload, mac = token.split(".")
    forged = f"{payload}.{'A' * len(mac)}"
    for bad in (forged, "nonsense", ""):
        r = env.client.post(f"/v1/unsubscribe?token={bad}")
        assert r.status_code == 400 and "not valid" in r.text
    assert env.logged("Unsubscribed") == []
