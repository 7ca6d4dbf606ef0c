"""Journey rows in the store: instances, the path log, counters, and what steps ask for.

:func:`apply` writes the outcome of many :func:`~partitur.journeys.engine.advance` calls in the
caller's transaction: the instance rows, the path entries and the counters (one statement
per table on PostgreSQL — arrays through ``unnest``, pipelined —, multi-row inserts on
SQLite; an instance advanced twice in one transaction is written once), the outbox messages
(:func:`partitur.channels.enqueue`, idempotent on their keys) and the events that
``emit_event`` and ``update_profile`` steps write to the event log. Whoever calls it (the
batch hook, the timer runner) has computed every step first, so one transaction holds the
decisions and their effects.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from partitur.channels import OutboundMessage, enqueue
from partitur.clock import iso
from partitur.journeys.engine import (
    CallWebhook,
    Convert,
    Emit,
    Exit,
    Instance,
    Record,
    Send,
    Step,
    UpdateProfile,
)
from partitur.journeys.model import JOURNEY_SOURCE
from partitur.store.db import BulkInsert, Tx, chunks, pipelined

_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder()

COLUMNS = (
    "id, journey, version, profile_id, entry, status, step, wake_at, waiting_for, "
    "state_version, entered_at, updated_at, goal_until, converted_at, ended_at, exit_reason, "
    "context"
)
_INSTANCES = BulkInsert(
    "journey_instances",
    [("id", "text"), ("journey", "text"), ("version", "bigint"), ("profile_id", "text"),
     ("entry", "bigint"), ("status", "text"), ("step", "text"), ("wake_at", "bigint"),
     ("waiting_for", "text"), ("state_version", "bigint"), ("entered_at", "bigint"),
     ("updated_at", "bigint"), ("goal_until", "bigint"), ("converted_at", "bigint"),
     ("ended_at", "bigint"), ("exit_reason", "text"), ("context", "text")],
    "ON CONFLICT (id) DO UPDATE SET "
    "version = excluded.version, status = excluded.status, step = excluded.step, "
    "wake_at = excluded.wake_at, waiting_for = excluded.waiting_for, "
    "state_version = excluded.state_version, updated_at = excluded.updated_at, "
    "goal_until = excluded.goal_until, converted_at = excluded.converted_at, "
    "ended_at = excluded.ended_at, exit_reason = excluded.exit_reason, context = excluded.context",
)
_PATH = BulkInsert(
    "journey_path",
    [("instance_id", "text"), ("journey", "text"), ("version", "bigint"),
     ("profile_id", "text"), ("step", "text"), ("kind", "text"), ("at", "bigint"),
     ("reason", "text"), ("message_key", "text")],
    ordered=True,  # ids in the order of the path
)
_STATS = BulkInsert(
    "journey_stats",
    [("journey", "text"), ("step", "text"), ("metric", "text"), ("value", "bigint")],
    "ON CONFLICT (journey, step, metric) DO UPDATE SET value = journey_stats.value + "
    "excluded.value",
)
STEP_KINDS = frozenset({
    "send", "wait", "wait_for_event", "branch", "split", "update_profile", "webhook",
    "emit_event", "exit",
})
SOURCE_NAME = JOURNEY_SOURCE


def from_row(row: Sequence[Any]) -> Instance:
    return Instance(
        id=row[0], journey=row[1], version=int(row[2]), profile_id=row[3], entry=int(row[4]),
        status=row[5], step=row[6], wake_at=None if row[7] is None else int(row[7]),
        waiting_for=row[8], state_version=int(row[9]), entered_at=int(row[10]),
        goal_until=None if row[12] is None else int(row[12]),
        converted_at=None if row[13] is None else int(row[13]),
        ended_at=None if row[14] is None else int(row[14]), exit_reason=row[15],
        context=_DEC.decode(row[16]) if row[16] else {},
    )


def to_row(inst: Instance, now: int) -> tuple[Any, ...]:
    return (
        inst.id, inst.journey, inst.version, inst.profile_id, inst.entry, inst.status,
        inst.step, inst.wake_at, inst.waiting_for, inst.state_version, inst.entered_at, now,
        inst.goal_until, inst.converted_at, inst.ended_at, inst.exit_reason,
        _ENC.encode(inst.context).decode(),
    )


def load_for_profiles(tx: Tx, profile_ids: Iterable[str], now: int, *,
                      lock: bool = False) -> dict[str, list[Instance]]:
    """Active instances, and ended ones whose goal window is still open, per person."""
    out: dict[str, list[Instance]] = {}
    suffix = " ORDER BY id FOR UPDATE" if lock else ""
    for chunk in chunks(sorted(set(profile_ids)), 400):
        marks = ",".join("?" * len(chunk))
        rows = tx.execute(
            f"SELECT {COLUMNS} FROM journey_instances WHERE profile_id IN ({marks}) "
            f"AND (status = 'active' OR goal_until >= ?){suffix}",
            [*chunk, now],
        )
        for row in rows:
            inst = from_row(row)
            out.setdefault(inst.profile_id, []).append(inst)
    return out


@dataclass
class EntryInfo:
    last_entry: int = 0
    last_entered_at: int | None = None
    active: bool = False


def entry_info(tx: Tx, journeys: Sequence[str], profile_ids: Iterable[str]
               ) -> dict[tuple[str, str], EntryInfo]:
    """Per (journey, person): the last entry and whether one is active (re-entry rules)."""
    out: dict[tuple[str, str], EntryInfo] = {}
    if not journeys:
        return out
    jmarks = ",".join("?" * len(journeys))
    for chunk in chunks(sorted(set(profile_ids)), 400):
        marks = ",".join("?" * len(chunk))
        rows = tx.execute(
            "SELECT journey, profile_id, MAX(entry), MAX(entered_at), "
            "SUM(CASE WHEN status = 'active' THEN 1 ELSE 0 END) FROM journey_instances "
            f"WHERE profile_id IN ({marks}) AND journey IN ({jmarks}) "
            "GROUP BY journey, profile_id",
            [*chunk, *journeys],
        )
        for journey, pid, last, at, active in rows:
            out[(journey, pid)] = EntryInfo(int(last), int(at), bool(active))
    return out


@dataclass
class Outcome:
    """What one transaction's steps add up to (filled by :func:`apply`)."""

    transitions: int = 0
    messages: int = 0
    events: int = 0
    wakes: list[tuple[int, str, int]] = field(default_factory=list)  # (wake_at, id, version)


@dataclass
class Effects:
    """How to write the side effects that are not rows of our own."""

    append_events: Callable[[Tx, list[tuple[Any, ...]]], int] | None = None
    source_id: Callable[[Tx], str] | None = None
    partitions: int = 256
    test_to: str | None = None  # test runs: every message to this address
    key_prefix: str = ""  # test runs: keys of their own
    send: bool = True  # simulations send nothing


def apply(tx: Tx, steps: Sequence[tuple[Step, Instance | None]], now: int,
          effects: Effects) -> Outcome:
    """Write ``steps`` (each with the instance as it was before, None for a new one)."""
    outcome = Outcome()
    rows: dict[str, tuple[Any, ...]] = {}  # by id: an instance moved twice is written once
    paths: list[tuple[Any, ...]] = []
    stats: Counter[tuple[str, str, str]] = Counter()
    messages: list[OutboundMessage] = []
    events: list[tuple[str, str, str, dict[str, Any]]] = []  # (kind, key, profile, body)
    for step, _before in steps:
        inst = step.instance
        if not step.commands:
            continue
        rows[inst.id] = to_row(inst, now)
        if inst.wake_at is not None and inst.status == "active":
            outcome.wakes.append((inst.wake_at, inst.id, inst.state_version))
        arms = dict(inst.context.get("arms") or {})
        for cmd in step.commands:
            if isinstance(cmd, Record):
                paths.append((inst.id, inst.journey, inst.version, inst.profile_id, cmd.step_id,
                              cmd.kind, cmd.at, _ENC.encode(cmd.reason).decode(),
                              effects.key_prefix + cmd.message_key if cmd.message_key
                              else None))
                if cmd.kind == "enter":
                    stats[(inst.journey, "", "entered")] += 1
                elif cmd.kind in STEP_KINDS and cmd.step_id:
                    stats[(inst.journey, cmd.step_id, "entered")] += 1
                    outcome.transitions += 1
                    if cmd.kind == "split":
                        stats[(inst.journey, cmd.step_id, f"arm:{cmd.reason['arm']}")] += 1
            elif isinstance(cmd, Exit):
                stats[(inst.journey, inst.step or "", "exited")] += 1
                stats[(inst.journey, "", "completed" if inst.status == "completed"
                       else "exited")] += 1
            elif isinstance(cmd, Convert):
                stats[(inst.journey, "", "converted")] += 1
                if cmd.step_id:
                    stats[(inst.journey, cmd.step_id, "converted")] += 1
                for split, arm in arms.items():
                    stats[(inst.journey, split, f"converted:{arm}")] += 1
            elif isinstance(cmd, Send | CallWebhook) and effects.send:
                messages.append(_message(inst, cmd, effects))
            elif isinstance(cmd, Emit | UpdateProfile) and effects.send:
                events.append(_event(inst, cmd, effects))
    with pipelined(tx):  # PostgreSQL: one statement each, sent without waiting
        _INSTANCES.run(tx, list(rows.values()))
        _PATH.run(tx, paths)
        if stats and not effects.key_prefix:
            _STATS.run(tx, [(*k, v) for k, v in sorted(stats.items())])
    if messages:
        outcome.messages = enqueue(tx, messages, now)
    if events and effects.append_events is not None:
        outcome.events = effects.append_events(tx, _event_rows(tx, events, now, effects))
    return outcome


def _message(inst: Instance, cmd: Send | CallWebhook, effects: Effects) -> OutboundMessage:
    common: dict[str, Any] = dict(
        key=effects.key_prefix + cmd.key, profile_id=inst.profile_id, variables=cmd.variables,
        journey=inst.journey, version=inst.version, instance_id=inst.id, step_id=cmd.step_id,
        to=effects.test_to,
    )
    if isinstance(cmd, CallWebhook):
        return OutboundMessage(channel="webhook", template=None, category="transactional",
                               webhook=cmd.request, **common)
    return OutboundMessage(channel=cmd.channel, template=cmd.template, category=cmd.category,
                           webhook=cmd.webhook, **common)


def _event(inst: Instance, cmd: Emit | UpdateProfile, effects: Effects
           ) -> tuple[str, str, str, dict[str, Any]]:
    key = effects.key_prefix + cmd.key
    ref = {"journey": inst.journey, "journey_version": inst.version, "step": cmd.step_id}
    if isinstance(cmd, Emit):
        return ("track", key, inst.profile_id,
                {"event": cmd.event, "properties": {**cmd.properties, **ref}})
    traits = {**cmd.set, **dict.fromkeys(cmd.unset)}
    return ("identify", key, inst.profile_id, {"traits": traits, "context": {"journey": ref}})


def _event_rows(tx: Tx, events: list[tuple[str, str, str, dict[str, Any]]], now: int,
                effects: Effects) -> list[tuple[Any, ...]]:
    from partitur.channels.events import person_ids

    assert effects.source_id is not None
    source = effects.source_id(tx)
    stamp = iso(now)
    out = []
    ids: dict[str, tuple[str | None, str | None]] = {}
    for kind, key, profile_id, body in events:
        if profile_id not in ids:
            ids[profile_id] = person_ids(tx, profile_id)
        user_id, anonymous_id = ids[profile_id]
        if not user_id and not anonymous_id:
            continue  # nobody to attribute it to (erased meanwhile)
        message_id = "jny-" + hashlib.sha256(key.encode()).hexdigest()[:40]
        context = {"library": {"name": SOURCE_NAME, "version": "1"}, **body.pop("context", {})}
        message: dict[str, Any] = {
            "type": kind, "messageId": message_id, **body, "context": context,
            "timestamp": stamp, "originalTimestamp": stamp, "receivedAt": stamp,
            "_partitur": {"source": source},
        }
        if user_id:
            message["userId"] = user_id
        if anonymous_id:
            message["anonymousId"] = anonymous_id
        route = anonymous_id or user_id or ""
        out.append((message_id, source, kind, body.get("event"), user_id, anonymous_id, now,
                    now, zlib.crc32(route.encode()) % effects.partitions,
                    _ENC.encode(message).decode()))
    return out


def path_of(tx: Tx, instance_ids: Sequence[str], limit: int = 1000
            ) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for chunk in chunks(list(instance_ids), 200):
        marks = ",".join("?" * len(chunk))
        rows = tx.execute(
            "SELECT instance_id, step, kind, at, reason, message_key, version FROM journey_path "
            f"WHERE instance_id IN ({marks}) ORDER BY id LIMIT ?", [*chunk, limit],
        )
        for iid, step, kind, at, reason, key, version in rows:
            entry: dict[str, Any] = {"at": iso(int(at)), "step": step, "kind": kind,
                                     "version": int(version), "reason": _DEC.decode(reason)}
            if key:
                entry["message_key"] = key
            out.setdefault(iid, []).append(entry)
    return out
