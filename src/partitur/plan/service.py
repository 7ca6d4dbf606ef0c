"""Tracking plan storage and enforcement on the ingest path.

Plans are versioned in ``tracking_plans``; the enforcer compiles one validator per event once
per version and checks the current version at most once a second, so a plan applied by another
process takes effect within a second. Per source, ``plan_policy`` says what happens to
unplanned events, unplanned properties and schema violations (see ``plan/policy.py``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from partitur.auth.keys import Source
from partitur.clock import Clock, iso
from partitur.plan.model import TrackingPlan, load_yaml, parse_plan
from partitur.plan.policy import DEFAULT_POLICY
from partitur.store.db import Database, Tx

Inspector = Callable[[int, Any], tuple[bool, Any, bool]]


@dataclass(frozen=True)
class Applied:
    version: int
    changed: bool


@dataclass
class _Compiled:
    version: int
    events: dict[str, tuple[Any, set[str] | None]]  # name -> (validator, declared props)
    traits: tuple[Any, set[str] | None] | None


def _compile(schema: dict[str, Any]) -> tuple[Any, set[str] | None]:
    props = schema.get("properties")
    declared = set(props) if isinstance(props, dict) else None
    return jsonschema_rs.validator_for(schema), declared


class PlanService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._compiled: _Compiled | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    # -- storage ---------------------------------------------------------------------------
    def current(self) -> tuple[int, TrackingPlan] | None:
        with self.db.read() as tx:
            row = tx.one("SELECT version, doc FROM tracking_plans ORDER BY version DESC LIMIT 1")
        if row is None:
            return None
        return int(row[0]), TrackingPlan.model_validate_json(row[1])

    def apply(self, plan: TrackingPlan) -> Applied:
        doc = plan.model_dump_json()
        with self.db.transaction() as tx:
            row = tx.one("SELECT version, doc FROM tracking_plans ORDER BY version DESC LIMIT 1")
            if row is not None and row[1] == doc:
                return Applied(int(row[0]), False)
            version = (int(row[0]) if row else 0) + 1
            tx.execute(
                "INSERT INTO tracking_plans (version, doc, created_at) VALUES (?, ?, ?)",
                (version, doc, self.clock.now_us()),
            )
        self._checked = 0.0
        return Applied(version, True)

    def apply_yaml(self, text: str) -> Applied:
        return self.apply(load_yaml(text))

    def apply_data(self, data: Any) -> Applied:
        return self.apply(parse_plan(data))

    # -- enforcement -------------------------------------------------------------------------
    def _plan(self) -> _Compiled | None:
        now = time.monotonic()
        if now - self._checked < 1.0:
            return self._compiled
        with self._lock:
            with self.db.read() as tx:
                row = tx.one("SELECT MAX(version) FROM tracking_plans")
            version = int(row[0]) if row and row[0] is not None else 0
            if version == 0:
                self._compiled = None
            elif self._compiled is None or self._compiled.version != version:
                current = self.current()
                assert current is not None
                _, plan = current
                self._compiled = _Compiled(
                    version,
                    {e.name: _compile(e.properties) for e in plan.events},
                    _compile(plan.identify.traits) if plan.identify else None,
                )
            self._checked = now
        return self._compiled

    def inspector(self, source: Source) -> Inspector | None:
        """A per-request check for ``source``'s events, or None when there is no plan."""
        plan = self._plan()
        if plan is None:
            return None
        policy = {**DEFAULT_POLICY, **source.plan_policy}

        def inspect(index: int, msg: Any) -> tuple[bool, Any, bool]:
            return _inspect(plan, policy, source, msg)

        return inspect

    def write_rejected(self, tx: Tx, rows: Sequence[tuple[Any, ...]]) -> None:
        tx.executemany(
            "INSERT INTO rejected_events (received_at, source_id, type, event, message_id, "
            "action, violations, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def violations_summary(self, since_us: int | None, source: str | None) -> list[dict[str, Any]]:
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if since_us is not None:
            where.append("received_at >= ?")
            params.append(since_us)
        if source:
            where.append("source_id = ?")
            params.append(source)
        with self.db.read() as tx:
            rows = tx.execute(
                f"SELECT event, action, violations, received_at FROM rejected_events "
                f"WHERE {' AND '.join(where)} ORDER BY id",
                params,
            )
        summary: dict[tuple[str, str], dict[str, Any]] = {}
        for event, action, violations, received in rows:
            for v in json.loads(violations):
                key = (event or "", v["rule"])
                entry = summary.setdefault(key, {"event": event, "rule": v["rule"], "count": 0,
                                                 "blocked": 0, "last_seen": 0,
                                                 "sample": v["message"]})
                entry["count"] += 1
                entry["blocked"] += action == "blocked"
                entry["last_seen"] = max(entry["last_seen"], received)
        for entry in summary.values():
            entry["last_seen"] = iso(entry["last_seen"])
        return sorted(summary.values(), key=lambda e: (-e["count"], e["event"] or "", e["rule"]))


def _inspect(
    plan: _Compiled, policy: dict[str, str], source: Source, msg: Any
) -> tuple[bool, Any, bool]:
    if msg.type == "identify":
        if plan.traits is None:
            return True, None, False
        compiled, data, field = plan.traits, msg.traits or {}, "traits"
    elif msg.type == "track":
        compiled_or_none = plan.events.get(msg.event)
        if compiled_or_none is None:
            action = policy["unplanned_events"]
            if action == "allow":
                return True, None, False
            unplanned = [{"rule": "unplanned_event", "path": "event",
                          "message": f"event '{msg.event}' is not in the tracking plan"}]
            return _outcome(msg, source, unplanned, action)
        compiled, data, field = compiled_or_none, msg.properties or {}, "properties"
    else:
        return True, None, False
    validator, declared = compiled
    found: list[dict[str, Any]] = []
    changed = False
    extra = sorted(set(data) - declared) if declared is not None else []
    extra_action = policy["unplanned_properties"]
    if extra and extra_action != "allow":
        if extra_action == "omit":
            for name in extra:
                data.pop(name)
            setattr(msg, field, data)
            changed = True
        found += [{"rule": "unplanned_property", "path": f"{field}.{name}",
                   "message": f"'{name}' is not planned for this event"} for name in extra]
    schema_errors = [
        {"rule": "schema", "path": ".".join([field, *map(str, e.instance_path)]),
         "message": e.message}
        for e in validator.iter_errors(data)
    ]
    if schema_errors and policy["violations"] != "allow":
        found += schema_errors
    if not found:
        return True, None, changed
    actions = []
    if any(f["rule"] == "schema" for f in found):
        actions.append(policy["violations"])
    if any(f["rule"] == "unplanned_property" for f in found):
        actions.append("block" if extra_action == "block" else "flag")
    action = "block" if "block" in actions else "flag"
    keep, record, stamped = _outcome(msg, source, found, action)
    return keep, record, changed or stamped


def _outcome(msg: Any, source: Source, found: list[dict[str, Any]], action: str
             ) -> tuple[bool, Any, bool]:
    import msgspec

    blocked = action == "block"
    if not blocked:
        meta = dict(msg.partitur or {})
        meta["violations"] = found
        msg.partitur = meta
    body = msgspec.json.encode(msg).decode()
    received = msg.received_at
    from partitur.clock import to_us

    record = (to_us(received) if received else 0, source.id, msg.type, msg.event or msg.name,
              msg.message_id, "blocked" if blocked else "flagged", json.dumps(found), body)
    return not blocked, record, not blocked
