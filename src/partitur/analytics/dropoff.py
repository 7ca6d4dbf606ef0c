"""Journey drop-off: for a journey, per step, how many people reached it, moved on, still
wait there, or left the designed path there (timed out, exited by a rule, left by reaching the
goal, or ended), and the median time spent in the step.

Read from the journey engine's own records (``journey_instances`` and the path log
``journey_path``, one row per thing that happened to a person, see partitur.journeys.store),
in the state store; the Parquet files are not involved. Each person in a journey (an
instance) counts once per step; what happened at their last visit of a step decides its
outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median
from typing import Any

import msgspec

from partitur.analytics.spec import bad, time_us
from partitur.errors import InvalidInput, NotFound
from partitur.store.db import Tx

_DEC = msgspec.json.Decoder()
ARRIVALS = frozenset({"send", "wait", "wait_for_event", "branch", "split", "update_profile",
                      "webhook", "emit_event", "exit"})
CLOSES = {"timeout": "timed_out", "event": "moved_on", "wake": "moved_on", "goal": "goal",
          "exit_rule": "exited", "halt": "exited", "complete": "completed"}
OUTCOMES = ("moved_on", "waiting", "timed_out", "exited", "goal", "completed")
STATUSES = ("reached", *OUTCOMES)
MAX_ROWS = 5_000_000


@dataclass
class StepTally:
    reached: set[str] = field(default_factory=set)
    outcome: dict[str, str] = field(default_factory=dict)  # instance -> outcome
    durations: list[int] = field(default_factory=list)  # µs spent, per closed visit
    people: dict[str, str] = field(default_factory=dict)  # instance -> profile


def journey_document(tx: Tx, key: str, version: Any = None) -> tuple[dict[str, Any], int | None]:
    row = tx.one("SELECT draft, live_version FROM journeys WHERE key = ?", (key,))
    if row is None:
        raise NotFound(f"no journey {key!r}")
    chosen = version if version is not None else row[1]
    if chosen is not None:
        found = tx.one("SELECT document FROM journey_versions WHERE journey = ? AND version = ?",
                       (key, chosen))
        if found is None:
            raise NotFound(f"journey {key!r} has no version {chosen}")
        return dict(_DEC.decode(found[0])), int(chosen)
    return dict(_DEC.decode(row[0])), None


def parse_request(doc: Any) -> tuple[str, int | None, int | None, int | None]:
    if not isinstance(doc, dict) or not isinstance(doc.get("journey"), str):
        raise bad("journey", "expected the journey's key")
    version = doc.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise bad("version", "expected a version number")
    lo = time_us(doc["from"], "from") if doc.get("from") is not None else None
    hi = time_us(doc["to"], "to") if doc.get("to") is not None else None
    return doc["journey"], version, lo, hi


def _instances_sql(version: int | None, lo: int | None, hi: int | None) -> tuple[str, list[Any]]:
    where, params = ["journey = ?"], []
    if version is not None:
        where.append("version = ?")
        params.append(version)
    if lo is not None:
        where.append("entered_at >= ?")
        params.append(lo)
    if hi is not None:
        where.append("entered_at < ?")
        params.append(hi)
    return " AND ".join(where), params


def tally(services: Any, key: str, version: int | None, lo: int | None, hi: int | None
          ) -> tuple[dict[str, Any], dict[str, StepTally], int]:
    """Walk every selected instance's path; per step, who reached it and how they left."""
    with services.db.read() as tx:
        document, _ = journey_document(tx, key, version)
        where, params = _instances_sql(version, lo, hi)
        active = {str(i): str(s) for i, s in tx.execute(
            f"SELECT id, step FROM journey_instances WHERE {where} AND status = 'active'",
            [key, *params])}
        count = tx.one(f"SELECT COUNT(*) FROM journey_path WHERE instance_id IN (SELECT id FROM "
                       f"journey_instances WHERE {where})", [key, *params])
        if count is not None and int(count[0]) > MAX_ROWS:
            raise InvalidInput(f"more than {MAX_ROWS} path records; narrow 'from'/'to'")
        rows = tx.execute(
            "SELECT instance_id, profile_id, step, kind, at FROM journey_path WHERE "
            f"instance_id IN (SELECT id FROM journey_instances WHERE {where}) "
            "ORDER BY instance_id, id", [key, *params])
        entered = tx.one(f"SELECT COUNT(*) FROM journey_instances WHERE {where}", [key, *params])
    steps: dict[str, StepTally] = {}
    current: dict[str, tuple[str, int] | None] = {}
    for instance, profile, step, kind, at in rows:
        open_visit = current.get(instance)
        if kind in ARRIVALS and step:
            if open_visit is not None:
                _close(steps, instance, open_visit, "moved_on", at)
            tallied = steps.setdefault(step, StepTally())
            tallied.reached.add(instance)
            tallied.people[instance] = profile
            tallied.outcome.pop(instance, None)
            current[instance] = (step, at)
            if kind == "exit":
                _close(steps, instance, (step, at), "completed", at)
                current[instance] = None
        elif kind in CLOSES and open_visit is not None:
            _close(steps, instance, open_visit, CLOSES[kind], at)
            current[instance] = None
    for instance, visit in current.items():
        if visit is None:
            continue
        step, _ = visit
        tallied = steps[step]
        if active.get(instance) == step:
            tallied.outcome[instance] = "waiting"
        else:  # ended without a record saying how (should not happen): ended there
            tallied.outcome[instance] = "completed"
    return document, steps, int(entered[0]) if entered else 0


def _close(steps: dict[str, StepTally], instance: str, visit: tuple[str, int], outcome: str,
           at: int) -> None:
    step, since = visit
    tallied = steps.setdefault(step, StepTally())
    tallied.outcome[instance] = outcome
    tallied.durations.append(max(0, int(at) - int(since)))


def dropoff(services: Any, doc: Any) -> dict[str, Any]:
    key, version, lo, hi = parse_request(doc)
    document, steps, entered = tally(services, key, version, lo, hi)
    declared = [(s.get("id"), s.get("type")) for s in document.get("steps", [])]
    order = [(sid, kind) for sid, kind in declared if sid] + [
        (sid, None) for sid in sorted(steps) if sid not in {d for d, _ in declared}]
    out = []
    for sid, kind in order:
        tallied = steps.get(sid, StepTally())
        counts = {o: 0 for o in OUTCOMES}
        for outcome in tallied.outcome.values():
            counts[outcome] += 1
        times = tallied.durations
        out.append({"id": sid, "type": kind, "reached": len(tallied.reached), **counts,
                    "dropped": counts["timed_out"] + counts["exited"] + counts["goal"],
                    "median_time_s": round(median(times) / 1e6, 3) if times else None})
    return {"journey": key, "version": version, "entered": entered, "steps": out,
            "statuses": list(STATUSES)}


def journey_people(services: Any, doc: Any) -> list[str]:
    """Profile ids at one step with one status (``waiting``, ``timed_out``, ``reached``...)."""
    key, version, lo, hi = parse_request(doc)
    step = doc.get("step")
    if not isinstance(step, str):
        raise bad("step", "expected a step id")
    status = doc.get("status", "waiting")
    if status not in STATUSES:
        raise bad("status", f"expected one of {', '.join(STATUSES)}")
    _, steps, _ = tally(services, key, version, lo, hi)
    tallied = steps.get(step, StepTally())
    if status == "reached":
        chosen = tallied.reached
    else:
        chosen = {i for i, o in tallied.outcome.items() if o == status}
    return sorted({tallied.people[i] for i in chosen})
