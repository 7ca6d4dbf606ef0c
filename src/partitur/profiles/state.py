"""A profile's state and how one event changes it. Pure: no clock, no I/O.

Trait survivorship is per trait: ``latest`` (the value with the newest event timestamp wins,
so a late-arriving old event never overwrites a newer value), ``first`` (the oldest timestamp
wins) or ``never_overwrite`` (the first value stored is kept). ``trait_meta`` keeps, per
trait, the timestamp and seq of the event that set it, which is what makes merging two
profiles and replaying a timeline give the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from partitur.clock import iso


@dataclass
class ProfileState:
    id: str
    part: int
    created_at: int
    updated_at: int = 0
    first_seen: int | None = None
    last_seen: int | None = None
    event_count: int = 0
    traits: dict[str, Any] = field(default_factory=dict)
    trait_meta: dict[str, list[int]] = field(default_factory=dict)  # name -> [ts, seq]
    consent: dict[str, dict[str, Any]] = field(default_factory=dict)
    merged_into: str | None = None
    changed_traits: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "traits": self.traits,
            "consent": public_consent(self.consent),
            "first_seen": iso(self.first_seen) if self.first_seen is not None else None,
            "last_seen": iso(self.last_seen) if self.last_seen is not None else None,
            "event_count": self.event_count,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at) if self.updated_at else None,
        }


def _wins(rule: str, old: list[int] | None, ts: int, seq: int) -> bool:
    if old is None:
        return True
    if rule == "never_overwrite":
        return False
    if rule == "first":
        return (ts, seq) < (old[0], old[1])
    return (ts, seq) >= (old[0], old[1])


def set_trait(
    state: ProfileState, name: str, value: Any, ts: int, seq: int, rule: str
) -> None:
    old = state.trait_meta.get(name)
    if not _wins(rule, old, ts, seq):
        return
    if name not in state.traits or state.traits[name] != value:
        state.traits[name] = value
        state.changed_traits.add(name)
    state.trait_meta[name] = [ts, seq]


def apply_event(
    state: ProfileState,
    event: Mapping[str, Any],
    *,
    ts: int,
    seq: int,
    source_id: str,
    rules: Mapping[str, str],
) -> None:
    """Fold one stored event into the profile."""
    state.event_count += 1
    if state.first_seen is None or ts < state.first_seen:
        state.first_seen = ts
    if state.last_seen is None or ts > state.last_seen:
        state.last_seen = ts
    context = event.get("context")
    if isinstance(context, Mapping):
        ctx_traits = context.get("traits")
        if isinstance(ctx_traits, Mapping):
            for name, value in ctx_traits.items():
                set_trait(state, str(name), value, ts, seq, rules.get(name, "latest"))
        consent = context.get("consent")
        if isinstance(consent, Mapping):
            prefs = consent.get("categoryPreferences")
            if isinstance(prefs, Mapping):
                for purpose, granted in prefs.items():
                    if isinstance(granted, bool):
                        set_consent(state, str(purpose), granted, ts, seq, source_id)
    if event.get("type") == "identify":
        traits = event.get("traits")
        if isinstance(traits, Mapping):
            for name, value in traits.items():
                set_trait(state, str(name), value, ts, seq, rules.get(name, "latest"))


_RECENT = 4  # statements of the current answer kept to place late contrary statements


def set_consent(
    state: ProfileState, purpose: str, granted: bool, ts: int, seq: int, source_id: str
) -> None:
    """Record a consent statement, whatever order statements arrive in.

    The entry holds the current answer (from the newest statement, by ``(ts, seq)``),
    ``since``, the first statement of the current run of that answer (a later event repeating
    the same answer, as analytics.js does on every call, is not a change), ``after``, the
    newest contrary statement before that run, and the newest few statements of the run.
    A late statement can move ``since`` earlier (same answer, after ``after``) or later (a
    contrary answer inside the run: the run then starts at the next statement kept after it),
    so the profile agrees with the consent history derived from the events. A late contrary
    statement older than the statements kept moves ``since`` to the oldest one kept."""
    entry = state.consent.get(purpose)
    key = (ts, seq)
    if entry is None:
        state.consent[purpose] = _new_entry(granted, key, source_id, None)
        return
    newest = (entry["ts"], entry["seq"])
    since = (entry["since"], entry.get("since_seq", 0))
    after = tuple(entry["after"]) if entry.get("after") else None
    recent = [tuple(m) for m in entry.get("recent") or [[newest[0], newest[1], entry["source"]]]]
    if key in (newest, since):
        return
    if granted == entry["granted"]:
        if after is not None and key < after:
            return
        recent = sorted({*recent, (ts, seq, source_id)})[-_RECENT:]
        entry["recent"] = [list(m) for m in recent]
        if key > newest:
            entry["ts"], entry["seq"] = key
        if key < since:
            entry["since"], entry["since_seq"], entry["source"] = ts, seq, source_id
        return
    if key > newest:
        state.consent[purpose] = _new_entry(granted, key, source_id, newest)
        return
    if key > since:
        first = min(m for m in recent if (m[0], m[1]) > key)
        entry["since"], entry["since_seq"], entry["source"] = first[0], first[1], first[2]
        entry["recent"] = [list(m) for m in recent if (m[0], m[1]) > key]
        entry["after"] = list(key)
    elif after is None or key > after:
        entry["after"] = list(key)


def _new_entry(
    granted: bool, key: tuple[int, int], source_id: str, after: tuple[int, int] | None
) -> dict[str, Any]:
    return {
        "granted": granted, "since": key[0], "since_seq": key[1], "ts": key[0],
        "seq": key[1], "source": source_id, "after": list(after) if after else None,
        "recent": [[key[0], key[1], source_id]],
    }


def public_consent(consent: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        purpose: {
            "granted": entry["granted"],
            "at": iso(entry["since"]),
            "source": entry["source"],
        }
        for purpose, entry in consent.items()
    }


def merge_into(survivor: ProfileState, other: ProfileState, rules: Mapping[str, str]) -> None:
    """Fold ``other`` into ``survivor`` by the same rules events follow."""
    survivor.event_count += other.event_count
    for attr, pick in (("first_seen", min), ("last_seen", max)):
        mine, theirs = getattr(survivor, attr), getattr(other, attr)
        if theirs is not None:
            setattr(survivor, attr, theirs if mine is None else pick(mine, theirs))
    for name, value in other.traits.items():
        meta = other.trait_meta.get(name, [0, 0])
        set_trait(survivor, name, value, meta[0], meta[1], rules.get(name, "latest"))
    for purpose, entry in other.consent.items():
        # Replay what the other profile knows as statements: its contrary boundary, the
        # start of its run and the newest statements of it.
        if entry.get("after"):
            at, aseq = entry["after"]
            set_consent(survivor, purpose, not entry["granted"], at, aseq, entry["source"])
        marks = entry.get("recent") or [[entry["ts"], entry["seq"], entry["source"]]]
        for ts, seq, source in [[entry["since"], entry.get("since_seq", 0), entry["source"]],
                                *marks]:
            set_consent(survivor, purpose, entry["granted"], ts, seq, source)
    other.merged_into = survivor.id
