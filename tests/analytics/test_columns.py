"""Event-log rows to Parquet rows: the fast reading (objects kept as their JSON text) gives
what decoding the whole body gives, whatever shape the body has."""

from __future__ import annotations

import json
from typing import Any

from partitur.analytics.columns import COLUMNS, JSON_COLUMNS, _to_row_slow, to_row

BODIES: list[tuple[str, Any]] = [
    ("track", {"type": "track", "event": "Order Completed",
               "properties": {"total": 12.5, "items": [1, 2], "name": "é \\u00e9"},
               "context": {"campaign": {"source": "ads", "medium": "cpc", "name": "bf",
                                        "term": 3, "content": True},
                           "page": {"url": "https://x/a", "path": "/a", "referrer": "r"},
                           "locale": "nb-NO", "timezone": "Europe/Oslo", "ip": "1.2.3.4"}}),
    ("identify", {"type": "identify", "traits": {"email": "a@b.c", "nested": {"k": None}}}),
    ("page", {"type": "page", "name": "Pricing",
              "properties": {"url": "https://x/pricing", "path": "/pricing", "referrer": "g"}}),
    ("page", {"type": "page", "properties": {"url": "u"}, "context": {"page": {"path": "/p"}}}),
    ("track", {"type": "track", "event": "E"}),
    ("track", {"type": "track", "event": "E", "properties": None, "context": None}),
    # unusual shapes take the general way and give the same answer
    ("track", {"type": "track", "event": "E", "context": {"campaign": "summer"}}),
    ("track", {"type": "track", "event": "E", "context": {"page": ["x"], "locale": 5}}),
    ("page", {"type": "page", "properties": {"url": {"full": "u"}}}),
    ("track", {"type": "track", "event": "E", "context": {"campaign": {"source": {"a": 1}}}}),
]


def _log_row(kind: str, body: Any, text: str) -> tuple[Any, ...]:
    return (7, "m-1", "src", kind, body.get("event"), "u1", "a1", 1_000, 2_000, 0, text)


def _same(fast: tuple[Any, ...] | None, slow: tuple[Any, ...] | None) -> None:
    assert (fast is None) == (slow is None)
    assert fast is not None and slow is not None
    for (name, _, _), a, b in zip(COLUMNS, fast, slow, strict=True):
        if name in JSON_COLUMNS:
            assert (None if a is None else json.loads(a)) == (
                None if b is None else json.loads(b)), name
        else:
            assert a == b, name


def test_fast_rows_match_the_whole_body_decoded() -> None:
    for kind, body in BODIES:
        for text in (json.dumps(body, separators=(",", ":")), json.dumps(body, indent=2)):
            row = _log_row(kind, body, text)
            _same(to_row(row, "p1"), _to_row_slow(row, "p1"))


def test_columns_read_from_the_body() -> None:
    kind, body = BODIES[0]
    row = to_row(_log_row(kind, body, json.dumps(body)), "p1")
    assert row is not None
    named = dict(zip([c[0] for c in COLUMNS], row, strict=True))
    assert (named["campaign_source"], named["campaign_term"], named["campaign_content"]) == (
        "ads", "3", "true")
    assert (named["page_path"], named["locale"], named["timezone"]) == (
        "/a", "nb-NO", "Europe/Oslo")
    page = to_row(_log_row(*BODIES[3], json.dumps(BODIES[3][1])), "p1")
    assert page is not None and (page[18], page[19]) == ("u", "/p")


def test_unreadable_bodies_are_none() -> None:
    for text in ("{not json", "[1, 2]", "3"):
        assert to_row(_log_row("track", {}, text), "p1") is None
