"""HTTP routes of the channels.

Admin (``/api/v1``): ``GET /deliveries`` (filter by ``status`` — comma-separated, e.g.
``failed,dead`` for the dead-letter list —, ``channel``, ``journey``, ``profile``; paged with
``limit`` and ``cursor``), ``GET /deliveries/{key}``, ``POST /deliveries/{key}/replay``.

Public: ``GET|POST /v1/unsubscribe?token=…`` (the link in every marketing email; ``POST`` is
RFC 8058 one-click) and ``GET /v1/messages?anonymousId=…|userId=…`` (a site's write key) for
web/in-app messages.
"""

from __future__ import annotations

import asyncio
import html
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from partitur import api
from partitur.channels import deliveries
from partitur.channels.events import SOURCE_NAME, event_message_id, person_ids, track_row
from partitur.channels.unsubscribe import load_secret, read_token
from partitur.channels.web import fetch_messages
from partitur.errors import InvalidInput, Unauthorized
from partitur.identity import store as graph_store
from partitur.profiles import store as profile_store


def runtime(services: Any) -> dict[str, Any]:
    """What the public routes need, loaded once per process: the unsubscribe key and the
    source delivery events are written under."""
    found = services.extra.get("channels_runtime")
    if found is None:
        found = {
            "secret": load_secret(services.db, services.settings.unsubscribe_secret),
            "source_id": services.keys.ensure_source(SOURCE_NAME).id,
        }
        services.extra["channels_runtime"] = found
    return found  # type: ignore[no-any-return]


# -- deliveries -------------------------------------------------------------------------------
async def list_deliveries(request: Request) -> Response:
    api.require_admin(request)
    services = api.services(request)
    q = request.query_params
    statuses = [s.strip() for s in q.get("status", "").split(",") if s.strip()]
    limit = api.int_param(request, "limit", 50, lo=1, hi=1000)

    def run() -> dict[str, Any]:
        with services.db.read() as tx:
            return deliveries.list_deliveries(
                tx,
                statuses=statuses,
                channel=q.get("channel") or None,
                journey=q.get("journey") or None,
                profile_id=q.get("profile") or None,
                limit=limit,
                cursor=q.get("cursor") or None,
            )

    return api.json(await asyncio.to_thread(run))


async def get_delivery(request: Request) -> Response:
    api.require_admin(request)
    services = api.services(request)
    key = request.path_params["key"]

    def run() -> dict[str, Any]:
        with services.db.read() as tx:
            return deliveries.get_delivery(tx, key)

    return api.json(await asyncio.to_thread(run))


async def replay_delivery(request: Request) -> Response:
    api.require_admin(request)
    services = api.services(request)
    key = request.path_params["key"]

    def run() -> dict[str, Any]:
        with services.db.transaction() as tx:
            return deliveries.replay(tx, key, services.clock.now_us())

    return api.json(await asyncio.to_thread(run))


# -- unsubscribe ------------------------------------------------------------------------------
def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head>"
        "<body style='font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto'>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
    )


async def unsubscribe(request: Request) -> Response:
    services = api.services(request)
    token = request.query_params.get("token", "")
    info = await asyncio.to_thread(runtime, services)
    try:
        item = read_token(info["secret"], token)
    except InvalidInput:
        return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 400)
    if request.method == "GET":  # link scanners fetch links: only a POST changes anything
        action = html.escape(str(request.url.include_query_params(token=token)))
        return _page(
            "Unsubscribe",
            f"<p>Stop receiving these messages ({html.escape(item.purpose)})?</p>"
            f"<form method='post' action='{action}'><button type='submit'>"
            "Unsubscribe</button></form>",
        )

    def event_row() -> Any:
        with services.db.read() as tx:
            live, _ = profile_store.resolve_id(tx, item.profile_id)
            if live is None:
                return None
            user_id, anonymous_id = person_ids(tx, live)
        if not (user_id or anonymous_id):
            return None
        now = services.clock.now_us()
        return track_row(
            name="Unsubscribed",
            message_id=event_message_id(item.key, f"Unsubscribed:{item.purpose}:{now}"),
            user_id=user_id,
            anonymous_id=anonymous_id,
            properties={"purpose": item.purpose, "key": item.key, "channel": "email"},
            now_us=now,
            source_id=info["source_id"],
            partitions=services.settings.partitions,
            context={"consent": {"categoryPreferences": {item.purpose: False}}},
        )

    row = await asyncio.to_thread(event_row)
    if row is not None:
        await services.committer.submit([row])
    return _page("You are unsubscribed", "<p>You will not receive these messages any more.</p>")


# -- web messages -----------------------------------------------------------------------------
def _cors(request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}


async def web_messages(request: Request) -> Response:
    """``GET /v1/messages?anonymousId=…`` (or ``userId``), write key as HTTP Basic user or
    ``writeKey`` parameter: the person's undelivered web messages, marked delivered."""
    from partitur.ingest.routes import basic_key

    services = api.services(request)
    q = request.query_params
    key = basic_key(request) or q.get("writeKey")
    if not key or services.keys.resolve_write_key(key) is None:
        raise Unauthorized("a write key is required (HTTP Basic user or 'writeKey')")
    wanted = [
        (t, q[p]) for t, p in (("user_id", "userId"), ("anonymous_id", "anonymousId")) if q.get(p)
    ]
    if not wanted:
        raise InvalidInput(
            "'anonymousId' or 'userId' is required", details=[{"field": "anonymousId"}]
        )
    limit = api.int_param(request, "limit", 20, lo=1, hi=100)

    def run() -> list[dict[str, Any]]:
        with services.db.transaction() as tx:
            owners = graph_store.owners(tx, [f"{t}:{v}" for t, v in wanted])
            profiles = []
            for owner in sorted(set(owners.values())):
                live, _ = profile_store.resolve_id(tx, owner)
                if live:
                    profiles.append(live)
            return fetch_messages(tx, profiles, services.clock.now_us(), limit)

    messages = await asyncio.to_thread(run)
    return api.json({"messages": messages}, headers=_cors(request))


async def web_messages_preflight(request: Request) -> Response:
    headers = {
        **_cors(request),
        "Access-Control-Allow-Methods": "GET, OPTIONS",
        "Access-Control-Allow-Headers": request.headers.get("access-control-request-headers")
        or "Authorization",
        "Access-Control-Max-Age": "86400",
    }
    return Response(status_code=204, headers=headers)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/deliveries", list_deliveries, methods=["GET"]),
        Route("/api/v1/deliveries/{key:path}/replay", replay_delivery, methods=["POST"]),
        Route("/api/v1/deliveries/{key:path}", get_delivery, methods=["GET"]),
        Route("/v1/unsubscribe", unsubscribe, methods=["GET", "POST"]),
        Route("/v1/messages", web_messages, methods=["GET"]),
        Route("/v1/messages", web_messages_preflight, methods=["OPTIONS"]),
    ]
