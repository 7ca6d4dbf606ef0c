"""Everything held about one person, as one JSON document (the right of access)."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from partitur.channels.outbox import STATUS_COLUMNS, STATUS_FROM, status_json
from partitur.clock import iso
from partitur.errors import NotFound
from partitur.identity import store as graph_store
from partitur.identity.extract import Identifier, IdentityRules
from partitur.privacy import consent
from partitur.privacy.find import (
    find_person,
    identity_log_ids,
    queued_events,
    rejected_events,
    timeline_seqs,
)
from partitur.profiles import store as profile_store
from partitur.profiles.view import profile_json
from partitur.segments.service import SegmentService
from partitur.store.db import Tx, chunks
from partitur.store.events import EventLog

_DEC = msgspec.json.Decoder()


def _events(tx: Tx, log: EventLog, seqs: list[int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row in log.by_seqs(tx, seqs):
        body = _DEC.decode(row[10])
        body["seq"] = row[0]
        out.append(body)
    return out


def _identity_log(tx: Tx, ids: list[int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = tx.execute(
            "SELECT id, at, kind, profile_id, other_profile, id_type, id_value, event_seq, "
            f"message_id, detail FROM identity_log WHERE id IN ({marks}) ORDER BY id",
            chunk,
        )
        out.extend(
            {"id": r[0], "at": iso(r[1]), "kind": r[2], "profile_id": r[3],
             "other_profile": r[4], "type": r[5], "value": r[6], "event_seq": r[7],
             "message_id": r[8], "detail": json.loads(r[9])}
            for r in rows
        )
    return out


def export(
    tx: Tx, log: EventLog, rules: IdentityRules, subject: Identifier, now_us: int
) -> dict[str, Any]:
    """The person ``subject`` identifies; :class:`NotFound` if nothing is held."""
    person, queued = queued_events(tx, find_person(tx, subject), rules, "seq")
    rejected = rejected_events(
        tx, person, rules,
        "r.id, r.received_at, r.source_id, r.type, r.event, r.message_id, r.plan_version, "
        "r.action, r.violations",
    )
    if person.live is None and not queued and not rejected:
        raise NotFound(f"nothing is held for that {subject.type}")
    profile = None
    if person.live is not None:
        state = profile_store.get(tx, person.live)
        assert state is not None
        profile = profile_json(tx, state)
    seqs = timeline_seqs(tx, list(person.profiles))
    timeline = set(seqs)
    names = consent.source_names(tx)
    identifiers: list[dict[str, Any]] = []
    for profile_id in person.profiles:
        identifiers.extend(
            {"type": t, "value": v, "profile": profile_id, "first_seen": iso(first),
             "event_seq": seq}
            for t, v, first, seq in graph_store.identifiers_of(tx, profile_id)
        )
    identifiers.extend(  # in their events still waiting for the worker: linked soon
        {"type": i.type, "value": i.value, "profile": None, "first_seen": None,
         "event_seq": None} for i in person.pending
    )
    return {
        "exported_at": iso(now_us),
        "subject": subject.as_json(),
        "profile": profile,
        "profiles": list(person.profiles),
        "identifiers": identifiers,
        "consent": profile["consent"] if profile else {},
        "consent_history": consent.history(consent.load_statements(tx, seqs), names),
        "events": _events(tx, log, seqs),
        "queued_events": [
            {**body, "seq": row[0]} for row, body in queued if row[0] not in timeline
        ],
        "identity_log": _identity_log(tx, identity_log_ids(tx, person)),
        "deliveries": _deliveries(tx, list(person.profiles)),
        "segments": (
            SegmentService.of_profile(tx, person.live, history_limit=100_000)
            if person.live is not None else None
        ),
        "rejected_events": [
            {"id": r[0], "received_at": iso(r[1]), "source": r[2],
             "source_name": names.get(r[2]), "type": r[3], "event": r[4],
             "message_id": r[5], "plan_version": r[6], "action": r[7],
             "violations": json.loads(r[8]), "body": body}
            for r, body in rejected
        ],
    }


def _deliveries(tx: Tx, profiles: list[str]) -> list[dict[str, Any]]:
    """Every message held for them (journey sends, their status and reason), oldest first."""
    out: list[dict[str, Any]] = []
    for chunk in chunks(profiles):
        marks = ",".join("?" * len(chunk))
        out.extend(
            status_json(row)
            for row in tx.execute(
                f"SELECT {STATUS_COLUMNS} FROM {STATUS_FROM} "
                f"WHERE o.profile_id IN ({marks}) ORDER BY o.created_at, o.key",
                chunk,
            )
        )
    return out
