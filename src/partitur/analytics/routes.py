"""``/api/v1/analytics/*``: the HTTP face of analytics (admin token required).

Every query runs in the analytics pool (:meth:`AnalyticsService.run`), never on the event
loop or the pool ingestion uses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from partitur import api
from partitur.analytics.export import check_format, render
from partitur.analytics.service import AnalyticsService


def _service(request: Request) -> AnalyticsService:
    service: AnalyticsService = api.services(request).extra["analytics"]
    return service


async def status(request: Request) -> Response:
    api.require_admin(request)
    service = _service(request)
    result: dict[str, Any] = await service.run(service.status)
    return api.json(result)


def _query(name: str, kind: str) -> Callable[[Request], Awaitable[Response]]:
    """A POST route whose JSON body goes to ``AnalyticsService.<name>``; ``?format=csv`` or
    ``?format=parquet`` (or ``"format"`` in the body) answers with the result as a file."""

    async def handle(request: Request) -> Response:
        api.require_admin(request)
        body = await api.body_json(request)
        fmt = check_format(request.query_params.get("format") or (
            body.get("format") if isinstance(body, dict) else None))
        service = _service(request)
        method = getattr(service, name)
        result = await service.run(lambda: method(body))
        if fmt == "json":
            return api.json(result)
        data, media = render(kind, result, fmt)
        filename = f"{name.replace('_', '-')}.{fmt}"
        return Response(data, media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    handle.__name__ = name
    return handle


def _journey(name: str) -> Callable[[Request], Awaitable[Response]]:
    """``GET /api/v1/analytics/journeys/{key}/...``: the same as the POST form, with
    ``version``, ``from``, ``to`` and ``format`` as query parameters."""

    async def handle(request: Request) -> Response:
        api.require_admin(request)
        body: dict[str, Any] = {"journey": request.path_params["key"]}
        for param in ("from", "to"):
            if request.query_params.get(param):
                body[param] = request.query_params[param]
        if request.query_params.get("version"):
            body["version"] = api.int_param(request, "version", 0, lo=1, hi=10**9)
        fmt = check_format(request.query_params.get("format"))
        service = _service(request)
        method = getattr(service, name)
        result = await service.run(lambda: method(body))
        if fmt == "json":
            return api.json(result)
        data, media = render(name, result, fmt)
        return Response(data, media_type=media, headers={
            "Content-Disposition": f'attachment; filename="{name}.{fmt}"'})

    handle.__name__ = f"journey_{name}"
    return handle


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/analytics/status", status, methods=["GET"]),
        Route("/api/v1/analytics/funnel", _query("funnel", "funnel"), methods=["POST"]),
        Route("/api/v1/analytics/funnel/people", _query("funnel_people", "people"),
              methods=["POST"]),
        Route("/api/v1/analytics/time-to-convert", _query("time_to_convert", "time_to_convert"),
              methods=["POST"]),
        Route("/api/v1/analytics/paths", _query("paths", "paths"), methods=["POST"]),
        Route("/api/v1/analytics/retention", _query("retention", "retention"), methods=["POST"]),
        Route("/api/v1/analytics/kpi", _query("kpi", "kpi"), methods=["POST"]),
        Route("/api/v1/analytics/journey", _query("journey", "journey"), methods=["POST"]),
        Route("/api/v1/analytics/experiment", _query("experiment", "experiment"),
              methods=["POST"]),
        Route("/api/v1/analytics/journeys/{key}/dropoff", _journey("journey"),
              methods=["GET"]),
        Route("/api/v1/analytics/journeys/{key}/experiments", _journey("experiment"),
              methods=["GET"]),
        Route("/api/v1/analytics/people", _query("people", "people"), methods=["POST"]),
        Route("/api/v1/analytics/people/save", _query("save_people", "saved"),
              methods=["POST"]),
    ]
