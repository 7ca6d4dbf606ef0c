"""Erasure and export of one person, found by any of their identifiers.

Erasure removes the person's events, identifiers, traits, timeline and identity log from every
table that holds them (the live profile and every profile merged into it), records a hash of
each identifier so that future events from them are dropped by the worker, and writes an audit
record that holds counts and hashes only, never personal data.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from partitur.errors import InvalidInput, NotFound
from partitur.identity import store as graph_store
from partitur.identity.extract import BUILTIN_TYPES, IdentityRules, identifier_hash
from partitur.profiles import store as profile_store
from partitur.profiles.view import profile_json
from partitur.store.db import Tx
from partitur.store.events import EventLog

_DEC = msgspec.json.Decoder()


def find_person(tx: Tx, rules: IdentityRules, kind: str, value: Any) -> tuple[str, list[str]]:
    """(live profile id, all profile ids of the person) or NotFound."""
    if kind not in BUILTIN_TYPES and kind not in (rules.custom_types or {}):
        raise InvalidInput(f"'type' must be one of {', '.join(BUILTIN_TYPES)} or a custom type")
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("'value' must be a non-empty string")
    canonical = rules.normalise(kind, value)
    owner = graph_store.owners(tx, [f"{kind}:{canonical}"]) if canonical else {}
    if not owner:
        raise NotFound(f"nothing is held for that {kind}")
    live, _ = profile_store.resolve_id(tx, next(iter(owner.values())))
    if live is None:
        raise NotFound(f"nothing is held for that {kind}")
    ids = [live]
    frontier = [live]
    while frontier:
        marks = ",".join("?" * len(frontier))
        rows = tx.execute(f"SELECT id FROM profiles WHERE merged_into IN ({marks})", frontier)
        frontier = [r[0] for r in rows if r[0] not in ids]
        ids.extend(frontier)
    return live, ids


def _seqs(tx: Tx, profile_ids: list[str]) -> list[int]:
    marks = ",".join("?" * len(profile_ids))
    rows = tx.execute(f"SELECT seq FROM profile_events WHERE profile_id IN ({marks})", profile_ids)
    return [int(r[0]) for r in rows]


def _identifiers(tx: Tx, profile_ids: list[str]) -> list[tuple[str, str, str]]:
    marks = ",".join("?" * len(profile_ids))
    rows = tx.execute(
        f"SELECT key, id_type, id_value FROM identifiers WHERE profile_id IN ({marks})",
        profile_ids,
    )
    return [(r[0], r[1], r[2]) for r in rows]


def _carries(body: dict[str, Any], values: set[str]) -> bool:
    for field in ("userId", "anonymousId", "previousId"):
        if body.get(field) is not None and str(body[field]) in values:
            return True
    for traits in (body.get("traits"), (body.get("context") or {}).get("traits")):
        if isinstance(traits, dict):
            for field in ("email", "phone"):
                if isinstance(traits.get(field), str) and traits[field].strip().lower() in values:
                    return True
    return False


def erase(
    tx: Tx, log: EventLog, rules: IdentityRules, kind: str, value: Any, now_us: int, actor: str
) -> dict[str, Any]:
    live, profile_ids = find_person(tx, rules, kind, value)
    idents = _identifiers(tx, profile_ids)
    values = {v for _, _, v in idents} | {v.lower() for _, _, v in idents}
    seqs = set(_seqs(tx, profile_ids))
    # Events still waiting for the worker that carry the person's ids.
    queued = [int(r[0]) for r in tx.execute("SELECT seq FROM event_queue")]
    for row in log.by_seqs(tx, queued):
        if row[0] not in seqs and _carries(_DEC.decode(row[10]), values):
            seqs.add(row[0])
    log.delete_seqs(tx, sorted(seqs))
    marks = ",".join("?" * len(profile_ids))
    tx.execute(f"DELETE FROM profile_events WHERE profile_id IN ({marks})", profile_ids)
    tx.execute(f"DELETE FROM profile_traits WHERE profile_id IN ({marks})", profile_ids)
    tx.execute(f"DELETE FROM identifiers WHERE profile_id IN ({marks})", profile_ids)
    tx.execute(
        f"DELETE FROM identity_log WHERE profile_id IN ({marks}) OR other_profile IN ({marks})",
        [*profile_ids, *profile_ids],
    )
    tx.execute(f"DELETE FROM profiles WHERE id IN ({marks})", profile_ids)
    rejected = 0
    for rid, body in tx.execute("SELECT id, body FROM rejected_events"):
        try:
            decoded = _DEC.decode(body)
        except msgspec.DecodeError:
            continue
        if isinstance(decoded, dict) and _carries(decoded, values):
            tx.execute("DELETE FROM rejected_events WHERE id = ?", (rid,))
            rejected += 1
    hashes = sorted(identifier_hash(t, v) for _, t, v in idents)
    tx.executemany(
        "INSERT INTO suppressions (hash, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [(h, now_us) for h in hashes],
    )
    summary = {
        "profile": live,
        "profiles_erased": len(profile_ids),
        "events_erased": len(seqs),
        "identifiers_erased": len(idents),
        "rejected_events_erased": rejected,
        "suppressed_hashes": len(hashes),
    }
    audit(tx, "erase", actor, summary, now_us)
    return summary


def export(tx: Tx, log: EventLog, rules: IdentityRules, kind: str, value: Any) -> dict[str, Any]:
    live, profile_ids = find_person(tx, rules, kind, value)
    state = profile_store.get(tx, live)
    assert state is not None
    events = []
    for row in log.by_seqs(tx, sorted(_seqs(tx, profile_ids))):
        body = _DEC.decode(row[10])
        body["seq"] = row[0]
        events.append(body)
    return {
        "profile": profile_json(tx, state),
        "profiles": profile_ids,
        "identity_log": graph_store.log_for(tx, profile_ids, limit=100_000),
        "events": events,
    }


def audit(tx: Tx, action: str, actor: str, detail: dict[str, Any], now_us: int) -> None:
    tx.execute(
        "INSERT INTO audit_log (at, action, actor, detail) VALUES (?, ?, ?, ?)",
        (now_us, action, actor, json.dumps(detail)),
    )
