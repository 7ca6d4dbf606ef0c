"""Decoded messages to rows for the event log: the Spec's per-call rules, ids as text, the
batch's ``context``/``integrations`` merged in, the time fields, the size limit.

Runs on the request path, a few operations per event. Time fields, as the Segment Spec
defines them:

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

import uuid
import zlib
from typing import TYPE_CHECKING, Any

import msgspec

from partitur.clock import from_us, to_us
from partitur.errors import InvalidInput, PayloadTooLarge
from partitur.ingest.message import (
    Decoded,
    Message,
    SpecError,
    as_id,
    check_call,
    check_objects,
    obj,
)

if TYPE_CHECKING:
    from partitur.ingest.decode import Limits

_ENCODER = msgspec.json.Encoder()


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
            check_objects(msg)
        except SpecError as exc:
            raise _refuse(index, call, exc.field, exc.message) from None
        message_id = as_id(msg.message_id) or str(uuid.uuid4())
        msg.message_id = message_id
        if decoded.has_nul:
            _check_nul(msg, index, call)

        msg.write_key = msg.project_id = None  # credentials never go into the log
        if base_context is not None:
            msg.context = _merge(base_context, obj(msg, "context"))  # type: ignore[assignment]
        if base_integrations is not None:
            merged = _merge(base_integrations, obj(msg, "integrations"))
            msg.integrations = merged  # type: ignore[assignment]

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
        try:
            text = body.decode()
        except UnicodeDecodeError:  # inside an object kept raw: only now is it looked at
            raise _refuse(index, call, "$", "the event is not valid UTF-8") from None
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
                text,
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
