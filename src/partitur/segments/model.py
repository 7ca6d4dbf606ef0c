"""A segment document and its parsed form.

::

    {"key": "lapsed-buyers", "name": "Lapsed buyers", "description": "...",
     "condition": {"all": [{"event": "Order Completed", "at_least": 1},
                           {"event": "Order Completed", "performed": false, "within": "30d"}]}}

    {"key": "webinar-2026-03", "name": "Webinar attendees", "type": "static"}

A dynamic segment (the default) has a condition; a static segment is a saved list of people
(``POST /api/v1/segments/{key}/members``). ``backfill_triggers_journeys`` (default false) says
whether people who enter when the segment is created or changed, rather than through an
event or time passing, also trigger ``segment_entered`` journeys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from partitur.conditions import (
    Condition,
    References,
    parse_condition,
    references,
    to_document,
    walk,
)
from partitur.conditions.model import EventPropertyCondition
from partitur.errors import InvalidInput

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
_KEY = re.compile(KEY_PATTERN)
FIELDS = ("key", "name", "description", "type", "condition", "backfill_triggers_journeys")


@dataclass(frozen=True)
class Segment:
    key: str
    name: str
    description: str
    kind: Literal["dynamic", "static"]
    condition: Condition | None
    refs: References | None
    backfill_triggers_journeys: bool
    version: int = 0

    @property
    def dynamic(self) -> bool:
        return self.condition is not None

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"key": self.key, "name": self.name,
                               "description": self.description, "type": self.kind}
        if self.condition is not None:
            doc["condition"] = to_document(self.condition)
            doc["backfill_triggers_journeys"] = self.backfill_triggers_journeys
        return doc


def _fail(path: str, message: str) -> InvalidInput:
    return InvalidInput(f"{path}: {message}", details=[{"path": path, "message": message}])


def check_key(key: Any, path: str = "key") -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise _fail(path, "1-100 letters, digits, '-', '_' or '.', starting with a letter or "
                          "digit")
    return key


def parse_segment(doc: Any, *, key: str | None = None, version: int = 0) -> Segment:
    """Parse a segment document; ``key`` (from the URL) must match the document's if both
    are given. :class:`InvalidInput` names the path of every problem it finds first."""
    if not isinstance(doc, Mapping):
        raise _fail("$", "a segment document is a JSON object")
    for name in doc:
        if name not in FIELDS:
            raise _fail(name, f"unexpected field; allowed: {', '.join(FIELDS)}")
    doc_key = doc.get("key", key)
    if key is not None and doc_key != key:
        raise _fail("key", f"the document's key {doc_key!r} differs from the URL's {key!r}")
    seg_key = check_key(doc_key)
    name = doc.get("name", seg_key)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise _fail("name", "a non-empty string of at most 200 characters")
    description = doc.get("description", "")
    if not isinstance(description, str) or len(description) > 5000:
        raise _fail("description", "a string of at most 5000 characters")
    kind = doc.get("type", "dynamic")
    if kind not in ("dynamic", "static"):
        raise _fail("type", "dynamic or static")
    triggers = doc.get("backfill_triggers_journeys", False)
    if not isinstance(triggers, bool):
        raise _fail("backfill_triggers_journeys", "true or false")
    if kind == "static":
        if "condition" in doc:
            raise _fail("condition", "a static segment has no condition (its members are "
                                     "added with POST /api/v1/segments/{key}/members)")
        return Segment(seg_key, name, description, "static", None, None, False, version)
    if "condition" not in doc:
        raise _fail("condition", "a dynamic segment needs a condition")
    condition = parse_condition(doc["condition"], path="condition")
    nodes: list[Condition] = []
    walk(condition, nodes)
    if any(isinstance(node, EventPropertyCondition) for node in nodes):
        raise _fail("condition", "event_property tests the current event of a journey step; "
                                 "a segment has none (use an event condition with where)")
    refs = references(condition)
    if seg_key in refs.segments:
        raise _fail("condition", f"segment {seg_key!r} refers to itself")
    return Segment(seg_key, name, description, "dynamic", condition, refs, triggers, version)
