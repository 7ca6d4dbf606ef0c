"""What SMS and webhook transports share: one HTTP client, and how a response or a network
error becomes a receipt or a :class:`DeliveryError` (retryable or not, ``Retry-After``)."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from partitur.channels.base import DeliveryError

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "partitur"


def retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now_s)


def response_error(response: httpx.Response, now_s: float, what: str) -> DeliveryError | None:
    """None for a 2xx; otherwise the error, retryable for 408/425/429/5xx."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    text = " ".join(response.text[:200].split())
    retryable = status in RETRYABLE_STATUS or status >= 500
    return DeliveryError(
        f"{what} answered {status}" + (f": {text}" if text else ""),
        retryable=retryable,
        retry_after=retry_after(response.headers.get("retry-after"), now_s) if retryable else None,
        code=status,
    )


def network_error(exc: httpx.HTTPError, what: str) -> DeliveryError:
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "could not be reached"
    return DeliveryError(f"{what} {kind}: {type(exc).__name__}: {exc}", retryable=True)


def make_client(timeout: float, connections: int, **kwargs: Any) -> httpx.AsyncClient:
    """An HTTP client with a pool as large as the requests it may have in flight (a larger
    pool costs httpcore time on every request: it scans each pooled connection)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        **kwargs,
    )
