"""``POST /api/v1/clock/advance``: move a manual clock and fire what became due.

Exists only when the server runs with ``PARTITUR_CLOCK=manual`` (tests and demos): it moves
the clock by ``{"seconds": N}``, then fires segment memberships and journey waits that are now
due and scheduled journeys whose time came, and wakes the outbox dispatcher, before it answers.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from partitur import api
from partitur.clock import ManualClock, iso
from partitur.errors import InvalidInput

MAX_SECONDS = 400 * 86_400


def advance_clock(services: Any, seconds: float) -> dict[str, Any]:
    clock = services.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(seconds=seconds))
    now = clock.now_us()
    segments = 0
    if "segments" in services.extra:
        from partitur.segments import fire_due as fire_segments

        segments = fire_segments(services, now)
    from partitur.channels import notify
    from partitur.journeys.timers import fire_due, fire_schedules

    journeys = services.extra["journeys"]
    fired = fire_due(journeys, now)
    scheduled = fire_schedules(journeys, now)
    notify()
    return {"now": iso(now), "fired": fired, "scheduled_entries": scheduled,
            "segments_evaluated": segments}


async def advance(request: Request) -> Response:
    api.require_admin(request)
    body = await api.body_json(request)
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        raise InvalidInput("'seconds' must be a positive number",
                           details=[{"path": "seconds", "message": "a positive number"}])
    if seconds > MAX_SECONDS:
        raise InvalidInput(f"'seconds' may be at most {MAX_SECONDS} (400 days) at once")
    services = api.services(request)
    return api.json(await asyncio.to_thread(advance_clock, services, float(seconds)))


def routes(services: Any) -> list[BaseRoute]:
    """The route, when the clock is manual; nothing otherwise."""
    if not isinstance(services.clock, ManualClock) or services.settings.clock != "manual":
        return []
    return [Route("/api/v1/clock/advance", advance, methods=["POST"])]
