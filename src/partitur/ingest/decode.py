"""From request bytes to validated, normalised rows for the event log.

Runs on the request path, so it does as little as it can in Python: msgspec validates the
structure in C; Python adds the Spec's per-call rules, clock-skew correction and the
batch-level ``context``/``integrations`` merge.
"""

from __future__ import annotations

import re
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from partitur.clock import to_us
from partitur.errors import InvalidInput, PayloadTooLarge
from partitur.ingest.message import (
    Batch,
    LenientBatch,
    LenientMessage,
    Message,
    SpecError,
    as_id,
    check_call,
)

_PATH = re.compile(r"`\$(?:\.batch\[(\d+)\])?\.?([^`]*)`")
_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Limits:
    max_event_bytes: int = 32 * 1024
    max_request_bytes: int = 500 * 1024
    max_batch_events: int = 2500
    max_future_us: int = 86_400 * 1_000_000
    lenient: bool = False
    partitions: int = 256


@dataclass(slots=True)
class Decoded:
    messages: list[Message]
    write_key: str | None
    sent_at: datetime | None
    context: dict[str, Any] | None
    integrations: dict[str, Any] | None


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body without ever holding more than ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"request body is not valid gzip: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes once decompressed")
    return out


def decode(body: bytes, call: str | None, limits: Limits) -> Decoded:
    """Decode one call's body. ``call`` is None for /batch and /import."""
    if len(body) > limits.max_request_bytes:
        raise PayloadTooLarge(f"request body is larger than {limits.max_request_bytes} bytes")
    if not body.strip():
        raise InvalidInput("request body is empty; expected a JSON object")
    try:
        if call is None:
            batch_type = LenientBatch if limits.lenient else Batch
            batch = msgspec.json.decode(body, type=batch_type)
            if len(batch.batch) > limits.max_batch_events:
                raise PayloadTooLarge(
                    f"batch has {len(batch.batch)} events; at most {limits.max_batch_events} "
                    "are accepted in one request",
                    details=[{"field": "batch", "count": len(batch.batch)}],
                )
            if not batch.batch:
                raise InvalidInput("'batch' is empty", details=[{"field": "batch"}])
            messages: list[Message] = list(batch.batch)
            return Decoded(
                messages, batch.write_key, batch.sent_at, batch.context, batch.integrations
            )
        msg_type = LenientMessage if limits.lenient else Message
        one = msgspec.json.decode(body, type=msg_type)
        return Decoded([one], one.write_key, None, None, None)
    except msgspec.ValidationError as exc:
        raise _validation_error(str(exc), call) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"invalid JSON: {exc}") from None


def _validation_error(text: str, call: str | None) -> InvalidInput:
    detail: dict[str, Any] = {}
    match = _PATH.search(text)
    message = text.split(" - at ")[0]
    if match:
        if match.group(1) is not None:
            detail["index"] = int(match.group(1))
        detail["field"] = match.group(2) or "$"
    if message.startswith("Object contains unknown field"):
        message = message.replace("Object contains unknown field", "unknown field")
    where = ""
    if "index" in detail:
        where = f"event {detail['index']}: "
    if detail.get("field") and detail["field"] != "$":
        where += f"'{detail['field']}': "
    return InvalidInput(f"{where}{message}", details=[detail] if detail else None)


def _merge(base: dict[str, Any] | None, own: dict[str, Any] | None) -> dict[str, Any] | None:
    if not base:
        return own
    if not own:
        return dict(base)
    merged = dict(base)
    merged.update(own)
    return merged


def _us(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return to_us(value)


Row = tuple[str, str, str, str | None, str | None, str | None, int, int, int, str]


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
    store (or None), and whether it changed the message. Both lists are written in one transaction, so a request is all or nothing.
    Returns the log rows and the rejected-store rows.
    """
    rows: list[Row] = []
    rejected: list[tuple[Any, ...]] = []
    received_dt = datetime.fromtimestamp(received_us / 1_000_000, tz=UTC)
    for index, msg in enumerate(decoded.messages):
        try:
            check_call(msg, call)
        except SpecError as exc:
            raise InvalidInput(
                f"event {index}: {exc.message}" if call is None else exc.message,
                details=[{"index": index, "field": exc.field}],
            ) from None
        user_id = as_id(msg.user_id) or None
        anonymous_id = as_id(msg.anonymous_id) or None
        msg.user_id = user_id
        msg.anonymous_id = anonymous_id
        msg.previous_id = as_id(msg.previous_id)
        msg.group_id = as_id(msg.group_id)
        msg.message_id = as_id(msg.message_id) or str(uuid.uuid4())
        msg.write_key = None
        msg.context = _merge(decoded.context, msg.context)
        msg.integrations = _merge(decoded.integrations, msg.integrations)

        flags: list[str] = []
        sent = msg.sent_at or decoded.sent_at
        original = msg.original_timestamp or msg.timestamp
        if original is not None and sent is not None:
            ts = received_us - (_us(sent) - _us(original))
        elif original is not None:
            ts = _us(original)
        else:
            ts = received_us
        if ts > received_us + limits.max_future_us:
            ts = received_us
            flags.append("timestamp_clamped")
        msg.original_timestamp = original
        msg.sent_at = sent
        msg.received_at = received_dt
        msg.timestamp = datetime.fromtimestamp(ts / 1_000_000, tz=UTC)
        meta: dict[str, Any] = {"source": source_id}
        if flags:
            meta["flags"] = flags
        msg.partitur = meta

        body = _ENCODER.encode(msg)
        if len(body) > limits.max_event_bytes:
            raise PayloadTooLarge(
                f"event {index} is {len(body)} bytes; at most {limits.max_event_bytes} are "
                "accepted per event",
                details=[{"index": index, "field": "$", "bytes": len(body)}],
            )
        if inspect is not None:
            keep, record, changed = inspect(index, msg)
            if record is not None:
                rejected.append(record)
            if not keep:
                continue
            if changed:  # the plan stamped violations or omitted properties
                body = _ENCODER.encode(msg)
        route = anonymous_id or user_id or msg.previous_id or ""
        part = zlib.crc32(route.encode()) % limits.partitions
        assert msg.type is not None
        rows.append(
            (
                msg.message_id,
                source_id,
                msg.type,
                msg.event or msg.name,
                user_id,
                anonymous_id,
                ts,
                received_us,
                part,
                body.decode(),
            )
        )
    return rows, rejected
