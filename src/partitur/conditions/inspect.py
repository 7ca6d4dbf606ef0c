"""What a condition depends on (:func:`references`) and its canonical document
(:func:`to_document`)."""

from __future__ import annotations

from typing import Any

from partitur.conditions.model import (
    AllOf,
    AnyOf,
    Condition,
    ConsentCondition,
    EventCondition,
    EventPropertyCondition,
    NotOf,
    References,
    SegmentCondition,
    TraitCondition,
)

_CONSENT_IS = {"granted": True, "withdrawn": False, "unknown": "unknown"}


def walk(cond: Condition, out: list[Condition]) -> None:
    out.append(cond)
    if isinstance(cond, AllOf | AnyOf):
        for item in cond.items:
            walk(item, out)
    elif isinstance(cond, NotOf):
        walk(cond.item, out)


def references(cond: Condition) -> References:
    nodes: list[Condition] = []
    walk(cond, nodes)
    traits: set[str] = set()
    events: set[str] = set()
    consents: set[str] = set()
    segments: set[str] = set()
    current = False
    timed = False
    for node in nodes:
        if isinstance(node, TraitCondition):
            traits.update((node.trait, node.parts[0]))
            timed = timed or node.test.time_dependent
        elif isinstance(node, EventPropertyCondition):
            current = True
            timed = timed or node.test.time_dependent
        elif isinstance(node, EventCondition):
            events.add(node.event)
            timed = True  # events leave windows, and events dated in the future arrive
        elif isinstance(node, ConsentCondition):
            consents.add(node.purpose)
        elif isinstance(node, SegmentCondition):
            segments.add(node.segment)
    return References(
        traits=frozenset(traits),
        events=frozenset(events),
        consents=frozenset(consents),
        segments=frozenset(segments),
        uses_current_event=current,
        time_dependent=timed,
    )


def to_document(cond: Condition) -> dict[str, Any]:
    """The condition as a canonical document (what :func:`parse_condition` reads back)."""
    if isinstance(cond, AllOf):
        return {"all": [to_document(item) for item in cond.items]}
    if isinstance(cond, AnyOf):
        return {"any": [to_document(item) for item in cond.items]}
    if isinstance(cond, NotOf):
        return {"not": to_document(cond.item)}
    if isinstance(cond, TraitCondition):
        return {"trait": cond.trait, **cond.test.document()}
    if isinstance(cond, EventPropertyCondition):
        return {"event_property": cond.property, **cond.test.document()}
    if isinstance(cond, ConsentCondition):
        return {"consent": cond.purpose, "is": _CONSENT_IS[cond.state]}
    if isinstance(cond, SegmentCondition):
        return {"segment": cond.segment, "member": cond.member}
    doc: dict[str, Any] = {"event": cond.event, "performed": cond.performed,
                           "at_least": cond.at_least, "at_most": cond.at_most}
    if cond.within is not None:
        doc["within"] = cond.within
    if cond.where:
        doc["where"] = cond.where.document()
    return doc
