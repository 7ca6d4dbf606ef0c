"""The Parquet event table: its columns, and event-log rows turned into them.

One row per processed event, attributed to the profile it belonged to when it was processed
(``profile_id``; later merges are applied through the alias table, see :mod:`.store`). The
Segment objects stay whole as JSON text (``properties``, ``traits``, ``context``) and the
fields most queries filter or break down on are also columns of their own. docs/analytics.md
lists them for warehouses that read the files directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import pyarrow as pa

_DEC = msgspec.json.Decoder()
_ENC = msgspec.json.Encoder()
_TS = pa.timestamp("us", tz="UTC")

# (column, arrow type, what it holds) — the order of the files' columns.
COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("seq", pa.int64(), "position in the event log (unique, increasing with ingestion)"),
    ("ts", _TS, "event time (`timestamp`, client clock skew removed), UTC"),
    ("received_at", _TS, "when Partitur received the event, UTC"),
    ("profile_id", pa.string(), "profile the event was attributed to when processed"),
    ("message_id", pa.string(), "`messageId`"),
    ("source_id", pa.string(), "source (write key) it came from"),
    ("type", pa.string(), "`track`, `page`, `screen`, `identify`, `group` or `alias`"),
    ("event", pa.string(), "a track call's `event`, a page or screen call's `name`"),
    ("user_id", pa.string(), "`userId`"),
    ("anonymous_id", pa.string(), "`anonymousId`"),
    ("properties", pa.string(), "`properties` as JSON text"),
    ("traits", pa.string(), "`traits` (identify, group) as JSON text"),
    ("context", pa.string(), "`context` as JSON text"),
    ("campaign_source", pa.string(), "`context.campaign.source`"),
    ("campaign_medium", pa.string(), "`context.campaign.medium`"),
    ("campaign_name", pa.string(), "`context.campaign.name`"),
    ("campaign_term", pa.string(), "`context.campaign.term`"),
    ("campaign_content", pa.string(), "`context.campaign.content`"),
    ("page_url", pa.string(), "`context.page.url`, or a page call's `properties.url`"),
    ("page_path", pa.string(), "`context.page.path`, or a page call's `properties.path`"),
    ("referrer", pa.string(), "`context.page.referrer`, or a page call's `properties.referrer`"),
    ("locale", pa.string(), "`context.locale`"),
    ("timezone", pa.string(), "`context.timezone`"),
)
SCHEMA = pa.schema([pa.field(name, kind) for name, kind, _ in COLUMNS])

# Paths users write (``context.campaign.source``) that are columns of their own.
FLAT: dict[str, str] = {
    "context.campaign.source": "campaign_source",
    "context.campaign.medium": "campaign_medium",
    "context.campaign.name": "campaign_name",
    "context.campaign.term": "campaign_term",
    "context.campaign.content": "campaign_content",
    "context.locale": "locale",
    "context.timezone": "timezone",
    "page_url": "page_url",
    "page_path": "page_path",
    "referrer": "referrer",
    "type": "type",
    "event": "event",
    "source_id": "source_id",
    "user_id": "user_id",
    "userId": "user_id",
    "anonymous_id": "anonymous_id",
    "anonymousId": "anonymous_id",
    "message_id": "message_id",
    "messageId": "message_id",
    "profile_id": "profile_id",
}
JSON_COLUMNS = ("properties", "traits", "context")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return _ENC.encode(value).decode()


def _json(value: Any) -> str | None:
    return None if value is None else _ENC.encode(value).decode()


def _sub(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


class _Campaign(msgspec.Struct):
    source: Any = None
    medium: Any = None
    name: Any = None
    term: Any = None
    content: Any = None


class _Page(msgspec.Struct):
    url: Any = None
    path: Any = None
    referrer: Any = None


class _Context(msgspec.Struct):
    campaign: _Campaign | None = None
    page: _Page | None = None
    locale: Any = None
    timezone: Any = None


_NOTHING = msgspec.Raw(b"null")


class _Body(msgspec.Struct):
    """The parts of a body the table needs; the Segment objects are kept as their JSON text
    (not decoded and encoded again: that was most of the projector's time)."""

    properties: msgspec.Raw = _NOTHING
    traits: msgspec.Raw = _NOTHING
    context: msgspec.Raw = _NOTHING


_BODY = msgspec.json.Decoder(_Body)
_CONTEXT = msgspec.json.Decoder(_Context)
_PAGE = msgspec.json.Decoder(_Page)
_EMPTY_CONTEXT = _Context()
_EMPTY_PAGE = _Page()


def to_row(row: Sequence[Any], profile_id: str) -> tuple[Any, ...] | None:
    """An event-log row (``store.events.EVENT_COLUMNS``) as a tuple in :data:`COLUMNS`
    order; None if its body cannot be read."""
    seq, message_id, source_id, kind, event, user_id, anonymous_id, ts, received_at = row[:9]
    try:
        body = _BODY.decode(row[10])
        context = _CONTEXT.decode(body.context) if body.context != _NOTHING else _EMPTY_CONTEXT
        page_props = (_PAGE.decode(body.properties) if kind == "page"
                      and body.properties != _NOTHING else _EMPTY_PAGE)
    except msgspec.ValidationError:  # a body or object of an unusual shape: the general way
        return _to_row_slow(row, profile_id)
    except msgspec.DecodeError:
        return None
    campaign = context.campaign or _Campaign()
    page = context.page or _EMPTY_PAGE
    return (
        int(seq), int(ts), int(received_at), profile_id, message_id, source_id, kind, event,
        user_id, anonymous_id, _raw(body.properties), _raw(body.traits), _raw(body.context),
        _text(campaign.source), _text(campaign.medium), _text(campaign.name),
        _text(campaign.term), _text(campaign.content),
        _text(page.url or page_props.url), _text(page.path or page_props.path),
        _text(page.referrer or page_props.referrer),
        _text(context.locale), _text(context.timezone),
    )


def _raw(value: msgspec.Raw) -> str | None:
    return None if value == _NOTHING else bytes(value).decode()


def _to_row_slow(row: Sequence[Any], profile_id: str) -> tuple[Any, ...] | None:
    seq, message_id, source_id, kind, event, user_id, anonymous_id, ts, received_at = row[:9]
    try:
        body = _DEC.decode(row[10])
    except msgspec.DecodeError:
        return None
    if not isinstance(body, dict):
        return None
    props = body.get("properties")
    context = body.get("context")
    campaign = _sub(context, "campaign")
    page = _sub(context, "page")
    page_props = props if kind == "page" and isinstance(props, dict) else {}
    return (
        int(seq), int(ts), int(received_at), profile_id, message_id, source_id, kind, event,
        user_id, anonymous_id, _json(props), _json(body.get("traits")), _json(context),
        _text(_sub(campaign, "source")), _text(_sub(campaign, "medium")),
        _text(_sub(campaign, "name")), _text(_sub(campaign, "term")),
        _text(_sub(campaign, "content")),
        _text(_sub(page, "url") or page_props.get("url")),
        _text(_sub(page, "path") or page_props.get("path")),
        _text(_sub(page, "referrer") or page_props.get("referrer")),
        _text(_sub(context, "locale")), _text(_sub(context, "timezone")),
    )


def to_table(rows: Iterable[tuple[Any, ...]]) -> pa.Table:
    """Rows from :func:`to_row` as an Arrow table with :data:`SCHEMA`."""
    cols = list(zip(*rows, strict=True)) or [()] * len(COLUMNS)
    arrays = [pa.array(list(col), type=kind) for col, (_, kind, _) in zip(cols, COLUMNS,
                                                                         strict=True)]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)
