"""Partitur: open-source customer journey orchestration."""

from partitur.app import create_app
from partitur.clock import Clock, ManualClock, SystemClock
from partitur.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PartiturError,
    PayloadTooLarge,
    PlanViolation,
    RateLimited,
    StorageError,
    Unauthorized,
)
from partitur.settings import Settings, load_settings

__version__ = "0.1.0"

__all__ = [
    "Clock",
    "Conflict",
    "InvalidInput",
    "ManualClock",
    "NotFound",
    "PartiturError",
    "PayloadTooLarge",
    "PlanViolation",
    "RateLimited",
    "Settings",
    "StorageError",
    "SystemClock",
    "Unauthorized",
    "__version__",
    "create_app",
    "load_settings",
]
