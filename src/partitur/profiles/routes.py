"""``/api/v1/profiles``: lookup, read, timeline, identity explanation, unmerge, search."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from partitur import api
from partitur.errors import InvalidInput, NotFound
from partitur.identity import store as graph_store
from partitur.identity.extract import BUILTIN_TYPES
from partitur.identity.unmerge import unmerge
from partitur.profiles import store as profile_store
from partitur.profiles.view import events_page, profile_json
from partitur.store.db import Tx
from partitur.worker.processor import lock_identity, rules_from


def redirect_to_live(request: Request, live: str) -> Response:
    """308 to the same path (and query) with the surviving profile id."""
    path = request.url.path.replace(request.path_params["id"], live, 1)
    query = f"?{request.url.query}" if request.url.query else ""
    return api.json({"redirect": live}, 308, {"Location": path + query})


def _live(tx: Any, profile_id: str) -> tuple[str, bool]:
    live, redirected = profile_store.resolve_id(tx, profile_id)
    if live is None:
        raise NotFound(f"no profile {profile_id}")
    return live, redirected


async def lookup(request: Request) -> Response:
    """``GET /api/v1/profiles/lookup?type=email&value=...``"""
    api.require_admin(request)
    services = api.services(request)
    kind = request.query_params.get("type", "")
    value = request.query_params.get("value")
    rules = rules_from(services.settings)
    known = set(BUILTIN_TYPES) | set(services.settings.identity_custom_types)
    if kind not in known:
        raise InvalidInput(f"'type' must be one of {', '.join(sorted(known))}")
    if value is None:
        raise InvalidInput("'value' is required")
    canonical = rules.normalise(kind, value)
    if canonical is None:
        raise NotFound(f"no profile for {kind} {value!r} (not a usable {kind})")

    def run() -> dict[str, Any]:
        with services.db.read() as tx:
            owner = graph_store.owners(tx, [f"{kind}:{canonical}"])
            if not owner:
                raise NotFound(f"no profile for {kind} {value!r}")
            state = profile_store.get(tx, next(iter(owner.values())))
            assert state is not None
            return profile_json(tx, state)

    return api.json(await asyncio.to_thread(run))


async def live_profile(request: Request, read: Callable[[Tx, str], Any]) -> Response:
    """Answer ``read(tx, live id)`` for the profile in the path, or redirect (308) to the
    survivor when that id was merged away."""
    services = api.services(request)

    def run() -> tuple[str, bool, Any]:
        with services.db.read() as tx:
            live, redirected = _live(tx, request.path_params["id"])
            return live, redirected, None if redirected else read(tx, live)

    live, redirected, body = await asyncio.to_thread(run)
    if redirected:
        return redirect_to_live(request, live)
    return api.json(body)


async def get_profile(request: Request) -> Response:
    api.require_admin(request)

    def read(tx: Tx, live: str) -> dict[str, Any]:
        state = profile_store.get(tx, live)
        assert state is not None
        return profile_json(tx, state)

    return await live_profile(request, read)


async def profile_events(request: Request) -> Response:
    """Newest first; ``limit`` (default 50, at most 1000) and ``cursor`` from ``next_cursor``."""
    api.require_admin(request)
    services = api.services(request)
    limit = api.int_param(request, "limit", 50, lo=1, hi=1000)
    cursor = request.query_params.get("cursor")
    return await live_profile(
        request, lambda tx, live: events_page(tx, services.events, live, limit, cursor)
    )


async def identity(request: Request) -> Response:
    """Why a profile holds its identifiers: each link and merge with the event behind it."""
    api.require_admin(request)
    services = api.services(request)

    def run() -> dict[str, Any]:
        with services.db.read() as tx:
            live, _ = _live(tx, request.path_params["id"])
            merged = [r[0] for r in tx.execute(
                "SELECT id FROM profiles WHERE merged_into = ?", (live,))]
            idents = [
                {"type": t, "value": v, "first_seen": first, "event_seq": seq}
                for t, v, first, seq in graph_store.identifiers_of(tx, live)
            ]
            return {
                "profile_id": live,
                "identifiers": idents,
                "merged_from": merged,
                "log": graph_store.log_for(tx, [live, *merged]),
            }

    return api.json(await asyncio.to_thread(run))


async def unmerge_profile(request: Request) -> Response:
    """``POST /api/v1/profiles/{id}/unmerge`` with optional ``{"merge": <log id>}``."""
    api.require_admin(request)
    services = api.services(request)
    body: Any = {}
    if (await request.body()).strip():
        body = await api.body_json(request)
    if not isinstance(body, dict) or set(body) - {"merge"}:
        raise InvalidInput("expected {} or {\"merge\": <identity log id>}")
    merge_id = body.get("merge")
    if merge_id is not None and not isinstance(merge_id, int):
        raise InvalidInput("'merge' must be an integer id from the identity log")

    settings = services.settings

    def run() -> dict[str, Any]:
        with services.db.transaction() as tx:
            lock_identity(services.db, tx)
            live, _ = _live(tx, request.path_params["id"])
            result = unmerge(tx, services.events, live, merge_id, rules_from(settings),
                             dict(settings.trait_survivorship), services.clock.now_us())
            segments = services.extra.get("segments")
            if segments is not None:  # memberships follow the two rebuilt profiles
                segments.unmerged(tx, result["profile"], result["restored"])
            return result

    return api.json(await asyncio.to_thread(run))


async def search(request: Request) -> Response:
    """``GET /api/v1/profiles?trait=plan&value=pro`` (value optional: has the trait)."""
    api.require_admin(request)
    services = api.services(request)
    trait = request.query_params.get("trait")
    if not trait:
        raise InvalidInput("'trait' is required (search profiles by trait)")
    limit = api.int_param(request, "limit", 50, lo=1, hi=500)
    value = request.query_params.get("value")
    after = request.query_params.get("cursor")

    def run() -> dict[str, Any]:
        with services.db.read() as tx:
            ids = profile_store.search(tx, trait, value, limit + 1, after)
            more = len(ids) > limit
            ids = ids[:limit]
            states = profile_store.load(tx, ids)
            profiles = [profile_json(tx, states[i]) for i in ids if i in states]
        return {"profiles": profiles, "next_cursor": ids[-1] if more and ids else None}

    return api.json(await asyncio.to_thread(run))


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/profiles", search, methods=["GET"]),
        Route("/api/v1/profiles/lookup", lookup, methods=["GET"]),
        Route("/api/v1/profiles/{id}", get_profile, methods=["GET"]),
        Route("/api/v1/profiles/{id}/events", profile_events, methods=["GET"]),
        Route("/api/v1/profiles/{id}/identity", identity, methods=["GET"]),
        Route("/api/v1/profiles/{id}/unmerge", unmerge_profile, methods=["POST"]),
    ]
