"""From request bytes to validated, normalised rows for the event log.

Runs on the request path, so it does as little as it can in Python: msgspec validates the
structure and every field's type in C; Python adds the Spec's per-call rules, clock-skew
correction and the batch-level ``context``/``integrations`` merge, a few operations per event.

Time fields, as the Segment Spec defines them:

* ``originalTimestamp``: when the call happened, on the client's clock: the client's
  ``originalTimestamp``, or else its ``timestamp`` (what libraries send);
* ``sentAt``: when the client sent it, on the same clock: the batch's ``sentAt`` (closest to the
  actual send), or else the event's own;
* ``receivedAt``: when the request reached us, on our clock;
* ``timestamp``: with ``sentAt``, ``receivedAt - (sentAt - originalTimestamp)`` (the client's
  clock skew removed); without it, the client's time kept as sent (historical imports);
  without any client time, ``receivedAt``. More than ``max_future_us`` ahead of ``receivedAt``
  is clamped to ``receivedAt`` and flagged ``timestamp_clamped``.
"""

from __future__ import annotations

import re
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from partitur.clock import from_us, to_us
from partitur.errors import InvalidInput, PayloadTooLarge, Unauthorized
from partitur.ingest.message import (
    MESSAGE_KEYS,
    Batch,
    LenientBatch,
    LenientMessage,
    Message,
    SpecError,
    as_id,
    check_call,
)

_ENCODER = msgspec.json.Encoder()
_BOM = b"\xef\xbb\xbf"
_BATCH_PATH = re.compile(r"\.batch\[(\d+)\]")
_NAMED = re.compile(r"^Object (contains unknown|missing required) field `([^`]*)`$")


@dataclass(frozen=True, slots=True)
class Limits:
    max_event_bytes: int = 32 * 1024
    max_request_bytes: int = 500 * 1024
    max_batch_events: int = 2500
    max_future_us: int = 86_400 * 1_000_000
    lenient: bool = False  # keep unknown top-level keys instead of refusing them
    partitions: int = 256
    body_timeout: float = 60.0  # seconds to receive a request body

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return cls(
            max_event_bytes=settings.max_event_bytes,
            max_request_bytes=settings.max_request_bytes,
            max_batch_events=settings.max_batch_events,
            max_future_us=settings.max_future_seconds * 1_000_000,
            lenient=settings.unknown_fields in ("keep", "ignore"),
            partitions=settings.partitions,
        )


@dataclass(slots=True)
class Decoded:
    messages: list[Message]
    write_key: str | None
    sent_at: datetime | None
    context: dict[str, Any] | None
    integrations: dict[str, Any] | None
    extras: list[dict[str, msgspec.Raw]] | None = None  # unknown keys per message, when kept
    has_nul: bool = False  # the body escapes a NUL character somewhere


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body (one or more members) without ever holding more than ``limit``."""
    out: list[bytes] = []
    size = 0
    data = body
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(data, limit + 1 - size)
        except zlib.error as exc:
            raise InvalidInput(f"request body is not valid gzip: {exc}") from None
        size += len(chunk)
        out.append(chunk)
        if size > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes once decompressed")
        if not inflater.eof:
            raise InvalidInput("request body is not valid gzip: the stream is truncated")
        data = inflater.unused_data
        if not data.strip(b"\0"):
            return b"".join(out)


def decode(body: bytes, call: str | None, limits: Limits) -> Decoded:
    """Decode one call's body. ``call`` is None for /batch and /import."""
    if len(body) > limits.max_request_bytes:
        raise PayloadTooLarge(f"request body is larger than {limits.max_request_bytes} bytes")
    if body.startswith(_BOM):
        body = body[3:]
    if not body or body.isspace():
        raise InvalidInput("request body is empty; expected a JSON object")
    try:
        decoded = _decode(body, call, limits)
    except msgspec.ValidationError as exc:
        raise _validation_error(str(exc), batch=call is None) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"invalid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise InvalidInput("invalid JSON: the body is not valid UTF-8") from None
    except RecursionError:
        raise InvalidInput("invalid JSON: nested too deeply") from None
    decoded.has_nul = b"\\u0000" in body
    return decoded


def _decode(body: bytes, call: str | None, limits: Limits) -> Decoded:
    if call is not None:
        one = msgspec.json.decode(body, type=LenientMessage if limits.lenient else Message)
        decoded = Decoded([one], one.write_key, None, None, None)
        if limits.lenient:
            decoded.extras = [_unknown(msgspec.json.decode(body, type=dict[str, msgspec.Raw]))]
        return decoded
    batch = msgspec.json.decode(body, type=LenientBatch if limits.lenient else Batch)
    count = len(batch.batch)
    if count > limits.max_batch_events:
        raise PayloadTooLarge(
            f"batch has {count} events; at most {limits.max_batch_events} are accepted in one "
            "request",
            details=[{"field": "batch", "count": count}],
        )
    if not count:
        raise InvalidInput("'batch' is empty", details=[{"field": "batch"}])
    messages: list[Message] = list(batch.batch)
    decoded = Decoded(
        messages, _body_key(batch.write_key, messages), batch.sent_at, batch.context,
        batch.integrations,
    )
    if limits.lenient:
        raw = msgspec.json.decode(body, type=_RawBatch)
        decoded.extras = [_unknown(fields) for fields in raw.batch]
    return decoded


class _RawBatch(msgspec.Struct):
    batch: list[dict[str, msgspec.Raw]]


def _unknown(fields: dict[str, msgspec.Raw]) -> dict[str, msgspec.Raw]:
    return {k: v for k, v in fields.items() if k not in MESSAGE_KEYS}


def _body_key(top: str | None, messages: list[Message]) -> str | None:
    """The batch's write key; analytics.js also repeats it in every event. They must agree."""
    keys = {m.write_key for m in messages if m.write_key is not None}
    if top is not None:
        keys.add(top)
    if len(keys) > 1:
        raise Unauthorized("the events of this batch carry different write keys")
    return top if top is not None else (keys.pop() if keys else None)


class _KeyPeek(msgspec.Struct, rename="camel"):
    write_key: Any = None
    batch: Any = None


def peek_write_key(body: bytes) -> tuple[bool, str | None]:
    """For a body that failed validation: (is it a JSON object?, the write key it names)."""
    try:
        peek = msgspec.json.decode(body.removeprefix(_BOM), type=_KeyPeek)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return False, None
    key = peek.write_key
    if key is None and isinstance(peek.batch, list) and peek.batch:
        first = peek.batch[0]
        key = first.get("writeKey") if isinstance(first, dict) else None
    return True, key if isinstance(key, str) and key else None


def _validation_error(text: str, *, batch: bool) -> InvalidInput:
    """msgspec's message, with the event index and the field in ``details``."""
    message, _, path = text.partition(" - at `$")
    path = path.rstrip("`")
    index: int | None = None if batch else 0
    if batch:
        match = _BATCH_PATH.match(path)
        if match:
            index = int(match.group(1))
            path = path[match.end() :]
    field = path.lstrip(".")
    named = _NAMED.match(message)
    if named:
        field = f"{field}.{named.group(2)}" if field else named.group(2)
        message = (
            f"unknown field '{named.group(2)}' (not in the Segment Spec)"
            if named.group(1) == "contains unknown"
            else f"missing required field '{named.group(2)}'"
        )
    else:
        message = message.replace("`", "")
        message = message[:1].lower() + message[1:]
        if field:
            message = f"'{field}': {message}"
    detail: dict[str, Any] = {"field": field or "$"}
    if index is not None:
        detail = {"index": index, **detail}
        if batch:
            message = f"event {index}: {message}"
    return InvalidInput(message, details=[detail])


def _merge(base: dict[str, Any] | None, own: dict[str, Any] | None) -> dict[str, Any] | None:
    if not base:
        return own
    if not own:
        return dict(base)
    merged = dict(base)
    merged.update(own)
    return merged


def _refuse(index: int, call: str | None, field: str, message: str) -> InvalidInput:
    return InvalidInput(
        message if call is not None else f"event {index}: {message}",
        details=[{"index": index, "field": field}],
    )


Row = tuple[str, str, str, str | None, str | None, str | None, int, int, int, str]

_COLUMNS = (("messageId", "message_id"), ("userId", "user_id"),
            ("anonymousId", "anonymous_id"), ("event", "event"), ("name", "name"))


def to_rows(
    decoded: Decoded,
    call: str | None,
    *,
    source_id: str,
    received_us: int,
    limits: Limits,
    inspect: Any = None,
) -> tuple[list[Row], list[tuple[Any, ...]]]:
    """Normalise each message and encode it for the log.

    ``inspect`` (the tracking plan's enforcer) is called with ``(index, message)`` and returns
    ``(keep, record, changed)``: whether the message goes into the log, a row for the rejected
    store (or None), and whether it changed the message. Both lists are written in one
    transaction, so a request is all or nothing. Returns the log rows and the rejected rows.
    """
    rows: list[Row] = []
    rejected: list[tuple[Any, ...]] = []
    received_dt = from_us(received_us)
    latest_us = received_us + limits.max_future_us
    max_bytes = limits.max_event_bytes
    partitions = limits.partitions
    batch_sent = decoded.sent_at
    batch_sent_us = None if batch_sent is None else to_us(batch_sent)
    base_context = decoded.context
    base_integrations = decoded.integrations
    extras = decoded.extras
    for index, msg in enumerate(decoded.messages):
        as_sent = msgspec.structs.replace(msg)  # a shallow copy, to measure it if it seems big
        user_id = msg.user_id = as_id(msg.user_id)
        anonymous_id = msg.anonymous_id = as_id(msg.anonymous_id)
        if msg.previous_id is not None:
            msg.previous_id = as_id(msg.previous_id)
        if msg.group_id is not None:
            msg.group_id = as_id(msg.group_id)
        try:
            check_call(msg, call)
        except SpecError as exc:
            raise _refuse(index, call, exc.field, exc.message) from None
        message_id = as_id(msg.message_id) or str(uuid.uuid4())
        msg.message_id = message_id
        if decoded.has_nul:
            _check_nul(msg, index, call)

        msg.write_key = msg.project_id = None  # credentials never go into the log
        if base_context is not None:
            msg.context = _merge(base_context, msg.context)
        if base_integrations is not None:
            msg.integrations = _merge(base_integrations, msg.integrations)

        original = as_sent.original_timestamp or as_sent.timestamp
        if original is None:
            ts = received_us
        elif batch_sent_us is not None:
            ts = received_us - (batch_sent_us - to_us(original))
        elif as_sent.sent_at is not None:
            ts = received_us - (to_us(as_sent.sent_at) - to_us(original))
        else:  # no sentAt: the client's time as sent (historical imports)
            ts = to_us(as_sent.timestamp or original)
        meta: dict[str, Any] = {"source": source_id}
        if ts > latest_us:
            ts = received_us
            meta["flags"] = ["timestamp_clamped"]
        msg.original_timestamp = original
        msg.sent_at = batch_sent or as_sent.sent_at
        msg.received_at = received_dt
        try:
            msg.timestamp = received_dt if ts == received_us else from_us(ts)
        except OverflowError:  # e.g. sentAt in year 9999 for an event in year 1
            raise _refuse(index, call, "sentAt", "'sentAt' and the event's time are too far "
                          "apart to place the event in time") from None
        msg.partitur = meta

        extra = extras[index] if extras is not None else None
        try:
            body = _encode(msg, extra)
        except RecursionError:  # decoded a little less deep in the stack than this
            raise _refuse(index, call, "$", "the event is nested too deeply") from None
        if len(body) > max_bytes:
            size = len(_encode(as_sent, extra))  # as the client sent it, not what we added
            if size > max_bytes:
                raise PayloadTooLarge(
                    f"{'' if call else f'event {index}: '}event is {size} bytes; at most "
                    f"{max_bytes} are accepted per event",
                    details=[{"index": index, "field": "$", "bytes": size}],
                )
        if inspect is not None:
            keep, record, changed = inspect(index, msg)
            if record is not None:
                rejected.append(record)
            if not keep:
                continue
            if changed:  # the plan stamped violations or omitted properties
                body = _encode(msg, extra)
        route = anonymous_id or user_id or msg.previous_id or ""
        rows.append(
            (
                message_id,
                source_id,
                msg.type,  # type: ignore[arg-type]  # set by check_call
                msg.event or msg.name,
                user_id,
                anonymous_id,
                ts,
                received_us,
                zlib.crc32(route.encode()) % partitions,
                body.decode(),
            )
        )
    return rows, rejected


def _encode(msg: Message, extra: dict[str, msgspec.Raw] | None) -> bytes:
    body = _ENCODER.encode(msg)
    if extra:
        body = body[:-1] + b"," + _ENCODER.encode(extra)[1:]
    return body


def _check_nul(msg: Message, index: int, call: str | None) -> None:
    """NUL cannot be stored in a text column (PostgreSQL refuses it): refuse it in the fields
    that become columns. Elsewhere it stays escaped inside the JSON body."""
    for field, attr in _COLUMNS:
        value = getattr(msg, attr)
        if type(value) is str and "\x00" in value:
            raise _refuse(index, call, field, f"'{field}' contains a NUL character")
