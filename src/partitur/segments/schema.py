"""The JSON Schema of a segment document, published at ``/api/v1/schemas/segment.json``."""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema_rs

from partitur.conditions import condition_defs
from partitur.errors import InvalidInput
from partitur.segments.model import KEY_PATTERN


def segment_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://partitur.dev/schemas/segment.json",
        "title": "Partitur segment",
        "description": "A group of people: dynamic (a condition, kept up to date in real time, "
                       "by time passing and by backfill) or static (a saved list).",
        "type": "object",
        "properties": {
            "key": {"type": "string", "pattern": KEY_PATTERN,
                    "description": "Stable identifier, used in URLs and by journeys."},
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "description": {"type": "string", "maxLength": 5000},
            "type": {"enum": ["dynamic", "static"], "default": "dynamic"},
            "condition": {"$ref": "#/$defs/condition"},
            "backfill_triggers_journeys": {
                "type": "boolean", "default": False,
                "description": "Whether people entering through the backfill of a new or "
                               "changed segment start segment_entered journeys.",
            },
        },
        "required": ["key"],
        "additionalProperties": False,
        "if": {"properties": {"type": {"const": "static"}}, "required": ["type"]},
        "then": {"not": {"anyOf": [{"required": ["condition"]},
                                   {"required": ["backfill_triggers_journeys"]}]}},
        "else": {"required": ["condition"]},
        "examples": [
            {"key": "lapsed-buyers", "name": "Lapsed buyers",
             "description": "Bought before, nothing in the last 30 days",
             "condition": {"all": [
                 {"event": "Order Completed"},
                 {"event": "Order Completed", "performed": False, "within": "30d"}]}},
            {"key": "webinar-2026-03", "name": "Webinar attendees", "type": "static"},
        ],
        "$defs": condition_defs(),
    }


@cache
def _validator() -> Any:
    return jsonschema_rs.validator_for(segment_schema())


def check_schema(doc: Any) -> None:
    """:class:`InvalidInput` naming the path if ``doc`` breaks the published schema. The API
    parses documents with :func:`~partitur.segments.model.parse_segment` (which gives the
    clearer messages) and then checks them here, so it never stores what the schema refuses."""
    errors = list(_validator().iter_errors(doc))
    if not errors:
        return
    error = max(errors, key=lambda e: len(e.instance_path))  # the most precise place
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                   for p in error.instance_path).lstrip(".") or "$"
    raise InvalidInput(f"{path}: {error.message} (schema segment.json)",
                       details=[{"path": path, "message": error.message}])
