"""``/api/v1/privacy``: erase and export a person; the audit trail."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from partitur import api
from partitur.clock import iso
from partitur.errors import InvalidInput, NotFound
from partitur.privacy.erase import audit, erase, export
from partitur.worker.processor import lock_identity, rules_from


def _actor(request: Request) -> str:
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    return token[:8]


async def erase_person(request: Request) -> Response:
    """``POST /api/v1/privacy/erase`` with ``{"type": "email", "value": "..."}``."""
    api.require_admin(request)
    services = api.services(request)
    body = await api.body_json(request)
    if not isinstance(body, dict) or set(body) != {"type", "value"}:
        raise InvalidInput('expected {"type": "<identifier type>", "value": "<identifier>"}')
    rules = rules_from(services.settings)

    def run() -> dict[str, Any]:
        with services.db.transaction() as tx:
            lock_identity(services.db, tx)
            return erase(tx, services.events, rules, body["type"], body["value"],
                         services.clock.now_us(), _actor(request))

    try:
        return api.json(await asyncio.to_thread(run))
    except NotFound:
        await asyncio.to_thread(_audit_miss, services, "erase", _actor(request))
        raise


async def export_person(request: Request) -> Response:
    """``GET /api/v1/privacy/export?type=email&value=...``"""
    api.require_admin(request)
    services = api.services(request)
    kind = request.query_params.get("type", "")
    value = request.query_params.get("value")
    rules = rules_from(services.settings)

    def run() -> dict[str, Any]:
        with services.db.transaction() as tx:
            data = export(tx, services.events, rules, kind, value)
            audit(tx, "export", _actor(request),
                  {"profile": data["profile"]["id"], "events": len(data["events"])},
                  services.clock.now_us())
            return data

    try:
        return api.json(await asyncio.to_thread(run))
    except NotFound:
        await asyncio.to_thread(_audit_miss, services, "export", _actor(request))
        raise


def _audit_miss(services: Any, action: str, actor: str) -> None:
    with services.db.transaction() as tx:
        audit(tx, action, actor, {"found": False}, services.clock.now_us())


async def audit_trail(request: Request) -> Response:
    api.require_admin(request)
    services = api.services(request)
    limit = api.int_param(request, "limit", 100, lo=1, hi=1000)

    def run() -> list[dict[str, Any]]:
        with services.db.read() as tx:
            rows = tx.execute(
                "SELECT id, at, action, actor, detail FROM audit_log ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        return [{"id": r[0], "at": iso(r[1]), "action": r[2], "actor": r[3],
                 "detail": json.loads(r[4])} for r in rows]

    return api.json({"audit": await asyncio.to_thread(run)})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/privacy/erase", erase_person, methods=["POST"]),
        Route("/api/v1/privacy/export", export_person, methods=["GET"]),
        Route("/api/v1/privacy/audit", audit_trail, methods=["GET"]),
    ]
