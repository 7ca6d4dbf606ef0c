"""The Segment Spec message, decoded by msgspec straight from the request body.

One ``Message`` type serves every call (track, identify, page, screen, group, alias); msgspec
checks the types of all fields in C, and :func:`check_call` adds the per-call rules that a type
system cannot say ("``userId`` or ``anonymousId``"). Field names are the Spec's camelCase ones.

Besides the Spec's own fields, the extras that real client libraries send are known, so that they
work while a typo such as ``userid`` is refused with a clear error:

* analytics.js: ``writeKey`` and ``sentAt`` on every event, ``_metadata`` (bundled and unbundled
  integrations, retry counts), ``projectId`` (older versions, a copy of the write key);
* analytics-node: ``_metadata`` (``nodeVersion``, ``jsRuntime``);
* analytics-go: a batch-level ``messageId`` and ``context``; analytics-java: ``sequence``;
* RudderStack SDKs: ``channel``, ``originalTimestamp``, ``rudderId``, ``request_ip``,
  ``action``, ``userProperties``, ``destinationProps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec

CALL_TYPES = ("track", "identify", "page", "screen", "group", "alias")

CallType = Literal["track", "identify", "page", "screen", "group", "alias"]
Id = str | int | float
# A JSON object as the raw bytes it arrived as, or None when absent; read it with obj(). (msgspec
# cannot put Raw in a union: the default None is never decoded, only given when the key is
# missing; after obj() or a writer has replaced it, the value is a dict.)
Obj = msgspec.Raw
_NONE: Any = None


class Message(msgspec.Struct, rename="camel", omit_defaults=True, forbid_unknown_fields=True):
    type: CallType | None = None
    message_id: Id | None = None
    user_id: Id | None = None
    anonymous_id: Id | None = None
    previous_id: Id | None = None
    group_id: Id | None = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    # Objects are kept as the raw JSON they arrived as (checked to be objects by
    # :func:`check_objects`) and decoded only where something reads them (:func:`obj`): the
    # log stores them as sent, and most events need nothing from them on the way in.
    properties: Obj = _NONE
    traits: Obj = _NONE
    context: Obj = _NONE
    integrations: Obj = _NONE
    timestamp: datetime | None = None
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None
    received_at: datetime | None = None
    version: int | str | None = None
    channel: str | None = None
    write_key: str | None = None
    project_id: str | None = None
    rudder_id: str | None = None
    request_ip: str | None = msgspec.field(default=None, name="request_ip")
    action: str | None = None
    user_properties: Obj = _NONE
    destination_props: Obj = _NONE
    metadata: Obj = msgspec.field(default=_NONE, name="_metadata")
    # Written by Partitur on the way in: source, flags, tracking-plan violations.
    partitur: dict[str, Any] | None = msgspec.field(default=None, name="_partitur")


class LenientMessage(Message, forbid_unknown_fields=False):
    """Same fields; unknown top-level keys are let through (see ``decode.extra_fields``)."""


class Batch(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    batch: list[Message]
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    sent_at: datetime | None = None
    write_key: str | None = None
    message_id: Id | None = None
    sequence: int | None = None
    metadata: dict[str, Any] | None = msgspec.field(default=None, name="_metadata")


class LenientBatch(Batch, forbid_unknown_fields=False):
    batch: list[LenientMessage]  # type: ignore[assignment]


@dataclass(slots=True)
class Decoded:
    """One request's messages with the batch-level fields that apply to all of them."""

    messages: list[Message]
    write_key: str | None
    sent_at: datetime | None
    context: dict[str, Any] | None
    integrations: dict[str, Any] | None
    extras: list[dict[str, msgspec.Raw]] | None = None  # unknown keys per message, when kept
    has_nul: bool = False  # the body escapes a NUL character somewhere


MESSAGE_KEYS = frozenset(f.encode_name for f in msgspec.structs.fields(Message))


class SpecError(Exception):
    """A call that breaks the Spec; ``field`` names the offending key."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


OBJECT_FIELDS = (
    ("properties", "properties"), ("traits", "traits"), ("context", "context"),
    ("integrations", "integrations"), ("userProperties", "user_properties"),
    ("destinationProps", "destination_props"), ("_metadata", "metadata"),
)
_DECODE_OBJ = msgspec.json.Decoder(dict[str, Any])


def check_objects(msg: Message) -> None:
    """The raw object fields hold objects (or ``null``, which becomes None)."""
    for field, attr in OBJECT_FIELDS:
        raw = getattr(msg, attr)
        if raw is None or type(raw) is not msgspec.Raw:
            continue
        first = memoryview(raw)[0]
        if first == 123:  # "{"
            continue
        if first == 110:  # "n": the only valid JSON value that starts so is null
            setattr(msg, attr, None)
            continue
        raise SpecError(field, f"'{field}' must be an object")


def obj(msg: Message, attr: str) -> dict[str, Any] | None:
    """The object field ``attr`` as a dict (decoded once, then kept on the message)."""
    value = getattr(msg, attr)
    if type(value) is msgspec.Raw:
        value = _DECODE_OBJ.decode(value)
        setattr(msg, attr, value)
    return value  # type: ignore[no-any-return]


def as_id(value: Id | None) -> str | None:
    """Ids may arrive as numbers (many back ends send integer user ids); keep them as text.

    An empty id is no id.
    """
    if value is None or value == "":
        return None
    if type(value) is str:
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def check_call(msg: Message, call: str | None) -> None:
    """Per-call rules of the Spec. ``call`` is the endpoint's type, or None for batch/import.

    Expects ids already passed through :func:`as_id`.
    """
    if call is not None:
        if msg.type is not None and msg.type != call:
            raise SpecError("type", f"type '{msg.type}' sent to the /{call} endpoint")
        msg.type = call  # type: ignore[assignment]
    elif msg.type is None:
        raise SpecError("type", "missing 'type' (one of " + ", ".join(CALL_TYPES) + ")")
    kind = msg.type
    if kind == "alias":
        if msg.previous_id is None:
            raise SpecError("previousId", "alias needs 'previousId'")
        if msg.user_id is None:
            raise SpecError("userId", "alias needs 'userId'")
        return
    if msg.user_id is None and msg.anonymous_id is None:
        raise SpecError("userId", "either 'userId' or 'anonymousId' is required")
    if kind == "track":
        if not msg.event:
            raise SpecError("event", "track needs a non-empty 'event' name")
    elif kind == "group" and msg.group_id is None:
        raise SpecError("groupId", "group needs 'groupId'")
