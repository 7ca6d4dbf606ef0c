"""Identity resolution over the part of the graph one batch of events touches.

The rules, in the order they are applied to each event's identifiers (highest priority
first, see ``IdentityRules.priority``):

1. The event belongs to the profile of its highest-priority identifier that already has one,
   provided that profile can also take every higher-priority identifier the event carries
   that has no profile yet without breaking a per-type limit. Otherwise a new profile is
   created for the event (this is how a second ``user_id`` on a shared device starts a new
   person instead of merging two).
2. Identifiers without a profile are linked to the event's profile, unless a per-type limit
   (default: one ``user_id``) or the cap on identifiers per profile would be exceeded; then
   the link is refused and logged.
3. Identifiers owned by another profile merge that profile into the event's profile, unless
   the merged profile would break a limit or the cap, or an operator has split the two apart
   (unmerge); then the merge is refused and logged. The older profile survives, so a profile
   id, once seen, stays valid: merged-away ids redirect to the survivor.

Everything is decided in memory; the caller writes the recorded changes in one transaction.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from partitur.identity.extract import Identifier, IdentityRules
from partitur.identity.store import LogEntry


@dataclass(slots=True)
class Merge:
    survivor: str
    merged: str
    keys: list[str]


def new_profile_id(seq: int, first: Identifier | None) -> str:
    """Deterministic from the event, so reprocessing after a crash makes the same id."""
    seed = f"{seq}:{first.key if first else ''}"
    return "p_" + hashlib.blake2b(seed.encode(), digest_size=10).hexdigest()


@dataclass
class BatchGraph:
    owner: dict[str, str]
    members: dict[str, set[str]]
    created_at: dict[str, int]
    rules: IdentityRules
    now_us: int
    split_apart: Callable[[str, str], bool] = lambda a, b: False
    new_identifiers: list[tuple[str, str, str, str, int, int | None]] = field(
        default_factory=list
    )
    merges: list[Merge] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    log: list[LogEntry] = field(default_factory=list)
    redirect: dict[str, str] = field(default_factory=dict)

    # -- limits ----------------------------------------------------------------------------------
    def _counts(self, profile: str) -> Counter[str]:
        return Counter(key.split(":", 1)[0] for key in self.members.get(profile, ()))

    def _can_take(
        self, profile: str, idents: list[Identifier], *, cap: bool = True
    ) -> str | None:
        """None if ``profile`` can take all ``idents``; otherwise the reason it cannot.

        ``cap=False`` checks the per-type limits only.
        """
        held = self.members.get(profile, ())
        if (not cap or len(held) + len(idents) <= self.rules.max_identifiers) and not any(
            self.rules.limit(i.type) is not None for i in idents
        ):
            return None  # the common case, decided without counting
        counts = self._counts(profile)
        total = sum(counts.values())
        for ident in idents:
            limit = self.rules.limit(ident.type)
            counts[ident.type] += 1
            total += 1
            if limit is not None and counts[ident.type] > limit:
                return f"at most {limit} {ident.type} per profile"
        if cap and total > self.rules.max_identifiers:
            return f"at most {self.rules.max_identifiers} identifiers per profile"
        return None

    def _can_merge(self, a: str, b: str) -> str | None:
        if self.split_apart(a, b):
            return "these profiles were split apart by an unmerge"
        counts = self._counts(a) + self._counts(b)
        for kind, count in counts.items():
            limit = self.rules.limit(kind)
            if limit is not None and count > limit:
                return f"at most {limit} {kind} per profile"
        if sum(counts.values()) > self.rules.max_identifiers:
            return f"at most {self.rules.max_identifiers} identifiers per profile"
        return None

    def _age(self, profile: str) -> tuple[int, int, str]:
        """Older sorts first: creation time, then order of creation within this batch."""
        rank = self.created.index(profile) if profile in self.created else -1
        return (self.created_at.get(profile, 0), rank, profile)

    # -- changes ---------------------------------------------------------------------------------
    def _create(self, seq: int, first: Identifier | None, message_id: str | None) -> str:
        profile = new_profile_id(seq, first)
        self.members[profile] = set()
        self.created_at[profile] = self.now_us
        self.created.append(profile)
        self.log.append(LogEntry("create", profile, event_seq=seq, message_id=message_id))
        return profile

    def _link(self, profile: str, ident: Identifier, seq: int, message_id: str | None) -> None:
        self.owner[ident.key] = profile
        self.members[profile].add(ident.key)
        self.new_identifiers.append(
            (ident.key, ident.type, ident.value, profile, self.now_us, seq)
        )
        self.log.append(
            LogEntry("link", profile, id_type=ident.type, id_value=ident.value, event_seq=seq,
                     message_id=message_id)
        )

    def _refuse(
        self, profile: str, ident: Identifier, other: str | None, reason: str, seq: int,
        message_id: str | None,
    ) -> None:
        self.log.append(
            LogEntry("refuse", profile, other_profile=other, id_type=ident.type,
                     id_value=ident.value, event_seq=seq, message_id=message_id,
                     detail={"reason": reason})
        )

    def _merge(
        self, a: str, b: str, via: Identifier, seq: int, message_id: str | None
    ) -> str:
        older = sorted((a, b), key=self._age)
        survivor, merged = older[0], older[1]
        keys = sorted(self.members.pop(merged, set()))
        for key in keys:
            self.owner[key] = survivor
        self.members[survivor].update(keys)
        self.redirect[merged] = survivor
        self.merges.append(Merge(survivor, merged, keys))
        self.log.append(
            LogEntry("merge", survivor, other_profile=merged, id_type=via.type,
                     id_value=via.value, event_seq=seq, message_id=message_id,
                     detail={"identifiers": keys})
        )
        return survivor

    def final(self, profile: str) -> str:
        while profile in self.redirect:
            profile = self.redirect[profile]
        return profile

    # -- the rules -------------------------------------------------------------------------------
    def resolve(self, idents: list[Identifier], seq: int, message_id: str | None) -> str | None:
        """The profile this event belongs to (None if it carries no usable identifier)."""
        if not idents:
            return None
        profile: str | None = None
        unowned: list[Identifier] = []
        for ident in idents:
            holder = self.owner.get(ident.key)
            if holder is None:
                if profile is None:
                    unowned.append(ident)
                elif (reason := self._can_take(profile, [ident])) is None:
                    self._link(profile, ident, seq, message_id)
                else:
                    self._refuse(profile, ident, None, reason, seq, message_id)
                continue
            if profile is None:
                # A per-type limit (a second user_id) means another person: new profile.
                # The cap alone does not: the event stays with the holder, the links are refused.
                if self._can_take(holder, unowned, cap=False) is None:
                    profile = holder
                else:
                    profile = self._create(seq, unowned[0] if unowned else ident, message_id)
                for pending in unowned:
                    if (reason := self._can_take(profile, [pending])) is None:
                        self._link(profile, pending, seq, message_id)
                    else:
                        self._refuse(profile, pending, None, reason, seq, message_id)
                unowned = []
                if holder == profile:
                    continue
            if holder == profile:
                continue
            if (reason := self._can_merge(profile, holder)) is None:
                profile = self._merge(profile, holder, ident, seq, message_id)
            else:
                self._refuse(profile, ident, holder, reason, seq, message_id)
        if profile is None:
            profile = self._create(seq, unowned[0], message_id)
            for pending in unowned:
                if (reason := self._can_take(profile, [pending])) is None:
                    self._link(profile, pending, seq, message_id)
                else:
                    self._refuse(profile, pending, None, reason, seq, message_id)
        return profile
