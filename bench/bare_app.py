"""The framework's ceiling: Starlette + msgspec + uvicorn that decode a batch and discard it.

The same routes' shape (``POST /v1/batch``), the same message types, the same uvicorn options as
``partitur serve``; no authentication, no storage. Whatever the real server reaches is measured
against this. Two levels:

* ``POST /v1/batch``: msgspec decodes the body into the Spec's types, and that is all;
* ``POST /rows/v1/batch``: partitur's own ``decode`` and ``to_rows`` (limits, Spec rules, clock
  skew, the encoded row), then discarded: the request path without the event log.

    python bench/bare_app.py --port 8911
"""

from __future__ import annotations

import argparse

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from partitur.clock import SystemClock
from partitur.errors import PartiturError
from partitur.ingest.decode import Limits, decode
from partitur.ingest.message import Batch
from partitur.ingest.rows import to_rows

_OK = b'{"success":true}'
_DECODER = msgspec.json.Decoder(Batch)
_LIMITS = Limits()
_CLOCK = SystemClock()


async def batch(request: Request) -> Response:
    body = await request.body()
    try:
        decoded = _DECODER.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Response(str(exc).encode(), status_code=400)
    if not decoded.batch:
        return Response(b"empty batch", status_code=400)
    return Response(_OK, media_type="application/json")


async def rows(request: Request) -> Response:
    received_us = _CLOCK.now_us()
    body = await request.body()
    try:
        decoded = decode(body, None, _LIMITS)
        to_rows(decoded, None, source_id="bare", received_us=received_us, limits=_LIMITS)
    except PartiturError as exc:
        return Response(exc.message.encode(), status_code=400)
    return Response(_OK, media_type="application/json")


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok","backlog":0}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/v1/batch", batch, methods=["POST"]),
        Route("/rows/v1/batch", rows, methods=["POST"]),
        Route("/health", health),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8911)
    args = parser.parse_args()
    print(f"bare app listening on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        loop="auto",
        http="auto",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
