"""``/api/v1/tracking-plan``: the plan and its versions, validation, lineage, violations and
the rejected store; ``/api/v1/schemas/tracking-plan.json``: the plan document's JSON Schema."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from partitur import api
from partitur.clock import iso, to_us
from partitur.errors import InvalidInput
from partitur.plan.model import TrackingPlan
from partitur.plan.parse import load_document, parse_plan
from partitur.plan.store import RejectedQuery

_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')
RULES = ("unplanned_event", "unplanned_property", "schema")
ACTIONS = ("flagged", "omitted", "blocked")


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


async def get_plan(request: Request) -> Response:
    """The current plan (or ``?version=N``), its version in the body and the ``ETag``."""
    api.require_admin(request)
    version = api.int_param(request, "version", 0, lo=0, hi=2**31 - 1) or None
    found = await asyncio.to_thread(api.services(request).plan.get, version)
    body = {"version": found.version, "created_at": iso(found.created_at), "plan": found.doc}
    return api.json(body, headers=_etag(found.version))


async def _document(request: Request) -> Any:
    """A plan document: JSON, or YAML when the content type says so."""
    if "yaml" in request.headers.get("content-type", ""):
        raw = await request.body()
        if len(raw) > 5 * 1024 * 1024:
            raise InvalidInput("request body is larger than 5242880 bytes")
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            raise InvalidInput("the YAML body is not valid UTF-8") from None
        return load_document(text)
    return await api.body_json(request)


def _expected(request: Request) -> int | None:
    """The version the change is based on: ``If-Match: "3"`` or ``?expected_version=3``."""
    header = request.headers.get("if-match")
    if header is not None and header.strip() != "*":
        match = _ETAG.match(header)
        if match is None:
            raise InvalidInput('If-Match must name a plan version, e.g. If-Match: "3"')
        return int(match.group(1))
    if request.query_params.get("expected_version"):
        return api.int_param(request, "expected_version", 0, lo=0, hi=2**31 - 1)
    return None


async def put_plan(request: Request) -> Response:
    """Apply a plan document; a new version is stored if it changed."""
    api.require_admin(request)
    expected = _expected(request)
    data = await _document(request)
    applied = await asyncio.to_thread(
        lambda: api.services(request).plan.apply_data(data, expected=expected)
    )
    return api.json({"version": applied.version, "changed": applied.changed},
                    headers=_etag(applied.version))


async def validate_plan(request: Request) -> Response:
    """Check a plan document without applying it (400 with every problem if it is invalid)."""
    api.require_admin(request)
    plan = parse_plan(await _document(request))
    return api.json({"valid": True, "events": len(plan.events)})


async def versions(request: Request) -> Response:
    api.require_admin(request)
    limit = api.int_param(request, "limit", 50, lo=1, hi=1000)
    return api.json({"versions": await asyncio.to_thread(api.services(request).plan.versions,
                                                         limit)})


async def lineage(request: Request) -> Response:
    api.require_admin(request)
    services = api.services(request)

    def run() -> dict[str, Any]:
        known = [s.name for s in services.keys.list_sources()]
        return services.plan.lineage(known)  # type: ignore[no-any-return]

    return api.json(await asyncio.to_thread(run))


def _since(request: Request) -> int | None:
    """``since``: microseconds since the epoch, or an ISO 8601 time."""
    raw = request.query_params.get("since")
    if not raw:
        return None
    if raw.isdigit():
        return api.int_param(request, "since", 0, lo=0, hi=2**62)
    try:
        return to_us(datetime.fromisoformat(raw.replace("Z", "+00:00")))
    except ValueError:
        raise InvalidInput("'since' must be microseconds since the epoch or an ISO 8601 "
                           "time") from None


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name) or None
    if value is not None and value not in allowed:
        raise InvalidInput(f"'{name}' must be one of {', '.join(allowed)}")
    return value


def _source_id(services: Any, request: Request) -> str | None:
    name = request.query_params.get("source")
    return services.keys.get_source(name).id if name else None


async def violations(request: Request) -> Response:
    """Violations by event and rule: counts, what was done, last seen, a sample message."""
    api.require_admin(request)
    services = api.services(request)
    since = _since(request)

    def run() -> list[dict[str, Any]]:
        return services.plan.violations_summary(  # type: ignore[no-any-return]
            since, _source_id(services, request))

    return api.json({"violations": await asyncio.to_thread(run)})


async def rejected(request: Request) -> Response:
    """Flagged, omitted and blocked events with their bodies, newest first, a page at a time."""
    api.require_admin(request)
    services = api.services(request)
    params = request.query_params

    def run() -> tuple[list[dict[str, Any]], str | None]:
        query = RejectedQuery(
            event=params.get("event") or None,
            rule=_choice(request, "rule", RULES),
            action=_choice(request, "action", ACTIONS),
            source_id=_source_id(services, request),
            since_us=_since(request),
            cursor=params.get("cursor") or None,
            limit=api.int_param(request, "limit", 50, lo=1, hi=500),
        )
        return services.plan.rejected(query)  # type: ignore[no-any-return]

    page, cursor = await asyncio.to_thread(run)
    return api.json({"rejected": page, "next_cursor": cursor})


async def schema(request: Request) -> Response:
    return api.json(plan_json_schema())


def plan_json_schema() -> dict[str, Any]:
    out = TrackingPlan.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "/api/v1/schemas/tracking-plan.json", **out}


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/tracking-plan", get_plan, methods=["GET"]),
        Route("/api/v1/tracking-plan", put_plan, methods=["PUT"]),
        Route("/api/v1/tracking-plan/validate", validate_plan, methods=["POST"]),
        Route("/api/v1/tracking-plan/versions", versions, methods=["GET"]),
        Route("/api/v1/tracking-plan/lineage", lineage, methods=["GET"]),
        Route("/api/v1/tracking-plan/violations", violations, methods=["GET"]),
        Route("/api/v1/tracking-plan/rejected", rejected, methods=["GET"]),
        Route("/api/v1/schemas/tracking-plan.json", schema, methods=["GET"]),
    ]
