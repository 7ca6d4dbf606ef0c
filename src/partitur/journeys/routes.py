"""``/api/v1/journeys``: drafts, versions, status, stats, test runs, and a person's journeys.

``PUT /journeys/{key}`` saves a draft (JSON, or YAML with a YAML content type; ``201`` new,
``200`` replaced; a bad document is a 400 naming the step and the reason), ``GET /journeys``,
``GET /journeys/{key}``, ``POST /journeys/{key}/publish`` (``{"migrate": bool, "dry_run":
bool}``), ``POST /journeys/{key}/pause|resume|archive``, ``GET /journeys/{key}/stats``,
``POST /journeys/{key}/test``, ``POST /journeys/{key}/simulate``,
``GET /profiles/{id}/journeys`` and the schema at ``GET /schemas/journey.json``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from partitur import api
from partitur.errors import InvalidInput
from partitur.journeys.schema import journey_schema
from partitur.journeys.service import JourneyService
from partitur.profiles.routes import live_profile
from partitur.store.db import Tx


def _service(request: Request) -> JourneyService:
    svc: JourneyService = api.services(request).extra["journeys"]
    return svc


async def _document(request: Request) -> Any:
    kind = request.headers.get("content-type", "")
    if "yaml" in kind:
        body = await request.body()
        if len(body) > 1024 * 1024:
            raise InvalidInput("request body is larger than 1048576 bytes")
        try:
            return yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"invalid YAML: {exc}") from None
    return await api.body_json(request, limit=1024 * 1024)


async def _options(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body.strip():
        return {}
    doc = await api.body_json(request)
    if not isinstance(doc, dict):
        raise InvalidInput("the request body is a JSON object")
    return doc


def _flag(options: dict[str, Any], name: str) -> bool:
    value = options.get(name, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"'{name}' must be true or false")
    return value


async def put_journey(request: Request) -> Response:
    api.require_admin(request)
    doc = await _document(request)
    body, created = await asyncio.to_thread(_service(request).put, doc,
                                            request.path_params["key"])
    return api.json(body, 201 if created else 200)


async def list_journeys(request: Request) -> Response:
    api.require_admin(request)
    return api.json({"journeys": await asyncio.to_thread(_service(request).all)})


async def get_journey(request: Request) -> Response:
    api.require_admin(request)
    return api.json(await asyncio.to_thread(_service(request).get, request.path_params["key"]))


async def publish(request: Request) -> Response:
    api.require_admin(request)
    options = await _options(request)
    unknown = sorted(set(options) - {"migrate", "dry_run"})
    if unknown:
        raise InvalidInput(f"unknown option '{unknown[0]}' (migrate, dry_run)")
    result = await asyncio.to_thread(
        _service(request).publish, request.path_params["key"],
        migrate=_flag(options, "migrate"), dry_run=_flag(options, "dry_run"),
    )
    return api.json(result, 200 if result["dry_run"] else 201)


def _status_route(action: str) -> Any:
    async def change(request: Request) -> Response:
        api.require_admin(request)
        return api.json(await asyncio.to_thread(_service(request).set_status,
                                                request.path_params["key"], action))

    return change


async def stats(request: Request) -> Response:
    api.require_admin(request)
    return api.json(await asyncio.to_thread(_service(request).stats,
                                            request.path_params["key"]))


async def profile_journeys(request: Request) -> Response:
    api.require_admin(request)

    def read(tx: Tx, live: str) -> Any:
        return JourneyService.of_profile(tx, live)

    return await live_profile(request, read)


async def schema(request: Request) -> Response:
    return api.json(journey_schema())


async def test_run(request: Request) -> Response:
    from partitur.journeys.testrun import run_test

    api.require_admin(request)
    options = await _options(request)
    result = await asyncio.to_thread(run_test, _service(request), request.path_params["key"],
                                     options)
    return api.json(result)


async def simulate(request: Request) -> Response:
    from partitur.journeys.simulate import run_simulation

    api.require_admin(request)
    options = await _options(request)
    result = await asyncio.to_thread(run_simulation, _service(request),
                                     request.path_params["key"], options)
    return api.json(result)


def routes() -> list[BaseRoute]:
    base = "/api/v1/journeys"
    return [
        Route("/api/v1/schemas/journey.json", schema, methods=["GET"]),
        Route(base, list_journeys, methods=["GET"]),
        Route(base + "/{key}", put_journey, methods=["PUT"]),
        Route(base + "/{key}", get_journey, methods=["GET"]),
        Route(base + "/{key}/publish", publish, methods=["POST"]),
        Route(base + "/{key}/pause", _status_route("pause"), methods=["POST"]),
        Route(base + "/{key}/resume", _status_route("resume"), methods=["POST"]),
        Route(base + "/{key}/archive", _status_route("archive"), methods=["POST"]),
        Route(base + "/{key}/stats", stats, methods=["GET"]),
        Route(base + "/{key}/test", test_run, methods=["POST"]),
        Route(base + "/{key}/simulate", simulate, methods=["POST"]),
        Route("/api/v1/profiles/{id}/journeys", profile_journeys, methods=["GET"]),
    ]
