"""``/api/v1/templates``: stored message templates, versioned, with a preview.

``PUT /templates/{key}`` saves a new version when the document changed (``201`` for a new
key, ``200`` otherwise, ``version`` in the answer); ``GET /templates/{key}`` (``?version=N``
for an older one), ``GET /templates/{key}/versions``, ``DELETE /templates/{key}``,
``GET /templates`` (``channel``, ``limit``, ``cursor``) and ``POST /templates/{key}/preview``
with ``{"profile_id": "…"}`` or sample data ``{"profile": {...}, "event": {...},
"journey": {...}}`` (and optionally an unsaved ``"template"`` to try).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from partitur import api
from partitur.errors import InvalidInput, NotFound
from partitur.templates import store
from partitur.templates.engine import RenderError
from partitur.templates.parts import profile_variable, render_parts


async def put_template(request: Request) -> Response:
    api.require_admin(request)
    services = api.services(request)
    key = request.path_params["key"]
    doc = await api.body_json(request, limit=1024 * 1024)

    def run() -> tuple[dict[str, Any], bool, bool]:
        with services.db.transaction() as tx:
            existed = store.template_exists(tx, key)
            template, changed = store.put(tx, key, doc, services.clock.now_us())
            return template.as_json(), changed, existed

    body, changed, existed = await asyncio.to_thread(run)
    body["changed"] = changed
    return api.json(body, 200 if existed else 201)


async def get_template(request: Request) -> Response:
    api.require_admin(request)
    services = api.services(request)
    key = request.path_params["key"]
    version = request.query_params.get("version")
    if version is not None and not version.isdigit():
        raise InvalidInput("'version' must be a positive integer")

    def run() -> dict[str, Any]:
        with services.db.read() as tx:
            return store.get(tx, key, int(version) if version else None).as_json()

    return api.json(await asyncio.to_thread(run))


async def template_versions(request: Request) -> Response:
    api.require_admin(request)
    services = api.services(request)
    key = request.path_params["key"]

    def run() -> list[dict[str, Any]]:
        with services.db.read() as tx:
            return store.versions(tx, key)

    return api.json({"key": key, "versions": await asyncio.to_thread(run)})


async def delete_template(request: Request) -> Response:
    api.require_admin(request)
    services = api.services(request)
    key = request.path_params["key"]

    def run() -> None:
        with services.db.transaction() as tx:
            store.delete(tx, key)

    await asyncio.to_thread(run)
    return Response(status_code=204)


async def list_templates(request: Request) -> Response:
    api.require_admin(request)
    services = api.services(request)
    channel = request.query_params.get("channel") or None
    cursor = request.query_params.get("cursor") or None
    limit = api.int_param(request, "limit", 100, lo=1, hi=1000)

    def run() -> dict[str, Any]:
        with services.db.read() as tx:
            found, after = store.listing(tx, channel=channel, limit=limit, after=cursor)
        return {"templates": [t.as_json() for t in found], "next_cursor": after}

    return api.json(await asyncio.to_thread(run))


def _sample_profile(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInput("'profile' must be an object like {\"traits\": {...}}")
    return {
        "id": str(data.get("id", "sample")),
        "traits": dict(data.get("traits") or {}),
        "consent": dict(data.get("consent") or {}),
        "identifiers": dict(data.get("identifiers") or {}),
    }


async def preview_template(request: Request) -> Response:
    api.require_admin(request)
    services = api.services(request)
    key = request.path_params["key"]
    body = await api.body_json(request, limit=1024 * 1024)
    if not isinstance(body, dict):
        raise InvalidInput("expected a JSON object with 'profile_id' or 'profile'")

    def run() -> dict[str, Any]:
        from partitur.identity import store as graph_store
        from partitur.profiles import store as profile_store

        with services.db.read() as tx:
            if "template" in body:
                channel, parts, _ = store.parse_document(key, body["template"])
                version = None
            else:
                template = store.get(tx, key)
                channel, parts, version = template.channel, template.parts, template.version
            if body.get("profile_id") is not None:
                live, _ = profile_store.resolve_id(tx, str(body["profile_id"]))
                state = profile_store.get(tx, live) if live else None
                if state is None:
                    raise NotFound(f"no profile '{body['profile_id']}'")
                ids = [(t, v) for t, v, _, _ in graph_store.identifiers_of(tx, state.id)]
                profile = profile_variable(state.id, state.traits, state.consent, ids)
            else:
                profile = _sample_profile(body.get("profile", {}))
        variables = {
            "profile": profile,
            "event": body.get("event") or {},
            "journey": body.get("journey") or {},
        }
        if channel == "email":
            variables["unsubscribe_url"] = "https://example.invalid/unsubscribe"
        try:
            rendered = render_parts(channel, parts, variables)
        except RenderError as exc:
            raise InvalidInput(
                f"template '{key}' cannot be rendered: {exc.message}",
                details=[{"field": "template", "message": exc.message}],
            ) from None
        return {"key": key, "channel": channel, "version": version, "rendered": rendered}

    return api.json(await asyncio.to_thread(run))


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/templates", list_templates, methods=["GET"]),
        Route("/api/v1/templates/{key}", put_template, methods=["PUT"]),
        Route("/api/v1/templates/{key}", get_template, methods=["GET"]),
        Route("/api/v1/templates/{key}", delete_template, methods=["DELETE"]),
        Route("/api/v1/templates/{key}/versions", template_versions, methods=["GET"]),
        Route("/api/v1/templates/{key}/preview", preview_template, methods=["POST"]),
    ]
