"""Admin routes of the profile worker: the failed events it set aside, and replaying them.

``GET /api/v1/events/failed`` (``limit``, ``after``: a seq) lists them with their error;
``POST /api/v1/events/failed/replay`` puts them back in the queue: ``{"seqs": [...]}`` for some,
``{}`` for all.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from partitur import api
from partitur.errors import InvalidInput
from partitur.worker import deadletter


async def list_failed(request: Request) -> Response:
    api.require_admin(request)
    services = api.services(request)
    limit = api.int_param(request, "limit", 100, lo=1, hi=1000)
    after_text = request.query_params.get("after")
    if after_text is not None and not after_text.lstrip("-").isdigit():
        raise InvalidInput("'after' must be a seq (an integer)")
    after = None if after_text is None else int(after_text)

    def run() -> dict[str, Any]:
        with services.db.read() as tx:
            found = deadletter.listing(tx, limit=limit, after=after)
            total = deadletter.count(tx)
        return {
            "total": total,
            "events": [f.to_json() for f in found],
            "next_after": found[-1].seq if len(found) == limit else None,
        }

    return api.json(await asyncio.to_thread(run))


async def replay_failed(request: Request) -> Response:
    api.require_admin(request)
    services = api.services(request)
    body = await api.body_json(request) if await request.body() else {}
    if not isinstance(body, dict) or set(body) - {"seqs"}:
        raise InvalidInput("expected {} (replay all) or {\"seqs\": [seq, ...]}")
    seqs = body.get("seqs")
    if seqs is not None and (
        not isinstance(seqs, list)
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seqs)
    ):
        raise InvalidInput("'seqs' must be a list of integers", details=[{"field": "seqs"}])

    def run() -> int:
        with services.db.transaction() as tx:
            return deadletter.replay(tx, seqs, services.db.dialect)

    replayed = await asyncio.to_thread(run)
    services.wake.set()
    return api.json({"replayed": replayed})


routes: list[BaseRoute] = [
    Route("/api/v1/events/failed", list_failed, methods=["GET"]),
    Route("/api/v1/events/failed/replay", replay_failed, methods=["POST"]),
]
