"""The tracking plan document (YAML or JSON), validated with pydantic at the edge."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from partitur.errors import InvalidInput


class PlannedEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    producers: list[str] = Field(default_factory=list, description="Sources that send it.")
    consumers: list[str] = Field(default_factory=list, description="Systems that use it.")
    properties: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"}, description="JSON Schema of `properties`."
    )


class PlannedIdentify(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    producers: list[str] = Field(default_factory=list)
    consumers: list[str] = Field(default_factory=list)
    traits: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class TrackingPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "Tracking plan"
    events: list[PlannedEvent] = Field(default_factory=list)
    identify: PlannedIdentify | None = None


def parse_plan(data: Any) -> TrackingPlan:
    """A plan from decoded YAML/JSON; errors name the event and the problem."""
    if not isinstance(data, dict):
        raise InvalidInput("a tracking plan is a mapping with 'events' (and optional 'identify')")
    try:
        plan = TrackingPlan.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = list(err["loc"])
            where = ".".join(str(p) for p in loc)
            if len(loc) >= 2 and loc[0] == "events" and isinstance(loc[1], int):
                events = data.get("events") or []
                if loc[1] < len(events) and isinstance(events[loc[1]], dict):
                    where = f"event '{events[loc[1]].get('name', loc[1])}': " + ".".join(
                        str(p) for p in loc[2:]
                    )
            problems.append(f"{where}: {err['msg']}")
        raise InvalidInput("invalid tracking plan: " + "; ".join(problems)) from None
    seen: set[str] = set()
    for event in plan.events:
        if event.name in seen:
            raise InvalidInput(f"invalid tracking plan: event '{event.name}' is listed twice")
        seen.add(event.name)
        check_schema(f"event '{event.name}'", event.properties)
    if plan.identify is not None:
        check_schema("identify traits", plan.identify.traits)
    return plan


def check_schema(where: str, schema: dict[str, Any]) -> None:
    try:
        jsonschema_rs.validator_for(schema)
    except (jsonschema_rs.ValidationError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        raise InvalidInput(f"invalid tracking plan: {where}: bad JSON Schema: {first}") from None


def load_yaml(text: str) -> TrackingPlan:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"tracking plan is not valid YAML: {exc}") from None
    return parse_plan(data)
