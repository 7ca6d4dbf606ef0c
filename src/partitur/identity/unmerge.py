"""Undo a merge: the merged-away profile comes back with the identifiers it brought, each
event goes back to whichever profile its identifiers now point to, and both profiles are
recomputed from their events. The pair is remembered so that the next event carrying both
identifiers does not merge them again."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from partitur.errors import Conflict, NotFound
from partitur.identity import store as graph_store
from partitur.identity.extract import IdentityRules, extract
from partitur.identity.store import LogEntry
from partitur.profiles import store as profile_store
from partitur.profiles.state import ProfileState, apply_event
from partitur.store.db import Tx
from partitur.store.events import EventLog

_DEC = msgspec.json.Decoder()


def find_merge(tx: Tx, survivor: str, merge_id: int | None) -> tuple[int, str, list[str]]:
    if merge_id is None:
        row = tx.one(
            "SELECT id, other_profile, detail FROM identity_log WHERE kind = 'merge' AND "
            "profile_id = ? AND NOT EXISTS (SELECT 1 FROM identity_log u WHERE "
            "u.kind = 'unmerge' AND u.profile_id = identity_log.profile_id AND "
            "u.other_profile = identity_log.other_profile) ORDER BY id DESC LIMIT 1",
            (survivor,),
        )
        if row is None:
            raise NotFound(f"profile {survivor} has no merge to undo")
    else:
        row = tx.one(
            "SELECT id, other_profile, detail FROM identity_log WHERE kind = 'merge' "
            "AND id = ? AND profile_id = ?",
            (merge_id, survivor),
        )
        if row is None:
            raise NotFound(f"no merge {merge_id} into profile {survivor}")
    done = tx.one(
        "SELECT 1 FROM identity_log WHERE kind = 'unmerge' AND profile_id = ? AND "
        "other_profile = ?",
        (survivor, row[1]),
    )
    if done is not None:
        raise Conflict(f"merge {row[0]} was already undone")
    return int(row[0]), str(row[1]), list(json.loads(row[2]).get("identifiers", []))


def recompute(
    tx: Tx, log: EventLog, state: ProfileState, trait_rules: dict[str, str]
) -> ProfileState:
    """Rebuild a profile from its timeline alone."""
    fresh = ProfileState(id=state.id, part=state.part, created_at=state.created_at)
    seqs = profile_store.all_timeline_seqs(tx, state.id)
    rows = log.by_seqs(tx, seqs)
    for row in sorted(rows, key=lambda r: (r[7], r[0])):
        apply_event(fresh, _DEC.decode(row[10]), ts=row[7], seq=row[0], source_id=row[2],
                    rules=trait_rules)
    return fresh


def unmerge(
    tx: Tx,
    log: EventLog,
    survivor_id: str,
    merge_id: int | None,
    rules: IdentityRules,
    trait_rules: dict[str, str],
    now_us: int,
) -> dict[str, Any]:
    survivor = profile_store.get(tx, survivor_id)
    if survivor is None or survivor.merged_into is not None:
        raise NotFound(f"no live profile {survivor_id}")
    found_id, restored_id, keys = find_merge(tx, survivor_id, merge_id)
    restored = profile_store.get(tx, restored_id)
    if restored is None:
        raise NotFound(f"merged profile {restored_id} no longer exists")
    present = {k for k in keys if k in graph_store.owners(tx, keys)}
    graph_store.move_keys(tx, sorted(present), restored_id)
    # Profiles that had been merged into the restored one follow it back.
    tx.execute(
        "UPDATE profiles SET merged_into = ? WHERE merged_into = ? AND id IN "
        "(SELECT other_profile FROM identity_log WHERE kind = 'merge' AND profile_id = ?)",
        (restored_id, survivor_id, restored_id),
    )
    restored_keys = set(graph_store.members(tx, [restored_id]).get(restored_id, set()))
    survivor_keys = set(graph_store.members(tx, [survivor_id]).get(survivor_id, set()))
    seqs = profile_store.all_timeline_seqs(tx, survivor_id)
    moved = []
    for row in log.by_seqs(tx, seqs):
        idents = extract(_DEC.decode(row[10]), rules)
        for ident in idents:  # highest priority first
            if ident.key in survivor_keys:
                break
            if ident.key in restored_keys:
                moved.append(row[0])
                break
    for start in range(0, len(moved), 500):
        chunk = moved[start : start + 500]
        marks = ",".join("?" * len(chunk))
        tx.execute(
            f"UPDATE profile_events SET profile_id = ? WHERE profile_id = ? AND seq IN ({marks})",
            [restored_id, survivor_id, *chunk],
        )
    restored.merged_into = None
    new_survivor = recompute(tx, log, survivor, trait_rules)
    new_restored = recompute(tx, log, restored, trait_rules)
    profile_store.save(tx, [new_survivor, new_restored], now_us)
    profile_store.replace_traits_index(tx, new_survivor)
    profile_store.replace_traits_index(tx, new_restored)
    graph_store.append_log(
        tx,
        [LogEntry("unmerge", survivor_id, other_profile=restored_id,
                  detail={"merge": found_id, "identifiers": sorted(present),
                          "events_moved": len(moved)})],
        now_us,
    )
    return {
        "merge": found_id,
        "profile": survivor_id,
        "restored": restored_id,
        "identifiers_moved": sorted(present),
        "events_moved": len(moved),
    }
