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


def to_row(row: Sequence[Any], profile_id: str) -> tuple[Any, ...] | None:
    """An event-log row (``store.events.EVENT_COLUMNS``) as a tuple in :data:`COLUMNS`
    order; None if its body cannot be read."""
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
