"""``/api/v1/sources`` and ``/api/v1/keys``: sources and their write keys, over the API."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from partitur import api
from partitur.errors import InvalidInput


async def list_sources(request: Request) -> Response:
    api.require_admin(request)
    sources = await asyncio.to_thread(api.services(request).keys.list_sources)
    return api.json({"sources": [s.as_json() for s in sources]})


async def create_write_key(request: Request) -> Response:
    """``POST /api/v1/sources/{name}/keys``: a new write key for the source (created if new)."""
    api.require_admin(request)
    name = request.path_params["name"]
    key, source = await asyncio.to_thread(api.services(request).keys.create_write_key, name)
    return api.json({"write_key": key, "source": source.as_json()}, 201)


async def update_source(request: Request) -> Response:
    """``PATCH /api/v1/sources/{name}``: ``rate_limit`` and ``plan_policy``."""
    api.require_admin(request)
    body = await api.body_json(request)
    if not isinstance(body, dict):
        raise InvalidInput("expected a JSON object")
    unknown = set(body) - {"rate_limit", "plan_policy"}
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}")
    keys = api.services(request).keys
    rate = body.get("rate_limit")
    if rate is not None and not isinstance(rate, int | float):
        raise InvalidInput("'rate_limit' must be a number or null")
    policy = body.get("plan_policy")
    if policy is not None:
        from partitur.plan.policy import check_policy

        check_policy(policy)
    source = await asyncio.to_thread(
        keys.update_source,
        request.path_params["name"],
        rate_limit=rate,
        plan_policy=policy,
        clear_rate_limit="rate_limit" in body and rate is None,
    )
    return api.json(source.as_json())


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/sources", list_sources, methods=["GET"]),
        Route("/api/v1/sources/{name}", update_source, methods=["PATCH"]),
        Route("/api/v1/sources/{name}/keys", create_write_key, methods=["POST"]),
    ]
