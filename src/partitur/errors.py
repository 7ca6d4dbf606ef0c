"""Partitur's errors, one tree.

::

    PartiturError
    ├── InvalidInput            the caller sent something we cannot accept
    │   ├── PayloadTooLarge     a size or count limit was exceeded
    │   └── PlanViolation       an event broke the tracking plan (and the source blocks it)
    ├── NotFound                the thing asked for does not exist
    ├── Conflict                the request clashes with the current state
    ├── Unauthorized            missing or unknown credentials
    ├── RateLimited             a source sent more than its limit; carries ``retry_after``
    └── StorageError            the database could not be reached or migrated

Domain errors carry meaning, not HTTP status codes: ``partitur.app`` maps them to one JSON
error shape, and the CLI maps them to a message and an exit code.
"""

from __future__ import annotations

from typing import Any


class PartiturError(Exception):
    """Base of every error Partitur raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class InvalidInput(PartiturError):
    code = "invalid_input"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class PlanViolation(InvalidInput):
    code = "plan_violation"


class NotFound(PartiturError):
    code = "not_found"


class Conflict(PartiturError):
    code = "conflict"


class Unauthorized(PartiturError):
    code = "unauthorized"


class RateLimited(PartiturError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageError(PartiturError):
    code = "storage_error"
