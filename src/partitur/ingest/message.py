"""The Segment Spec message, decoded by msgspec straight from the request body.

One ``Message`` type serves every call (track, identify, page, screen, group, alias); per-type
rules are checked by :func:`check_call`. Field names are the Spec's camelCase ones. Besides the
Spec's own fields, the extras that the official client libraries send are known
(analytics.js ``_metadata``, RudderStack's ``channel``/``rudderId``/``request_ip``), so real clients
work while a typo such as ``userid`` is refused with a clear error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

CALL_TYPES = ("track", "identify", "page", "screen", "group", "alias")

Id = str | int | float


class Message(msgspec.Struct, rename="camel", omit_defaults=True, forbid_unknown_fields=True):
    type: str | None = None
    message_id: Id | None = None
    user_id: Id | None = None
    anonymous_id: Id | None = None
    previous_id: Id | None = None
    group_id: Id | None = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    timestamp: datetime | None = None
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None
    received_at: datetime | None = None
    version: int | str | None = None
    channel: str | None = None
    write_key: str | None = None
    rudder_id: str | None = None
    request_ip: str | None = msgspec.field(default=None, name="request_ip")
    metadata: dict[str, Any] | None = msgspec.field(default=None, name="_metadata")
    # Written by Partitur on the way in: source, flags, tracking-plan violations.
    partitur: dict[str, Any] | None = msgspec.field(default=None, name="_partitur")


class LenientMessage(Message, forbid_unknown_fields=False):
    """Same fields; unknown top-level keys are dropped (``unknown_fields = "ignore"``)."""


class Batch(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    batch: list[Message]
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    sent_at: datetime | None = None
    write_key: str | None = None
    metadata: dict[str, Any] | None = msgspec.field(default=None, name="_metadata")


class LenientBatch(Batch, forbid_unknown_fields=False):
    batch: list[LenientMessage]  # type: ignore[assignment]


class SpecError(Exception):
    """A call that breaks the Spec; ``field`` names the offending key."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def as_id(value: Id | None) -> str | None:
    """Ids may arrive as numbers (many back ends send integer user ids); keep them as text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def check_call(msg: Message, call: str | None) -> None:
    """Per-call rules of the Spec. ``call`` is the endpoint's type, or None for batch/import."""
    if call is not None:
        if msg.type is not None and msg.type != call:
            raise SpecError("type", f"type '{msg.type}' sent to the /{call} endpoint")
        msg.type = call
    elif msg.type is None:
        raise SpecError("type", "missing 'type' (one of " + ", ".join(CALL_TYPES) + ")")
    elif msg.type not in CALL_TYPES:
        raise SpecError("type", f"unknown type '{msg.type}'")
    kind = msg.type
    if kind == "alias":
        if as_id(msg.previous_id) in (None, ""):
            raise SpecError("previousId", "alias needs 'previousId'")
        if as_id(msg.user_id) in (None, ""):
            raise SpecError("userId", "alias needs 'userId'")
    elif as_id(msg.user_id) in (None, "") and as_id(msg.anonymous_id) in (None, ""):
        raise SpecError("userId", "either 'userId' or 'anonymousId' is required")
    if kind == "track" and not msg.event:
        raise SpecError("event", "track needs a non-empty 'event' name")
    if kind == "group" and as_id(msg.group_id) in (None, ""):
        raise SpecError("groupId", "group needs 'groupId'")
