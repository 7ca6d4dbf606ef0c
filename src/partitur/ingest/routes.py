"""The Segment HTTP Tracking API: ``/v1/track`` and friends, ``/v1/batch``, ``/v1/import``.

Exactly Segment's contract: write key from HTTP Basic (``base64(writeKey:)``) or the body's
``writeKey``; JSON under any content type; gzip bodies; CORS for browsers; 200 only after the
events are committed.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from partitur.errors import InvalidInput, PayloadTooLarge, Unauthorized
from partitur.ingest.decode import decode, gunzip, to_rows

_OK = b'{"success":true}'
_CORS = {
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}


def _cors(request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def basic_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed HTTP Basic credentials") from None
    return decoded.split(":", 1)[0] or None


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding == "gzip":
        body = gunzip(body, limit)
    elif encoding not in ("", "identity"):
        raise InvalidInput(f"unsupported Content-Encoding '{encoding}' (use gzip or none)")
    return body


def make_handler(call: str | None) -> Any:
    async def handler(request: Request) -> Response:
        services = request.app.state.services
        limits = services.limits
        header_key = basic_key(request)
        source = None
        if header_key is not None:
            source = services.keys.resolve_write_key(header_key)
            if source is None:
                raise Unauthorized("unknown write key")
        body = await read_body(request, limits.max_request_bytes)
        decoded = decode(body, call, limits)
        if source is None:
            source = services.keys.resolve_write_key(decoded.write_key)
            if source is None:
                raise Unauthorized(
                    "unknown write key" if decoded.write_key else
                    "missing write key: send HTTP Basic base64(writeKey:) or 'writeKey' in the body"
                )
        services.rate_limiter.take(
            source.id, len(decoded.messages), source.rate_limit or services.settings.rate_limit
        )
        rows, rejected = to_rows(
            decoded,
            call,
            source_id=source.id,
            received_us=services.clock.now_us(),
            limits=limits,
            inspect=services.plan.inspector(source),
        )
        await services.committer.submit(rows, rejected)
        return Response(_OK, media_type="application/json", headers=_cors(request))

    return handler


async def preflight(request: Request) -> Response:
    return Response(status_code=204, headers={**_cors(request), **_CORS})


async def project_settings(request: Request) -> Response:
    """What analytics.js fetches from its CDN before it starts; point its cdnURL here."""
    services = request.app.state.services
    source = services.keys.resolve_write_key(request.path_params["write_key"])
    if source is None:
        raise Unauthorized("unknown write key")
    host = str(request.base_url).rstrip("/").split("://", 1)[-1]
    body = {
        "integrations": {
            "Segment.io": {
                "apiKey": request.path_params["write_key"],
                "apiHost": f"{host}/v1",
                "protocol": request.url.scheme,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
                "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]},
            }
        },
        "plan": {"track": {"__default": {"enabled": True, "integrations": {}}},
                 "identify": {"__default": {"enabled": True}},
                 "group": {"__default": {"enabled": True}}},
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
        "consentSettings": {"allCategories": []},
        "source": {"id": source.id, "name": source.name},
    }
    return JSONResponse(body, headers=_cors(request))


_CALLS = {
    "track": "track", "t": "track",
    "identify": "identify", "i": "identify",
    "page": "page", "p": "page",
    "screen": "screen", "s": "screen",
    "group": "group", "g": "group",
    "alias": "alias", "a": "alias",
}


def routes() -> list[Route]:
    out = [Route(f"/v1/{path}", make_handler(call), methods=["POST"]) for path, call in _CALLS.items()]
    for path in ("batch", "b", "import"):
        out.append(Route(f"/v1/{path}", make_handler(None), methods=["POST"]))
    out.append(Route("/v1/{path:path}", preflight, methods=["OPTIONS"]))
    out.append(Route("/v1/projects/{write_key}/settings", project_settings, methods=["GET"]))
    return out
