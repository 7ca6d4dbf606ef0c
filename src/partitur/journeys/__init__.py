"""Journeys: documents of typed steps that follow each person in real time.

:mod:`.model`, :mod:`.parse` and :mod:`.validate` define and check a journey; :mod:`.engine`
is the pure :func:`advance`; the store, the batch hook, the timer runner, the API and the
command line carry it out. See docs/journeys.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from partitur.journeys.engine import Instance, Person, Step, advance
from partitur.journeys.model import STEP_TYPES, Journey
from partitur.journeys.parse import InvalidJourney, parse_journey
from partitur.journeys.runner import JourneyRunner
from partitur.journeys.service import JourneyService
from partitur.journeys.timers import fire_due, fire_schedules
from partitur.journeys.validate import check_journey

if TYPE_CHECKING:
    from partitur.services import Services

__all__ = [
    "STEP_TYPES",
    "Instance",
    "InvalidJourney",
    "Journey",
    "JourneyRunner",
    "JourneyService",
    "Person",
    "Step",
    "advance",
    "check_journey",
    "fire_due",
    "fire_schedules",
    "install",
    "parse_journey",
]


def install(services: Services) -> JourneyService:
    """Wire journeys into ``services``: the service in ``extra["journeys"]`` and the batch
    hook in ``batch_hooks``, after the segment hook."""
    service = JourneyService(services)
    services.extra["journeys"] = service
    services.batch_hooks.append(service.hook)
    return service
