"""Test runs: one person through a journey's draft, waits shortened, messages to a test address.

``POST /api/v1/journeys/{key}/test`` with ``{"profile_id": ...}`` (a stored person: their
traits, consent, segments and events) or ``{"person": {"traits": {...}, "consent": {...},
"segments": [...]}}`` (synthetic), an optional trigger ``event``, ``events`` to feed while the
person waits (each ``{"event", "properties", "after": "10m"}``, ``after`` counted from the
previous one), and ``to``, the test address. Time is virtual: each wait ends the moment the
run reaches it, so a journey of weeks runs at once. Messages of a stored person go to the
outbox addressed to ``to`` only (as transactional, with keys of their own); webhooks, emitted
events and profile updates are listed, not carried out.
"""

from __future__ import annotations

from typing import Any

from partitur.channels import OutboundMessage, enqueue
from partitur.conditions import parse_duration
from partitur.errors import InvalidInput, NotFound
from partitur.journeys.engine import CallWebhook, Person, Send
from partitur.journeys.parse import parse_journey
from partitur.journeys.people import People, timezone_of
from partitur.journeys.sandbox import Sandbox, describe
from partitur.journeys.service import JourneyService
from partitur.journeys.validate import graph_problems, raise_first

MAX_EVENTS = 100
MAX_TIMERS = 1000
OPTIONS = {"profile_id", "person", "event", "events", "to", "version"}


def _synthetic(options: dict[str, Any], default_zone: str) -> Person:
    doc = options.get("person") or {}
    if not isinstance(doc, dict):
        raise InvalidInput("'person' is an object: {id, traits, consent, segments}")
    traits = doc.get("traits", {})
    consent = doc.get("consent", {})
    segments = doc.get("segments", [])
    if not isinstance(traits, dict) or not isinstance(consent, dict):
        raise InvalidInput("person.traits and person.consent are objects")
    if not isinstance(segments, list) or not all(isinstance(s, str) for s in segments):
        raise InvalidInput("person.segments is a list of segment keys")
    consent = {k: {"granted": v} if isinstance(v, bool) else v for k, v in consent.items()}
    return Person(str(doc.get("id", "test-person")), traits=traits, consent=consent,
                  segments=frozenset(segments), timezone=timezone_of(traits, default_zone))


def run_test(service: JourneyService, key: str, options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise InvalidInput(f"unknown option '{unknown[0]}' ({', '.join(sorted(OPTIONS))})")
    version = options.get("version", "draft")
    if version != "draft" and (isinstance(version, bool) or not isinstance(version, int)):
        raise InvalidInput("'version' is \"draft\" or a published version number")
    doc = service.version_document(key, None if version == "draft" else int(version))
    journey = parse_journey(doc, key=key)
    raise_first(graph_problems(journey))
    to = options.get("to") or service.settings.journeys_test_address
    if to is not None and not isinstance(to, str):
        raise InvalidInput("'to' is an email address or phone number")
    events = options.get("events", [])
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise InvalidInput(f"'events' is a list of at most {MAX_EVENTS} events")
    now = service.clock.now_us()
    trigger = options.get("event") or _default_trigger(journey)
    if not isinstance(trigger, dict):
        raise InvalidInput("'event' is an object such as {\"event\": ..., \"properties\": {}}")
    profile_id = options.get("profile_id")
    with service.db.transaction() as tx:
        if profile_id is not None:
            people = People(tx, {}, service.settings.default_timezone)
            people.load_states([str(profile_id)])
            if str(profile_id) not in people.states:
                raise NotFound(f"no profile {profile_id!r}")
            person = people.get(str(profile_id))
        else:
            person = _synthetic(options, service.settings.default_timezone)
        box = Sandbox(journey, lambda pid: person, version=0)
        box.keep_steps = True
        box.enter(person.profile_id, {"type": "track", **trigger}, now, "test run")
        at = now
        for i, item in enumerate(events):
            if not isinstance(item, dict) or not isinstance(item.get("event"), str):
                raise InvalidInput(f"events[{i}] needs an 'event' name")
            after = parse_duration(item.get("after", "1s"))
            if after is None:
                raise InvalidInput(f"events[{i}].after: a duration such as 10m")
            at += after
            message = {"type": "track", "event": item["event"],
                       "properties": item.get("properties") or {}}
            box.event(person.profile_id, item["event"], message, at)
        for _ in range(MAX_TIMERS):
            if not box.timers:
                break
            box.run_timers(box.timers[0][0])
        path: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        outbound: list[OutboundMessage] = []
        prefix = f"test:{now}:"
        for step in box.steps:
            path.extend(describe(step))
            for cmd in step.commands:
                if isinstance(cmd, Send):
                    queued = profile_id is not None and to is not None
                    messages.append({"step": cmd.step_id, "channel": cmd.channel,
                                     "key": prefix + cmd.key, "to": to, "queued": queued,
                                     "template": cmd.template})
                    if queued:
                        outbound.append(OutboundMessage(
                            key=prefix + cmd.key, profile_id=person.profile_id,
                            channel=cmd.channel, template=cmd.template,
                            category="transactional", variables=cmd.variables,
                            webhook=cmd.webhook, journey=key, step_id=cmd.step_id, to=to))
                elif isinstance(cmd, CallWebhook):
                    messages.append({"step": cmd.step_id, "channel": "webhook",
                                     "url": cmd.request["url"], "queued": False,
                                     "note": "webhooks are not called in test runs"})
        if outbound:
            enqueue(tx, outbound, now)
    final = box.instances[person.profile_id][-1] if box.instances.get(person.profile_id) \
        else None
    return {
        "journey": key, "version": version, "profile_id": person.profile_id,
        "entered": final is not None,
        "status": final.status if final else "not entered",
        "step": final.step if final else None,
        "exit_reason": final.exit_reason if final else None,
        "converted": bool(final and final.converted_at),
        "path": path, "messages": messages,
    }


def _default_trigger(journey: Any) -> dict[str, Any]:
    trig = journey.trigger
    if trig.kind == "event":
        return {"event": trig.event, "properties": {}}
    if trig.kind in ("page", "screen"):
        return {"type": trig.kind, "name": trig.event, "properties": {}}
    if trig.kind == "identify":
        return {"type": "identify", "traits": {}}
    return {"event": "Test Run", "properties": {"segment": trig.segment}}
