"""Dry runs: stored events of a time range replayed through a journey's draft, sending nothing.

``POST /api/v1/journeys/{key}/simulate`` with ``{"from": "2026-03-01", "to": "2026-03-08"}``
(received time, ISO dates or date-times) and an optional ``limit`` on events. Each event goes
to the people's simulated instances in time order, waits fire on virtual time between events
and up to ``to``, and the answer counts who would enter, reach each step (and split arm),
receive messages and convert. People are seen as they are now (traits, consent, segments,
counted events), and nobody is taken to be in the journey at ``from``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from partitur.conditions import parse_instant
from partitur.errors import InvalidInput
from partitur.journeys.parse import parse_journey
from partitur.journeys.people import People
from partitur.journeys.sandbox import Sandbox
from partitur.journeys.service import JourneyService
from partitur.journeys.validate import graph_problems, raise_first

MAX_EVENTS = 1_000_000
DEFAULT_EVENTS = 200_000
PAGE = 5000
_DEC = msgspec.json.Decoder()


def run_simulation(service: JourneyService, key: str, options: dict[str, Any]
                   ) -> dict[str, Any]:
    unknown = sorted(set(options) - {"from", "to", "limit", "version"})
    if unknown:
        raise InvalidInput(f"unknown option '{unknown[0]}' (from, to, limit, version)")
    start = parse_instant(options.get("from"))
    end = parse_instant(options.get("to"))
    if start is None or end is None or end <= start:
        raise InvalidInput("'from' and 'to' are ISO dates or date-times, 'from' first")
    limit = options.get("limit", DEFAULT_EVENTS)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_EVENTS:
        raise InvalidInput(f"'limit' is a number of events from 1 to {MAX_EVENTS}")
    version = options.get("version", "draft")
    if version != "draft" and (isinstance(version, bool) or not isinstance(version, int)):
        raise InvalidInput("'version' is \"draft\" or a published version number")
    journey = parse_journey(
        service.version_document(key, None if version == "draft" else int(version)), key=key)
    raise_first(graph_problems(journey))
    replayed = 0
    truncated = False
    with service.db.read() as tx:
        people = People(tx, {}, service.settings.default_timezone)
        box = Sandbox(journey, people.get)
        entering = journey.trigger.call[0] if journey.trigger.call else None  # page, ...
        cursor = (start - 1, 0)
        while replayed < limit:
            rows = tx.execute(
                "SELECT pe.profile_id, e.received_at, e.seq, e.event, e.body, e.type "
                "FROM events e JOIN profile_events pe ON pe.seq = e.seq "
                "WHERE e.received_at >= ? AND e.received_at < ? "
                "AND (e.received_at > ? OR (e.received_at = ? AND e.seq > ?)) "
                "ORDER BY e.received_at, e.seq LIMIT ?",
                (start, end, cursor[0], cursor[0], cursor[1], min(PAGE, limit - replayed)),
            )
            if not rows:
                break
            pids = {r[0] for r in rows}
            people.load_states(pids)
            people.preload_segments(pids)
            for pid, at, seq, name, body, kind in rows:
                cursor = (int(at), int(seq))
                replayed += 1
                if (kind != "track" or not name) and kind != entering:
                    continue
                try:
                    message = _DEC.decode(body)
                except msgspec.DecodeError:
                    continue
                box.event(pid, name if kind == "track" else None, message, int(at))
            if box.budget <= 0:
                truncated = True
                break
        else:
            truncated = True
        box.run_timers(end)
    result = box.summary()
    result.update({"journey": key, "version": version, "from": options["from"],
                   "to": options["to"], "events_replayed": replayed,
                   "truncated": truncated, "sent": 0})
    return result
