"""Webhooks: an HTTP request to a company system (CRM, billing, support), JSON body, signed.

Every request carries::

    Content-Type: application/json
    Idempotency-Key: <delivery key>          the same on every retry
    X-Partitur-Key: <delivery key>
    X-Partitur-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">

The signature uses ``PARTITUR_WEBHOOK_SECRET``; a receiver recomputes it over the raw body and
rejects a timestamp older than a few minutes (see :func:`verify_signature`, and
docs/channels.md for a receiver in a few lines). 2xx is success; 408, 425, 429 and 5xx, a
timeout or a refused connection are retried (honouring ``Retry-After``); any other answer is
a final failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable

import httpx
import msgspec

from partitur.channels.base import DeliveryError, Envelope, Receipt
from partitur.channels.http import make_client, network_error, response_error

SIGNATURE_HEADER = "X-Partitur-Signature"
_ENC = msgspec.json.Encoder()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes, now_s: float, tolerance_s: float = 300
) -> bool:
    """What a receiver does: recompute the HMAC and check the timestamp's age."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now_s - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


class WebhookTransport:
    def __init__(
        self,
        secret: str | None,
        *,
        timeout: float,
        now_s: Callable[[], float],
        concurrency: int = 16,
    ) -> None:
        self.secret = secret
        self.now_s = now_s
        self.client = make_client(timeout, max(1, concurrency))
        self._slots = asyncio.Semaphore(max(1, concurrency))

    async def send(self, message: Envelope) -> Receipt:
        content = message.content
        url = str(content.get("url", "")).strip()
        if not url.startswith(("http://", "https://")):
            raise DeliveryError(f"webhook url '{url[:200]}' is not http(s)", retryable=False)
        method = str(content.get("method") or "POST").upper()
        body = _ENC.encode(content.get("body", {}))
        headers = {str(k): str(v) for k, v in (content.get("headers") or {}).items()}
        headers.update(
            {
                "Content-Type": "application/json",
                "Idempotency-Key": message.key,
                "X-Partitur-Key": message.key,
            }
        )
        now = self.now_s()
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, int(now), body)
        try:
            async with self._slots:
                response = await self.client.request(method, url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise network_error(exc, "webhook") from None
        except ValueError as exc:  # e.g. an unusable header value produced by a template
            raise DeliveryError(f"webhook request is invalid: {exc}", retryable=False) from None
        error = response_error(response, now, "webhook")
        if error is not None:
            raise error
        return Receipt(
            provider_id=response.headers.get("x-request-id"),
            detail={"http_status": response.status_code},
        )

    async def aclose(self) -> None:
        await self.client.aclose()
