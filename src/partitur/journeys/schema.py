"""The JSON Schema of a journey document, published at ``/api/v1/schemas/journey.json``.

Written as pydantic models only to generate the schema (the engine parses documents itself,
into frozen dataclasses); conditions are the condition language's own ``$defs``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from partitur.conditions import condition_defs
from partitur.journeys.parse import KEY_PATTERN

Cond = Annotated[dict[str, Any], WithJsonSchema({"x-ref": "condition"})]
Where = Annotated[dict[str, Any], WithJsonSchema({"x-ref": "where"})]
Duration = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,9}[smhdw]$",
                                description="A whole number and a unit: 30s, 10m, 24h, 14d, "
                                            "2w.")]
StepId = Annotated[str, Field(pattern=KEY_PATTERN)]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Step(_M):
    id: StepId = Field(description="Unique within the journey; other steps refer to it.")
    name: str | None = None
    description: str | None = None


class EventTrigger(_M):
    event: str = Field(min_length=1, description="Entering event's name (a track call).")
    where: Where | None = Field(None, description="Filter on the event's properties.")


class PageTrigger(_M):
    page: str = Field(min_length=1, description="Name of the page call that enters people; "
                                                "'*': any page.")
    where: Where | None = Field(None, description="Filter on the page's properties.")


class ScreenTrigger(_M):
    screen: str = Field(min_length=1, description="Name of the screen call that enters "
                                                  "people; '*': any.")
    where: Where | None = Field(None, description="Filter on the screen's properties.")


class IdentifyTrigger(_M):
    identify: Literal[True] = Field(description="An identify call enters people (not the "
                                                "ones journeys write themselves).")
    where: Where | None = Field(None, description="Filter on the traits in the call.")


class SegmentEnteredTrigger(_M):
    segment_entered: str


class SegmentExitedTrigger(_M):
    segment_exited: str


class ScheduleTrigger(_M):
    schedule: str = Field(description="Cron expression, e.g. '0 9 * * MON'.")
    segment: str = Field(description="Whose members enter at each firing.")
    timezone: str = "UTC"


class ReentryAfter(_M):
    after: Duration


class EntryModel(_M):
    reentry: Literal["never", "always", "after"] | ReentryAfter = "never"
    after: Duration | None = Field(None, description="With reentry: after.")
    audience: Cond | None = Field(None, description="Who may enter (checked at entry).")


class GoalModel(_M):
    event: str
    within: Duration | None = Field(None, description="From entry; conversions after the "
                                                      "journey ended still count within it.")
    where: Where | None = None


class ExitEvent(_M):
    event: str
    where: Where | None = None


class ExitSegmentEntered(_M):
    segment_entered: str


class ExitSegmentExited(_M):
    segment_exited: str


class ExitCondition(_M):
    condition: Cond


class WebhookRequest(_M):
    url: str
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = {}
    body: Any = None


class SendModel(_Step):
    type: Literal["send"]
    channel: Literal["email", "sms", "webhook", "web"]
    template: str | dict[str, Any] | None = Field(
        None, description="A stored template's key, or inline parts: {subject, text, html} "
                          "(email), {text} (sms), {title, body, url} (web).")
    category: Literal["marketing", "transactional"] = "marketing"
    webhook: WebhookRequest | None = None
    next: StepId | None = None


class WaitUntilTime(_M):
    time: str = Field(pattern=r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$",
                      description="Local time of day in the person's time zone.")
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = []


class WaitUntilTrait(_M):
    trait: str = Field(description="A trait holding a date or date-time.")
    offset: str | None = Field(None, pattern=r"^[+-]?[1-9][0-9]{0,9}[smhdw]$")


class WaitModel(_Step):
    type: Literal["wait"]
    duration: Duration | None = None
    until: WaitUntilTime | WaitUntilTrait | None = None
    next: StepId | None = None


class WaitForEventModel(_Step):
    type: Literal["wait_for_event"]
    event: str
    match: dict[str, str] = Field(
        {}, description="Property of the awaited event -> reference into the trigger event "
                        "or profile, e.g. {cart_id: trigger.properties.cart_id}.")
    where: Where | None = None
    timeout: Duration
    on_event: StepId
    on_timeout: StepId


class BranchItem(_M):
    name: str | None = None
    when: Cond
    next: StepId


class BranchModel(_Step):
    type: Literal["branch"]
    branches: list[BranchItem] = Field(min_length=1)
    default: StepId


class VariantModel(_M):
    name: str
    weight: float = Field(gt=0)
    next: StepId
    control: bool | None = Field(None, description="A control/holdout arm (default: named "
                                                   "control or holdout).")


class SplitModel(_Step):
    type: Literal["split"]
    variants: list[VariantModel] = Field(min_length=1)


class UpdateProfileModel(_Step):
    type: Literal["update_profile"]
    set: dict[str, Any] = {}
    unset: list[str] = []
    next: StepId | None = None


class WebhookModel(_Step):
    type: Literal["webhook"]
    url: str
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = {}
    body: Any = None
    next: StepId | None = None


class EmitModel(_Step):
    type: Literal["emit_event"]
    event: str
    properties: dict[str, Any] = {}
    next: StepId | None = None


class ExitModel(_Step):
    type: Literal["exit"]


AnyStepModel = Annotated[
    SendModel | WaitModel | WaitForEventModel | BranchModel | SplitModel | UpdateProfileModel
    | WebhookModel | EmitModel | ExitModel,
    Field(discriminator="type"),
]


class JourneyModel(_M):
    key: str = Field(pattern=KEY_PATTERN)
    name: str | None = None
    description: str | None = None
    trigger: (EventTrigger | PageTrigger | ScreenTrigger | IdentifyTrigger
              | SegmentEnteredTrigger | SegmentExitedTrigger | ScheduleTrigger)
    entry: EntryModel | None = None
    goal: GoalModel | None = None
    exit_when: list[ExitEvent | ExitSegmentEntered | ExitSegmentExited | ExitCondition] = []
    steps: list[AnyStepModel] = Field(min_length=1)


def _refs(node: Any) -> Any:
    """Our placeholders as references to the condition language's definitions."""
    if isinstance(node, dict):
        ref = node.get("x-ref")
        if ref == "condition":
            return {"$ref": "#/$defs/condition"}
        if ref == "where":
            return {"type": "object", "description": "Property filters, all must hold.",
                    "additionalProperties": {"$ref": "#/$defs/property_filter"}}
        return {k: _refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_refs(v) for v in node]
    return node


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    schema = _refs(JourneyModel.model_json_schema(ref_template="#/$defs/{model}"))
    schema["$defs"].update(condition_defs())
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://partitur.dev/schemas/journey.json",
        "title": "Partitur journey",
        "description": "A graph of typed steps that follows each person who enters it.",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def journey_schema() -> dict[str, Any]:
    import copy

    return copy.deepcopy(_schema())
