"""``/api/v1/tracking-plan``: the plan, its violations and the rejected store."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from partitur import api
from partitur.errors import NotFound
from partitur.plan.model import TrackingPlan


async def get_plan(request: Request) -> Response:
    api.require_admin(request)
    current = await asyncio.to_thread(api.services(request).plan.current)
    if current is None:
        raise NotFound("no tracking plan has been applied")
    version, plan = current
    return api.json({"version": version, "plan": plan.model_dump()})


async def put_plan(request: Request) -> Response:
    """The body is the plan document (JSON); a new version is stored if it changed."""
    api.require_admin(request)
    body = await api.body_json(request)
    applied = await asyncio.to_thread(api.services(request).plan.apply_data, body)
    return api.json({"version": applied.version, "changed": applied.changed})


async def violations(request: Request) -> Response:
    api.require_admin(request)
    since = request.query_params.get("since")
    since_us = api.int_param(request, "since", 0, lo=0, hi=2**62) if since else None
    summary = await asyncio.to_thread(
        api.services(request).plan.violations_summary, since_us,
        request.query_params.get("source"),
    )
    return api.json({"violations": summary})


async def rejected(request: Request) -> Response:
    api.require_admin(request)
    services = api.services(request)
    limit = api.int_param(request, "limit", 50, lo=1, hi=500)
    event = request.query_params.get("event")

    def run() -> list[dict[str, Any]]:
        where, params = "1 = 1", []
        if event:
            where, params = "event = ?", [event]
        with services.db.read() as tx:
            rows = tx.execute(
                f"SELECT id, received_at, source_id, type, event, action, violations, body "
                f"FROM rejected_events WHERE {where} ORDER BY id DESC LIMIT ?",
                [*params, limit],
            )
        return [{"id": r[0], "received_at": r[1], "source": r[2], "type": r[3], "event": r[4],
                 "action": r[5], "violations": json.loads(r[6]), "body": json.loads(r[7])}
                for r in rows]

    return api.json({"rejected": await asyncio.to_thread(run)})


async def schema(request: Request) -> Response:
    return api.json(TrackingPlan.model_json_schema())


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/tracking-plan", get_plan, methods=["GET"]),
        Route("/api/v1/tracking-plan", put_plan, methods=["PUT"]),
        Route("/api/v1/tracking-plan/violations", violations, methods=["GET"]),
        Route("/api/v1/tracking-plan/rejected", rejected, methods=["GET"]),
        Route("/api/v1/schemas/tracking-plan.json", schema, methods=["GET"]),
    ]
