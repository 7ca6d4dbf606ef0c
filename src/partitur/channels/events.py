"""Delivery events back into the event log, so analytics and journeys can use them.

``Email Sent``, ``Email Bounced`` (an SMTP permanent refusal), ``Email Failed``, ``SMS Sent``,
``SMS Failed``, ``Webhook Sent``, ``Webhook Failed``, ``Web Message Sent``, ``Web Message
Failed``, ``Message Suppressed`` and ``Unsubscribed`` are ``track`` calls attributed to the
person (by their ``userId``, else an ``anonymousId``, so the worker resolves them to the same
profile) with properties naming the journey, step, channel and delivery key. Their
``messageId`` is derived from the delivery key and the event name, so a retried write is
dropped by the log's de-duplication instead of counted twice. They are written to the log in
the same transaction as the delivery's new status.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping
from typing import Any

import msgspec

from partitur.clock import iso
from partitur.identity import store as graph_store
from partitur.store.db import Tx

SOURCE_NAME = "partitur-channels"
LIBRARY = {"name": "partitur-channels", "version": "1"}
_ENC = msgspec.json.Encoder()

_LABELS = {"email": "Email", "sms": "SMS", "webhook": "Webhook", "web": "Web Message"}


def event_name(channel: str, outcome: str) -> str:
    """``outcome``: Sent | Failed | Bounced."""
    return f"{_LABELS.get(channel, channel.title())} {outcome}"


def event_message_id(key: str, name: str) -> str:
    return "dlv-" + hashlib.sha256(f"{key}\n{name}".encode()).hexdigest()[:40]


def person_ids(tx: Tx, profile_id: str) -> tuple[str | None, str | None]:
    """``(user_id, anonymous_id)`` to attribute an event to the profile: its user id if it
    has one, else its first anonymous id."""
    user_id = anonymous_id = None
    for kind, value, _, _ in graph_store.identifiers_of(tx, profile_id):
        if kind == "user_id" and user_id is None:
            user_id = value
        elif kind == "anonymous_id" and anonymous_id is None:
            anonymous_id = value
    return (user_id, None) if user_id else (None, anonymous_id)


def track_row(
    *,
    name: str,
    message_id: str,
    user_id: str | None,
    anonymous_id: str | None,
    properties: Mapping[str, Any],
    now_us: int,
    source_id: str,
    partitions: int,
    context: Mapping[str, Any] | None = None,
) -> tuple[Any, ...]:
    """One event-log row (the shape ``EventLog.append`` and the group commit take)."""
    stamp = iso(now_us)
    body: dict[str, Any] = {
        "type": "track",
        "event": name,
        "messageId": message_id,
        "properties": dict(properties),
        "context": {"library": LIBRARY, **(context or {})},
        "timestamp": stamp,
        "originalTimestamp": stamp,
        "receivedAt": stamp,
        "_partitur": {"source": source_id},
    }
    if user_id:
        body["userId"] = user_id
    if anonymous_id:
        body["anonymousId"] = anonymous_id
    route = anonymous_id or user_id or ""
    return (
        message_id,
        source_id,
        "track",
        name,
        user_id,
        anonymous_id,
        now_us,
        now_us,
        zlib.crc32(route.encode()) % partitions,
        _ENC.encode(body).decode(),
    )
