"""The condition language shared by segments, journey branches and audiences.

One JSON document format: tests on traits, on the current event's properties, on a person's
events in a window, on consent and on membership of other segments, combined with
``all``/``any``/``not``. Pure: no I/O, no clock (the :class:`Subject` brings ``now`` and the
event-count callback). See docs/segments.md for every condition type with an example.
"""

from partitur.conditions.evaluate import assess, consent_state, evaluate, next_change_us
from partitur.conditions.inspect import references, to_document, walk
from partitur.conditions.model import (
    AllOf,
    AnyOf,
    Assessment,
    Condition,
    ConsentCondition,
    Evaluation,
    EventCondition,
    EventPropertyCondition,
    EventQuery,
    NotOf,
    References,
    SegmentCondition,
    Subject,
    TraitCondition,
    Where,
)
from partitur.conditions.operators import OPERATORS
from partitur.conditions.parse import parse_condition
from partitur.conditions.schema import condition_defs, json_schema
from partitur.conditions.times import parse_duration, parse_instant

__all__ = [
    "OPERATORS",
    "AllOf",
    "AnyOf",
    "Assessment",
    "Condition",
    "ConsentCondition",
    "Evaluation",
    "EventCondition",
    "EventPropertyCondition",
    "EventQuery",
    "NotOf",
    "References",
    "SegmentCondition",
    "Subject",
    "TraitCondition",
    "Where",
    "assess",
    "condition_defs",
    "consent_state",
    "evaluate",
    "json_schema",
    "next_change_us",
    "parse_condition",
    "parse_duration",
    "parse_instant",
    "references",
    "to_document",
    "walk",
]
