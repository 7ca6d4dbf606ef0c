"""The Segment HTTP Tracking API: ``/v1/track`` and friends, ``/v1/batch``, ``/v1/import``.

Segment's contract: the write key from HTTP Basic (``base64(writeKey:)``) or the body's
``writeKey``; JSON under any content type (analytics.js sends ``text/plain`` to avoid a CORS
preflight); gzip bodies; CORS for browsers; ``200 {"success": true}`` only after the events are
committed. The order of the checks is fixed, so that a client learns the most useful thing first:

1. a write key in the ``Authorization`` header that is unknown: 401;
2. the body: larger than allowed 413, bad gzip 400, not JSON 400;
3. the write key in the body (when there is no header): missing or unknown 401; a header and a
   body that name different keys 401;
4. the source's rate limit: 429 with ``Retry-After``;
5. the events against the Spec: 400 naming the event's index and field; too big 413.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from partitur import api
from partitur.errors import InvalidInput, PayloadTooLarge, RateLimited, Unauthorized
from partitur.ingest.decode import Decoded, decode, gunzip, peek_write_key, to_rows

_OK = b'{"success":true}'
_MISSING_KEY = "missing write key: send HTTP Basic base64(writeKey:) or 'writeKey' in the body"


def _cors(request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    if not origin:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": "Retry-After",
        "Vary": "Origin",
    }


def basic_key(request: Request) -> str | None:
    """The write key from ``Authorization: Basic base64(writeKey:)``, if that header is sent."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed HTTP Basic credentials") from None
    return decoded.split(":", 1)[0] or None


async def read_body(request: Request, limit: int, timeout: float = 60.0) -> bytes:
    """The request body, decompressed, never more than ``limit`` bytes either way, and in at
    most ``timeout`` seconds (a client that promises more than it sends is not waited for)."""
    length = request.headers.get("content-length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise InvalidInput(f"unsupported Content-Encoding '{encoding}' (send gzip or none)")
    chunks = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"request body is larger than {limit} bytes")
                chunks.append(chunk)
    except ClientDisconnect:
        raise InvalidInput("the client hung up before sending the whole body") from None
    except TimeoutError:
        raise InvalidInput(f"the body did not arrive within {timeout:g} s") from None
    body = b"".join(chunks)
    if encoding in ("gzip", "x-gzip"):
        body = gunzip(body, limit)
    return body


def _decode_as(services: Any, body: bytes, call: str | None, source: Any) -> tuple[Decoded, Any]:
    """Decode the body and settle which source sends it (steps 2 and 3 above)."""
    try:
        decoded = decode(body, call, services.limits)
    except InvalidInput:
        if source is None:
            readable, key = peek_write_key(body)
            if readable:  # a JSON object: authentication comes before validation
                _resolve(services, key)
        raise
    if source is None:
        source = _resolve(services, decoded.write_key)
    return decoded, source


def _resolve(services: Any, key: str | None) -> Any:
    if not key:
        raise Unauthorized(_MISSING_KEY)
    source = services.keys.resolve_write_key(key)
    if source is None:
        raise Unauthorized("unknown write key")
    return source


def make_handler(call: str | None) -> Any:
    async def handler(request: Request) -> Response:
        services = request.app.state.services
        received_us = services.clock.now_us()
        header_key = basic_key(request)
        source = None if header_key is None else _resolve(services, header_key)
        limits = services.limits
        body = await read_body(request, limits.max_request_bytes, limits.body_timeout)
        decoded, source = _decode_as(services, body, call, source)
        if header_key is not None and decoded.write_key and decoded.write_key != header_key:
            raise Unauthorized("the Authorization header and the body's writeKey differ")
        try:
            services.rate_limiter.take(
                source.id, len(decoded.messages),
                services.settings.rate_limit if source.rate_limit is None else source.rate_limit,
            )
        except RateLimited as exc:
            return _rate_limited(request, exc)
        rows, rejected = to_rows(
            decoded,
            call,
            source_id=source.id,
            received_us=received_us,
            limits=services.limits,
            inspect=services.plan.inspector(source),
        )
        await services.committer.submit(rows, rejected)
        return Response(_OK, media_type="application/json", headers=_cors(request))

    return handler


def _rate_limited(request: Request, exc: RateLimited) -> Response:
    """The 429, with a ``Retry-After`` that browsers may read (hence answered here)."""
    from partitur.app import error_body

    headers = {**_cors(request), "Retry-After": str(max(1, int(exc.retry_after + 0.999)))}
    return api.json(error_body(exc.code, exc.message), 429, headers)


async def preflight(request: Request) -> Response:
    asked = request.headers.get("access-control-request-headers")
    headers = {
        **_cors(request),
        "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
        "Access-Control-Allow-Headers": asked
        or "Content-Type, Authorization, Content-Encoding, X-Retry-Count",
        "Access-Control-Max-Age": "86400",
    }
    if asked:
        headers["Vary"] = "Origin, Access-Control-Request-Headers"
    return Response(status_code=204, headers=headers)


async def project_settings(request: Request) -> Response:
    """What analytics.js fetches from its CDN before it starts; point its ``cdnURL`` here."""
    services = request.app.state.services
    write_key = request.path_params["write_key"]
    source = _resolve(services, write_key)
    host = request.url.netloc
    body = {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": f"{host}/v1",
                "protocol": request.url.scheme,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
                "versionSettings": {"version": "4.4.7", "componentTypes": ["browser"]},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
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
    out = [
        Route(f"/v1/{path}", make_handler(call), methods=["POST"]) for path, call in _CALLS.items()
    ]
    batch = make_handler(None)
    out.extend(Route(f"/v1/{path}", batch, methods=["POST"]) for path in ("batch", "b", "import"))
    out.extend(Route(route.path, preflight, methods=["OPTIONS"]) for route in list(out))
    out.append(Route("/v1/projects/{write_key}/settings", project_settings, methods=["GET"]))
    return out
