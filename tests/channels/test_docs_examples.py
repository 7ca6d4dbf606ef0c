"""The examples in docs/channels.md and docs/templates.md are true: the template file
validates and renders, the receiver's check accepts our signature, the toml is valid."""

from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path
from typing import Any

from partitur.channels.config import ChannelConfig
from partitur.channels.webhook import sign
from partitur.settings import Settings
from partitur.templates import render_parts
from partitur.templates.files import check_file

DOCS = Path(__file__).resolve().parents[2] / "docs"


def blocks(name: str, lang: str) -> list[str]:
    text = (DOCS / name).read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_template_file_example_validates_and_renders() -> None:
    [source] = [b for b in blocks("templates.md", "yaml") if "templates:" in b]
    found = dict(check_file(source, "templates.yaml"))
    assert list(found) == ["welcome-email", "discount-sms", "crm-update", "sale-banner"]
    variables: dict[str, Any] = {
        "profile": {"id": "p1", "traits": {"crm_id": "c7"}},
        "event": {"properties": {}},
        "journey": {"key": "welcome"},
    }
    doc = found["welcome-email"]
    mail = render_parts("email", {k: doc[k] for k in ("subject", "text", "html")}, variables)
    assert mail["subject"] == "Welcome to Acme, there!"
    hook = found["crm-update"]
    out = render_parts("webhook", {k: v for k, v in hook.items() if k != "channel"}, variables)
    assert out["url"] == "https://crm.acme.example/api/people/c7"
    assert out["body"] == {"journey": "welcome", "arm": "", "plan": "free"}


def test_receiver_snippet_accepts_our_signature() -> None:
    [snippet] = [b for b in blocks("channels.md", "python") if "def verify" in b]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    body = b'{"stage":"trial"}'
    now = int(time.time())
    assert namespace["verify"]("whsec_test", sign("whsec_test", now, body), body)
    assert not namespace["verify"]("whsec_test", sign("other", now, body), body)
    documented = re.search(r"X-Partitur-Signature: (t=\S+)", (DOCS / "channels.md").read_text())
    assert documented is not None
    assert documented[1] == sign("whsec_test", 1767225600, body)


def test_settings_example_is_valid() -> None:
    [example] = [b for b in blocks("channels.md", "toml")]
    values = tomllib.loads(example)
    config = ChannelConfig.from_settings(Settings(**values))
    assert config.caps["email"].count == 1
    assert config.quiet_hours is not None and config.default_zone.key == "Europe/Oslo"
