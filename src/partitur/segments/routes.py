"""``/api/v1/segments``: define, list and inspect segments, their members and a person's.

``PUT /segments/{key}`` (``201`` new, ``200`` replaced; a bad document is a 400 naming the
path), ``GET /segments`` (with sizes), ``GET /segments/{key}`` (definition, size, backfill),
``DELETE /segments/{key}``, ``GET /segments/{key}/members`` (``limit``, ``cursor``;
``?format=csv`` exports them all), ``POST /segments/{key}/members`` and
``POST /segments/{key}/members/remove`` with ``{"profile_ids": [...]}`` for static segments,
``GET /profiles/{id}/segments`` (memberships and entry/exit history), and the schema at
``GET /schemas/segment.json``.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from partitur import api
from partitur.errors import InvalidInput
from partitur.profiles.routes import live_profile
from partitur.segments.schema import segment_schema
from partitur.segments.service import SegmentService
from partitur.store.db import Tx


def _service(request: Request) -> SegmentService:
    seg: SegmentService = api.services(request).extra["segments"]
    return seg


async def put_segment(request: Request) -> Response:
    api.require_admin(request)
    doc = await api.body_json(request, limit=1024 * 1024)
    body, created = await asyncio.to_thread(
        _service(request).put, doc, request.path_params["key"]
    )
    return api.json(body, 201 if created else 200)


async def list_segments(request: Request) -> Response:
    api.require_admin(request)
    return api.json({"segments": await asyncio.to_thread(_service(request).all)})


async def get_segment(request: Request) -> Response:
    api.require_admin(request)
    return api.json(await asyncio.to_thread(_service(request).get, request.path_params["key"]))


async def delete_segment(request: Request) -> Response:
    api.require_admin(request)
    await asyncio.to_thread(_service(request).delete, request.path_params["key"])
    return Response(status_code=204)


async def members(request: Request) -> Response:
    api.require_admin(request)
    service = _service(request)
    key = request.path_params["key"]
    form = request.query_params.get("format", "json")
    if form == "csv":
        pages = iter(await asyncio.to_thread(lambda: service.iter_members(key)))
        first = await asyncio.to_thread(next, pages, None)  # 404 before the answer starts

        async def stream() -> AsyncIterator[str]:
            page = first
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(["profile_id", "since", "user_id", "email"])
            while True:
                if page is not None:
                    writer.writerows(page)
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
                if page is None:
                    return
                page = await asyncio.to_thread(next, pages, None)

        return StreamingResponse(
            stream(), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{key}.csv"'},
        )
    if form != "json":
        raise InvalidInput("'format' is json or csv")
    limit = api.int_param(request, "limit", 100, lo=1, hi=5000)
    after = request.query_params.get("cursor")
    return api.json(await asyncio.to_thread(lambda: service.members(key, after=after,
                                                                     limit=limit)))


async def _static(request: Request, add: bool) -> Response:
    api.require_admin(request)
    doc = await api.body_json(request)
    if not isinstance(doc, dict) or "profile_ids" not in doc:
        raise InvalidInput("expected {\"profile_ids\": [...]}",
                           details=[{"path": "profile_ids", "message": "required"}])
    service = _service(request)
    key = request.path_params["key"]
    result = await asyncio.to_thread(
        lambda: service.change_static(key, doc["profile_ids"], add=add)
    )
    return api.json(result)


async def add_members(request: Request) -> Response:
    return await _static(request, True)


async def remove_members(request: Request) -> Response:
    return await _static(request, False)


async def profile_segments(request: Request) -> Response:
    api.require_admin(request)
    limit = api.int_param(request, "history", 200, lo=0, hi=10_000)

    def read(tx: Tx, live: str) -> Any:
        return SegmentService.of_profile(tx, live, limit)

    return await live_profile(request, read)


async def schema(request: Request) -> Response:
    return api.json(segment_schema())


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/schemas/segment.json", schema, methods=["GET"]),
        Route("/api/v1/segments", list_segments, methods=["GET"]),
        Route("/api/v1/segments/{key}", put_segment, methods=["PUT"]),
        Route("/api/v1/segments/{key}", get_segment, methods=["GET"]),
        Route("/api/v1/segments/{key}", delete_segment, methods=["DELETE"]),
        Route("/api/v1/segments/{key}/members", members, methods=["GET"]),
        Route("/api/v1/segments/{key}/members", add_members, methods=["POST"]),
        Route("/api/v1/segments/{key}/members/remove", remove_members, methods=["POST"]),
        Route("/api/v1/profiles/{id}/segments", profile_segments, methods=["GET"]),
    ]
