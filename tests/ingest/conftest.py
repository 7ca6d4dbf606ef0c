"""Helpers for the tracking API tests: auth headers, reading back what the log holds."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from partitur.services import Services
from tests.helpers import PartiturServer, servers


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@dataclass
class Stored:
    message_id: str
    type: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    ts: int
    received_at: int
    body: dict[str, Any]


def stored_events(services: Services) -> list[Stored]:
    """Everything in the event log, oldest first."""
    with services.db.read() as tx:
        rows = tx.execute(
            "SELECT message_id, type, event, user_id, anonymous_id, ts, received_at, body "
            "FROM events ORDER BY seq"
        )
    return [Stored(*row[:7], json.loads(row[7])) for row in rows]


@pytest.fixture
def auth(write_key: str) -> dict[str, str]:
    return basic(write_key)


@pytest.fixture
def stored(services: Services) -> Callable[[], list[Stored]]:
    return lambda: stored_events(services)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., PartiturServer]]:
    """Start real ``partitur serve`` processes; all are stopped at the end of the test."""
    with servers(tmp_path) as start:
        yield start
