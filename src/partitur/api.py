"""Helpers shared by the management API's route modules (``/api/v1``)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from partitur.errors import InvalidInput, Unauthorized

_ENC = msgspec.json.Encoder()


def services(request: Request) -> Any:
    return request.app.state.services


def require_admin(request: Request) -> None:
    """Bearer admin token, or raise :class:`Unauthorized`."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("an admin token is required: 'Authorization: Bearer <token>'")
    if not services(request).keys.is_admin(token.strip()):
        raise Unauthorized("unknown or revoked admin token")


def json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_ENC.encode(data), status_code=status, media_type="application/json",
                    headers=headers)


async def body_json(request: Request, *, limit: int = 5 * 1024 * 1024) -> Any:
    body = await request.body()
    if len(body) > limit:
        raise InvalidInput(f"request body is larger than {limit} bytes")
    if not body.strip():
        raise InvalidInput("request body is empty; expected JSON")
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"invalid JSON: {exc}") from None


def int_param(request: Request, name: str, default: int, *, lo: int = 0, hi: int = 10_000) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"query parameter '{name}' must be an integer") from None
    if not lo <= value <= hi:
        raise InvalidInput(f"query parameter '{name}' must be between {lo} and {hi}")
    return value
