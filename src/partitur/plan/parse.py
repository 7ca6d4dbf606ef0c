"""From a YAML/JSON document to a :class:`~partitur.plan.model.TrackingPlan`, or to every
problem it has, each naming its event (``details``: ``where``, ``path``, ``message``).

Every schema is compiled here, so a broken one is refused when the plan is applied, never
discovered at ingest. YAML keys that appear twice are refused too (PyYAML would keep the last
and lose an event silently).
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import yaml
from pydantic import ValidationError

from partitur.errors import InvalidInput
from partitur.plan.model import CALLS, VALIDATOR_OPTIONS, Planned, TrackingPlan, compatible
from partitur.plan.policy import check_policy

# Keywords that make a mapping look like a complete JSON Schema rather than the shorthand.
_SCHEMA_WORDS = frozenset({
    "$defs", "$ref", "$schema", "additionalProperties", "allOf", "anyOf", "definitions",
    "dependentRequired", "if", "maxProperties", "minProperties", "not", "oneOf",
    "patternProperties", "properties", "propertyNames", "required", "unevaluatedProperties",
})


def where(loc: tuple[Any, ...]) -> tuple[str, str]:
    """(the section a pydantic location is in, the rest of the path)."""
    parts = [str(p) for p in loc]
    if len(parts) >= 2 and parts[0] == "events":
        return f"event '{parts[1]}'", ".".join(parts[2:])
    if parts and parts[0] in ("traits", *CALLS):
        return parts[0], ".".join(parts[1:])
    return "plan", ".".join(parts)


def parse_plan(data: Any) -> TrackingPlan:
    """A plan from decoded YAML/JSON. Every problem is reported, each naming its event."""
    if not isinstance(data, dict):
        raise InvalidInput("a tracking plan is a mapping with 'events' (and optional 'traits', "
                           "'page', 'screen', 'group')")
    try:
        plan = TrackingPlan.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            section, path = where(tuple(err["loc"]))
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(_problem(section, path, message))
        raise _invalid(problems + _check_valid_sections(data)) from None
    problems = check_plan(plan)
    if problems:
        raise _invalid(problems)
    return plan


def _check_valid_sections(data: dict[str, Any]) -> list[dict[str, str]]:
    """When the document as a whole is refused: the problems of its sections that parse."""
    try:
        data = compatible(data)
    except ValueError:
        return []
    sections: list[tuple[str, Any]] = []
    if isinstance(data.get("events"), dict):
        sections += [(f"event '{name}'", item) for name, item in data["events"].items()]
    sections += [(_LABEL.get(call, call), data.get(call)) for call in ("traits", *CALLS)]
    problems = []
    for label, item in sections:
        if isinstance(item, dict):
            try:
                section = Planned.model_validate(item)
            except ValidationError:
                continue  # already reported
            problems += check_section(label, section)
    return problems


_LABEL = {"identify": "traits"}
_REMOTE = re.compile(r"^Resource ('[^']*') is not present in a registry")


def check_plan(plan: TrackingPlan) -> list[dict[str, str]]:
    """What pydantic cannot check: names, the shorthand, and each JSON Schema itself."""
    problems: list[dict[str, str]] = []
    try:
        check_policy(plan.policy)
    except InvalidInput as exc:
        problems.append(_problem("plan", "policy", exc.message))
    for call, name, section in plan.sections():
        label = f"event '{name}'" if call == "track" else _LABEL.get(call, call)
        if call == "track" and not (name or "").strip():
            problems.append(_problem(label, "", "an event name cannot be empty"))
        problems += check_section(label, section)
    return problems


def check_section(label: str, section: Planned) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    if not section.is_full_schema():
        for prop, schema in (section.properties or {}).items():
            if prop == "type" and not isinstance(schema, dict | bool):
                problems.append(_problem(label, "properties.type", (
                    "a complete JSON Schema of the properties needs 'type: object' (in the "
                    "shorthand, each property's schema is a mapping)")))
            elif prop in _SCHEMA_WORDS:
                problems.append(_problem(label, f"properties.{prop}", (
                    "looks like a complete JSON Schema: add 'type: object' to it "
                    "(a shorthand property cannot be named like a JSON Schema keyword)")))
            elif not isinstance(schema, dict | bool):
                problems.append(_problem(label, f"properties.{prop}",
                                         "a property's schema must be a mapping"))
        missing = [r for r in section.required if r not in (section.properties or {})]
        if missing:
            problems.append(_problem(label, "required", (
                f"{', '.join(repr(m) for m in missing)} required but not among the "
                "properties")))
    if problems:
        return problems
    try:
        jsonschema_rs.validator_for(section.json_schema(), **VALIDATOR_OPTIONS)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
        inner = [str(p) for p in getattr(exc, "instance_path", []) or []]
        if section.is_full_schema():
            inner = ["properties", *inner]
        first = str(exc).splitlines()[0]
        remote = _REMOTE.search(first)
        if remote:
            first = (f"'$ref' to {remote.group(1)} cannot be resolved: a plan is self-contained "
                     "(put shared schemas under '$defs')")
        problems.append(_problem(label, ".".join(inner), f"invalid JSON Schema: {first}"))
    return problems


def _problem(section: str, path: str, message: str) -> dict[str, str]:
    return {"where": section, "path": path, "message": message}


def _invalid(problems: list[dict[str, str]]) -> InvalidInput:
    lines = [f"{p['where']}: {p['path'] + ': ' if p['path'] else ''}{p['message']}"
             for p in problems]
    shown = "; ".join(lines[:5])
    if len(lines) > 5:
        shown += f"; and {len(lines) - 5} more"
    return InvalidInput(f"invalid tracking plan: {shown}", details=problems)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; in a plan that loses an event silently."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"'{key}' appears twice (line {mark.line + 1})", mark)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_document(text: str) -> Any:
    """Decode YAML (or JSON, which is YAML) without losing duplicated keys."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InvalidInput(f"tracking plan is not valid YAML: {exc}") from None
    except RecursionError:
        raise InvalidInput("tracking plan is nested too deeply") from None


def load_yaml(text: str) -> TrackingPlan:
    return parse_plan(load_document(text))
