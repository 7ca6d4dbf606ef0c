"""``/api/v1/privacy``: erase and export a person, the audit trail; and
``/api/v1/profiles/{id}/consent``: a profile's consent with its history."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from partitur import api
from partitur.errors import InvalidInput
from partitur.privacy import service
from partitur.profiles.routes import redirect_to_live

_SHAPE = 'expected {"type": "<identifier type>", "value": "<identifier>"}'


def actor(request: Request) -> str:
    """The admin token's prefix, as ``partitur keys list`` shows it (called after
    ``require_admin``)."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    return token[:8]


def _subject(data: Any) -> tuple[Any, Any]:
    if not isinstance(data, dict):
        raise InvalidInput(_SHAPE)
    unknown = sorted(set(data) - {"type", "value"})
    if unknown:
        raise InvalidInput(f"unknown field '{unknown[0]}'; {_SHAPE}",
                           details=[{"field": unknown[0]}])
    for name in ("type", "value"):
        if name not in data:
            raise InvalidInput(f"'{name}' is required; {_SHAPE}", details=[{"field": name}])
    return data["type"], data["value"]


async def erase_person(request: Request) -> Response:
    """``POST /api/v1/privacy/erase`` with ``{"type": "email", "value": "..."}``."""
    api.require_admin(request)
    services = api.services(request)
    kind, value = _subject(await api.body_json(request, limit=64 * 1024))
    who = actor(request)
    return api.json(await asyncio.to_thread(service.erase_person, services, kind, value, who))


async def export_person(request: Request) -> Response:
    """``GET /api/v1/privacy/export?type=email&value=...``"""
    api.require_admin(request)
    services = api.services(request)
    kind, value = _subject(dict(request.query_params))
    who = actor(request)
    return api.json(await asyncio.to_thread(service.export_person, services, kind, value, who))


async def audit_trail(request: Request) -> Response:
    """``GET /api/v1/privacy/audit``: newest first; ``limit``, ``action``, ``cursor``."""
    api.require_admin(request)
    services = api.services(request)
    limit = api.int_param(request, "limit", 100, lo=1, hi=1000)
    action = request.query_params.get("action") or None
    cursor = request.query_params.get("cursor") or None

    def run() -> tuple[list[dict[str, Any]], str | None]:
        return service.audit_trail(services, limit=limit, action=action, cursor=cursor)

    page, next_cursor = await asyncio.to_thread(run)
    return api.json({"audit": page, "next_cursor": next_cursor})


async def profile_consent(request: Request) -> Response:
    """``GET /api/v1/profiles/{id}/consent``: the current answer per purpose and each change,
    with the source and event behind it. A merged-away id redirects (308) to the survivor."""
    api.require_admin(request)
    services = api.services(request)
    profile_id = request.path_params["id"]
    live, view = await asyncio.to_thread(service.consent_view, services, profile_id)
    if view is None:
        return redirect_to_live(request, live)
    return api.json(view)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/privacy/erase", erase_person, methods=["POST"]),
        Route("/api/v1/privacy/export", export_person, methods=["GET"]),
        Route("/api/v1/privacy/audit", audit_trail, methods=["GET"]),
        Route("/api/v1/profiles/{id}/consent", profile_consent, methods=["GET"]),
    ]
