"""The JSON Schema of a condition document, published with the segment and journey schemas.

The parser (:mod:`partitur.conditions.parse`) is the authority and names problems by path;
this schema says the same for editors and the visual builder.
"""

from __future__ import annotations

import copy
from typing import Any

from partitur.conditions.operators import OPERATORS
from partitur.conditions.times import DURATION_PATTERN, RELATIVE_PATTERN

ISO_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?$"
)
_SCALAR = {"type": ["string", "number", "boolean"]}
_DURATION = {"type": "string", "pattern": DURATION_PATTERN,
             "description": "A whole number and a unit: 30s, 10m, 24h, 14d, 2w."}
_TIME = {
    "type": "string",
    "description": "An ISO 8601 date or date-time (no zone: UTC), or relative to now: "
                   "now, -30d, +2h.",
    "anyOf": [{"pattern": RELATIVE_PATTERN}, {"pattern": ISO_PATTERN}],
}
_OPERANDS: dict[str, Any] = {
    "equals": {"not": {"type": "null"},
               "description": "Equal (strings case-sensitive unless ignore_case)."},
    "not_equals": {"not": {"type": "null"},
                   "description": "Not equal; true when the value is missing."},
    "in": {"type": "array", "items": _SCALAR, "minItems": 1,
           "description": "Equal to one of the list."},
    "not_in": {"type": "array", "items": _SCALAR, "minItems": 1,
               "description": "Equal to none of the list; true when the value is missing."},
    "contains": {**_SCALAR,
                 "description": "A string containing this text, or a list containing this "
                                "element."},
    "starts_with": {"type": "string"},
    "gt": {"anyOf": [{"type": "number"}, _TIME]},
    "gte": {"anyOf": [{"type": "number"}, _TIME]},
    "lt": {"anyOf": [{"type": "number"}, _TIME]},
    "lte": {"anyOf": [{"type": "number"}, _TIME]},
    "exists": {"type": "boolean", "description": "Present and not null (or the opposite)."},
    "before": _TIME,
    "after": _TIME,
    "within_last": {**_DURATION, "description": "A date within this long before now."},
    "more_than_ago": {**_DURATION, "description": "A date more than this long before now."},
}
assert set(_OPERANDS) == set(OPERATORS)


def _test_object(head: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """An object with the ``head`` fields and exactly one operator."""
    return {
        "type": "object",
        "properties": {
            **head,
            **_OPERANDS,
            "ignore_case": {"type": "boolean",
                            "description": "For equals, not_equals, in, not_in, contains, "
                                           "starts_with."},
        },
        "required": required,
        "additionalProperties": False,
        "oneOf": [{"required": [op]} for op in OPERATORS],
    }


_NAME = {"type": "string", "minLength": 1, "maxLength": 200}

_DEFS: dict[str, Any] = {
    "condition": {
        "oneOf": [
            {"$ref": "#/$defs/trait"},
            {"$ref": "#/$defs/event"},
            {"$ref": "#/$defs/event_property"},
            {"$ref": "#/$defs/consent"},
            {"$ref": "#/$defs/segment"},
            {"$ref": "#/$defs/all"},
            {"$ref": "#/$defs/any"},
            {"$ref": "#/$defs/not"},
        ]
    },
    "trait": {
        **_test_object({"trait": {**_NAME, "description": "Trait name; dots reach into "
                                                          "objects (address.city)."}},
                       ["trait"]),
        "title": "Trait condition",
        "examples": [{"trait": "plan", "equals": "pro"}],
    },
    "event_property": {
        **_test_object({"event_property": {**_NAME, "description": "A property of the "
                                                                   "current (trigger) event."}},
                       ["event_property"]),
        "title": "Current event property condition",
        "examples": [{"event_property": "total", "gte": 100}],
    },
    "property_filter": {
        "anyOf": [
            _SCALAR,
            {"type": "object", "properties": {
                **_OPERANDS, "ignore_case": {"type": "boolean"}},
             "additionalProperties": False,
             "oneOf": [{"required": [op]} for op in OPERATORS]},
        ]
    },
    "event": {
        "title": "Event condition",
        "type": "object",
        "properties": {
            "event": {**_NAME, "description": "The event name (track calls)."},
            "performed": {"type": "boolean", "default": True,
                          "description": "false: the opposite of the same test (not performed "
                                         "at least at_least times within the window)."},
            "at_least": {"type": "integer", "minimum": 0, "default": 1},
            "at_most": {"type": ["integer", "null"], "minimum": 0, "default": None},
            "within": {**_DURATION, "description": "Only events in this long before now; "
                                                   "absent: all of them."},
            "where": {"type": "object",
                      "additionalProperties": {"$ref": "#/$defs/property_filter"},
                      "description": "Event properties: a value (equal) or {operator: "
                                     "value}; dots reach into objects."},
        },
        "required": ["event"],
        "additionalProperties": False,
        "examples": [{"event": "Order Completed", "performed": True, "at_least": 1,
                      "within": "30d", "where": {"currency": "EUR", "price": {"gte": 100}}}],
    },
    "consent": {
        "title": "Consent condition",
        "type": "object",
        "properties": {
            "consent": {**_NAME, "description": "The purpose, e.g. marketing_email."},
            "is": {"enum": [True, False, "granted", "withdrawn", "unknown"], "default": True,
                   "description": "true: granted; false: withdrawn; unknown: never stated."},
        },
        "required": ["consent"],
        "additionalProperties": False,
        "examples": [{"consent": "marketing_email", "is": True}],
    },
    "segment": {
        "title": "Segment membership condition",
        "type": "object",
        "properties": {"segment": _NAME, "member": {"type": "boolean", "default": True}},
        "required": ["segment"],
        "additionalProperties": False,
        "examples": [{"segment": "trial-users", "member": True}],
    },
    "all": {
        "title": "All of",
        "type": "object",
        "properties": {"all": {"type": "array", "minItems": 1,
                               "items": {"$ref": "#/$defs/condition"}}},
        "required": ["all"],
        "additionalProperties": False,
    },
    "any": {
        "title": "Any of",
        "type": "object",
        "properties": {"any": {"type": "array", "minItems": 1,
                               "items": {"$ref": "#/$defs/condition"}}},
        "required": ["any"],
        "additionalProperties": False,
    },
    "not": {
        "title": "Not",
        "type": "object",
        "properties": {"not": {"$ref": "#/$defs/condition"}},
        "required": ["not"],
        "additionalProperties": False,
    },
}


def condition_defs() -> dict[str, Any]:
    """The ``$defs`` of a condition, for embedding in another schema (segments, journeys);
    the entry point is ``#/$defs/condition``."""
    return copy.deepcopy(_DEFS)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a condition document."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://partitur.dev/schemas/condition.json",
        "title": "Partitur condition",
        "$ref": "#/$defs/condition",
        "$defs": condition_defs(),
    }
