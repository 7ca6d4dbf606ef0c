"""From request bytes to decoded messages: size limits, gzip, JSON, and errors that name the
event and the field.

msgspec validates the structure and every field's type in C. When it refuses a body, its message
is turned into ``details: [{"index", "field"}]``. Normalising the decoded messages into rows for
the event log is :mod:`partitur.ingest.rows` (re-exported here as :func:`to_rows`).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any

import msgspec

from partitur.errors import InvalidInput, PayloadTooLarge, Unauthorized
from partitur.ingest.message import (
    MESSAGE_KEYS,
    Batch,
    Decoded,
    LenientBatch,
    LenientMessage,
    Message,
)
from partitur.ingest.rows import Row, to_rows

__all__ = ["Decoded", "Limits", "Row", "decode", "gunzip", "peek_write_key", "to_rows"]

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
