"""What the dispatcher hands a transport, what it gets back, and the transport protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Envelope:
    """One rendered message, ready for its channel.

    ``key`` is the idempotency key; every transport passes it on (SMTP: ``Message-ID`` and
    ``X-Partitur-Key``; SMS and webhooks: an ``Idempotency-Key`` header; web: the row key), so
    that sending again after a crash is recognised by the receiver.
    """

    key: str
    channel: str
    profile_id: str
    category: str
    to: str | None = None  # email address or phone number (E.164); None for web and webhooks
    content: dict[str, Any] = field(default_factory=dict)  # the rendered parts
    unsubscribe_url: str | None = None
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class Receipt:
    """A provider accepted the message."""

    provider_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class DeliveryError(Exception):
    """Sending failed. ``retryable``: try again later (network trouble, 4xx of SMTP, 429 or 5xx
    of HTTP); otherwise the failure is final (a bounce, a refused request). ``retry_after``:
    seconds the receiver asked us to wait. ``bounce``: the address itself was refused."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        bounce: bool = False,
        code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.bounce = bounce
        self.code = code


class Transport(Protocol):
    async def send(self, message: Envelope) -> Receipt: ...

    async def aclose(self) -> None: ...
