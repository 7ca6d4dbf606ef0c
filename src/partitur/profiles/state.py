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


def set_consent(
    state: ProfileState, purpose: str, granted: bool, ts: int, seq: int, source_id: str
) -> None:
    """Record a consent statement; an older statement never overrides a newer one.

    ``since`` is when the current answer was first given: a later event repeating the same
    answer (analytics.js sends preferences on every call) only moves ``ts``/``seq``, the
    newest statement seen, which is what out-of-order events are compared with."""
    old = state.consent.get(purpose)
    if old is not None:
        if (old["ts"], old["seq"]) > (ts, seq):
            return
        if old["granted"] == granted:
            old["ts"], old["seq"] = ts, seq
            return
    state.consent[purpose] = {
        "granted": granted, "since": ts, "ts": ts, "seq": seq, "source": source_id
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
        mine = survivor.consent.get(purpose)
        if mine is None or (entry["ts"], entry["seq"]) > (mine["ts"], mine["seq"]):
            if mine is not None and mine["granted"] == entry["granted"]:
                mine["ts"], mine["seq"] = entry["ts"], entry["seq"]
                mine["since"] = min(mine["since"], entry["since"])
            else:
                survivor.consent[purpose] = dict(entry)
    other.merged_into = survivor.id
