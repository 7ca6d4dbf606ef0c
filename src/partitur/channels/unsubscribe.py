"""Signed unsubscribe links.

A token names the profile, the consent purpose to withdraw and the delivery it came from,
signed with HMAC-SHA256 (``unsubscribe_secret``, or a key generated once and kept in the
store), so a link cannot be forged for someone else. Following the link (``POST``, which is
what mail clients send for ``List-Unsubscribe-Post`` one-click, or the button on the page a
``GET`` shows) records an ``Unsubscribed`` event with
``context.consent.categoryPreferences = {<purpose>: false}`` into the event log; the worker
turns it into withdrawn consent on the profile, and journeys can exit on it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote

from partitur.errors import InvalidInput
from partitur.store.db import Database

SECRET_NAME = "unsubscribe"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    profile_id: str
    purpose: str
    key: str


def make_token(secret: str, item: Unsubscribe) -> str:
    payload = "\n".join((item.profile_id, item.purpose, item.key)).encode()
    mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:20]
    return f"{_b64(payload)}.{_b64(mac)}"


def read_token(secret: str, token: str) -> Unsubscribe:
    """The token's content, or :class:`InvalidInput` if it is malformed or not ours."""
    try:
        payload_part, mac_part = token.strip().split(".", 1)
        payload, mac = _unb64(payload_part), _unb64(mac_part)
        expected = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:20]
        if not hmac.compare_digest(mac, expected):
            raise ValueError("bad signature")
        profile_id, purpose, key = payload.decode().split("\n", 2)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("this unsubscribe link is not valid") from None
    return Unsubscribe(profile_id, purpose, key)


def unsubscribe_url(public_url: str, token: str) -> str:
    return f"{public_url}/v1/unsubscribe?token={quote(token)}"


def load_secret(db: Database, configured: str | None) -> str:
    """``configured``, or the store's generated key (created on first use)."""
    if configured:
        return configured
    with db.transaction() as tx:
        tx.execute(
            "INSERT INTO channel_secrets (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (SECRET_NAME, secrets.token_urlsafe(32)),
        )
        row = tx.one("SELECT value FROM channel_secrets WHERE name = ?", (SECRET_NAME,))
    assert row is not None
    return str(row[0])
