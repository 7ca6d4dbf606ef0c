"""The tracking plan document (YAML, or JSON over the API), checked with pydantic at the edge.

Canonical form::

    name: Shop
    policy: {violations: flag}         # optional defaults; a source's plan_policy wins
    events:
      Order Completed:                 # events keyed by name
        description: An order was paid.
        produced_by: [web, backend]    # sources / touchpoints that send it
        consumed_by: [analytics]       # systems that use it
        required: [order_id]
        properties:                    # shorthand: property -> JSON Schema
          order_id: {type: string}
    traits: {...}                      # identify: the same fields, describing the traits
    page: {...}  screen: {...}  group: {...}   # optional

``properties`` is either the shorthand (a mapping of property name to schema) or, when it says
``type: object``, a complete JSON Schema of the properties object. For compatibility, ``events``
may also be a list of events with a ``name``, ``producers``/``consumers`` stand for
``produced_by``/``consumed_by``, and ``identify: {traits: <schema>}`` for ``traits``.

:mod:`partitur.plan.parse` turns a document into a plan, or into every problem it has.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

CALLS = ("page", "screen", "group")  # optional sections besides events and traits
VALIDATOR_OPTIONS: dict[str, Any] = {"validate_formats": True, "offline": True}


class Planned(BaseModel):
    """One planned call: an event, identify's traits, or page, screen or group."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    description: str = ""
    produced_by: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("produced_by", "producers"),
        description="Sources (touchpoints) that send it.",
    )
    consumed_by: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("consumed_by", "consumers"),
        description="Systems that use it.",
    )
    required: list[str] = Field(default_factory=list, description="Properties that must be set.")
    properties: dict[str, Any] | None = Field(
        default=None,
        description="Property name -> JSON Schema, or a complete JSON Schema with "
        "`type: object`. Absent: no properties are planned.",
    )

    def is_full_schema(self) -> bool:
        kind = (self.properties or {}).get("type")
        return kind == "object" or (isinstance(kind, list) and "object" in kind)

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of the properties (or traits) object."""
        if self.is_full_schema():
            full = dict(self.properties or {})
            if self.required:
                full["required"] = sorted({*full.get("required", []), *self.required})
            return full
        out: dict[str, Any] = {"type": "object", "properties": dict(self.properties or {})}
        if self.required:
            out["required"] = list(self.required)
        return out

    def declared(self) -> frozenset[str] | None:
        """Planned property names; None when any name is planned (a schema without
        ``properties``)."""
        if self.is_full_schema():
            named = (self.properties or {}).get("properties")
            return frozenset(named) if isinstance(named, dict) else None
        return frozenset(self.properties or {})


class TrackingPlan(BaseModel):
    """A tracking plan: what each event looks like, who sends it and who uses it."""

    model_config = ConfigDict(extra="forbid", title="TrackingPlan")

    name: str = "Tracking plan"
    description: str = ""
    policy: dict[str, str] = Field(
        default_factory=dict,
        description="Defaults for every source: unplanned_events, unplanned_properties, "
        "violations. A source's own plan_policy takes precedence.",
    )
    events: dict[str, Planned] = Field(default_factory=dict, description="Events by name.")
    traits: Planned | None = Field(default=None, description="identify: the traits.")
    page: Planned | None = None
    screen: Planned | None = None
    group: Planned | None = Field(default=None, description="group: the group's traits.")

    @model_validator(mode="before")
    @classmethod
    def _compatible(cls, data: Any) -> Any:
        return compatible(data)

    def sections(self) -> list[tuple[str, str | None, Planned]]:
        """(call type, event name or None, section) for everything planned."""
        out: list[tuple[str, str | None, Planned]] = [
            ("track", name, event) for name, event in self.events.items()
        ]
        if self.traits is not None:
            out.append(("identify", None, self.traits))
        for call in CALLS:
            section = getattr(self, call)
            if section is not None:
                out.append((call, None, section))
        return out

    def dump(self) -> dict[str, Any]:
        """The canonical document (what is stored and served)."""
        return self.model_dump(mode="json", exclude_defaults=True)


def compatible(data: Any) -> Any:
    """The older spellings in canonical form: events as a list, ``identify.traits``."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    if isinstance(data.get("events"), list):
        data["events"] = _events_from_list(data["events"])
    if "identify" in data:
        if "traits" in data:
            raise ValueError("give either 'traits' or 'identify', not both")
        identify = data.pop("identify")
        if isinstance(identify, dict):
            identify = dict(identify)
            if "traits" in identify:
                identify["properties"] = identify.pop("traits")
        data["traits"] = identify
    return data


def _events_from_list(items: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValueError(f"events[{index}]: an event in a list needs a 'name'")
        name = item["name"]
        if name in out:
            raise ValueError(f"event '{name}' is listed twice")
        out[name] = {k: v for k, v in item.items() if k != "name"}
    return out
