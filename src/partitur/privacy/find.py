"""Find everything held about one person, starting from any one of their identifiers.

A person is the live profile that owns the identifier plus every profile merged into it,
their identifiers, and the events that carry one of those identifiers but are not on a
timeline yet: events still waiting for the worker, and events the tracking plan blocked or
flagged (the rejected store).

Bodies are matched precisely: the database narrows the candidates with a case-insensitive
``LIKE`` on each identifier value, then each candidate is decoded and its identifiers are
extracted by the same rules the worker uses and compared by key. A value that JSON may spell
differently from its canonical form (a phone number, a non-ASCII or escaped value, a number
in exponent form) turns the narrowing off, so that nothing is missed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import msgspec

from partitur.errors import InvalidInput
from partitur.identity import store as graph_store
from partitur.identity.extract import BUILTIN_TYPES, Identifier, IdentityRules, extract
from partitur.profiles import store as profile_store
from partitur.store.db import Tx

_DEC = msgspec.json.Decoder()
_CONTACT_FIELDS = ("email", "phone")


@dataclass(frozen=True)
class Person:
    subject: Identifier  # the identifier the request named, canonical
    live: str | None  # the live profile, None if no profile holds the subject
    profiles: tuple[str, ...]  # the live profile first, then every profile merged into it
    identifiers: tuple[Identifier, ...]  # owned by those profiles
    pending: tuple[Identifier, ...] = ()  # only in their events still waiting for the worker

    @property
    def every_identifier(self) -> tuple[Identifier, ...]:
        seen: dict[str, Identifier] = {}
        for ident in (self.subject, *self.identifiers, *self.pending):
            seen.setdefault(ident.key, ident)
        return tuple(seen.values())

    @property
    def keys(self) -> frozenset[str]:
        """The identifier keys that mark an event as this person's."""
        return frozenset(i.key for i in self.every_identifier)


def subject_of(rules: IdentityRules, kind: Any, value: Any) -> Identifier:
    """The canonical identifier a request names, or :class:`InvalidInput` saying why not."""
    known = (*BUILTIN_TYPES, *(rules.custom_types or {}))
    if not isinstance(kind, str) or kind not in known:
        raise InvalidInput(f"'type' must be one of {', '.join(known)}",
                           details=[{"field": "type"}])
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("'value' must be a non-empty string", details=[{"field": "value"}])
    canonical = rules.normalise(kind, value)
    if canonical is None:
        raise InvalidInput(
            f"{value!r} is not a usable {kind} (invalid, or a blocked value that never "
            "identifies anyone)",
            details=[{"field": "value"}],
        )
    return Identifier.of(kind, canonical)


def find_person(tx: Tx, subject: Identifier) -> Person:
    owner = graph_store.owners(tx, [subject.key])
    live = None
    if owner:
        live, _ = profile_store.resolve_id(tx, owner[subject.key])
    if live is None:
        return Person(subject, None, (), ())
    ids = [live]
    frontier = [live]
    while frontier:  # merges can chain: c into b, then b into a
        marks = ",".join("?" * len(frontier))
        rows = tx.execute(f"SELECT id FROM profiles WHERE merged_into IN ({marks})", frontier)
        frontier = [r[0] for r in rows if r[0] not in ids]
        ids.extend(frontier)
    idents: list[Identifier] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        idents.extend(
            Identifier(r[0], r[1], r[2]) for r in tx.execute(
                f"SELECT id_type, id_value, key FROM identifiers WHERE profile_id IN ({marks}) "
                "ORDER BY key", chunk)
        )
    return Person(subject, live, tuple(ids), tuple(idents))


# -- matching bodies -------------------------------------------------------------------------


def carried_keys(message: Mapping[str, Any], rules: IdentityRules, *, contact: bool) -> set[str]:
    """Identifier keys an event carries, by the worker's rules. ``contact`` also counts an
    ``email`` or ``phone`` in ``traits``, ``context.traits`` or ``properties`` on any call
    (for stored copies of events that the worker never sees)."""
    keys = {i.key for i in extract(dict(message), rules)}
    if contact:
        context = message.get("context")
        holders = (message.get("traits"), message.get("properties"),
                   context.get("traits") if isinstance(context, Mapping) else None)
        for holder in holders:
            if not isinstance(holder, Mapping):
                continue
            for kind in _CONTACT_FIELDS:
                value = rules.normalise(kind, holder.get(kind))
                if value is not None:
                    keys.add(f"{kind}:{value}")
    return keys


def _patterns(ident: Identifier, exact: bool) -> list[tuple[bool, str]] | None:
    """``LIKE`` patterns, each ``(lower-cased column?, pattern)``, one of which every stored
    body carrying ``ident`` matches; None when there are none to be sure of.

    ``exact`` expects the value as a whole JSON string (``"erin-42"``) or number (``:42,``),
    which keeps short ids from matching every body that merely contains them; it misses a
    value sent with surrounding spaces or as ``mailto:``, so it suits only the queue, where
    the worker catches what is missed. Otherwise any occurrence counts.
    """
    if ident.type == "phone":  # "+4915…" may have been sent as "0151 …"; the key is always there
        return [(False, "%phone%")]
    value = ident.value
    if not value.isascii() or '"' in value or "\\" in value or not value.isprintable():
        return None  # JSON may escape it
    if not value.isdigit():
        try:
            float(value)
        except ValueError:
            pass
        else:
            return None  # 1e+20 as Python spells it is 1e20 in JSON
    lower = ident.type == "email"  # canonical emails are lower case; others keep their case
    if lower:
        value = value.lower()
    if not exact:
        return [(lower, f"%{value}%")]
    found = [(lower, f'%"{value}"%')]
    if value.isdigit():  # a number, not a string
        found += [(lower, f"%:{value},%"), (lower, f"%:{value}}}%")]
    return found


def like_filter(
    idents: Iterable[Identifier], column: str, *, exact: bool = False
) -> tuple[str, list[str]] | None:
    """``(sql, params)`` narrowing rows to those whose ``column`` may carry one of
    ``idents`` (see ``_patterns``); None when no narrowing is safe (every row must be read)."""
    patterns: set[tuple[bool, str]] = set()
    for ident in idents:
        found = _patterns(ident, exact)
        if found is None:
            return None
        patterns.update(found)
    if not patterns:
        return "1 = 0", []
    ordered = sorted(patterns)
    sql = " OR ".join(
        f"LOWER({column}) LIKE ?" if lower else f"{column} LIKE ?" for lower, _ in ordered)
    return f"({sql})", [pattern for _, pattern in ordered]


def matching(
    rows: Iterable[Sequence[Any]], body_at: int, person: Person, rules: IdentityRules, *,
    contact: bool,
) -> list[tuple[Sequence[Any], dict[str, Any]]]:
    """The rows whose JSON body (at ``body_at``) carries one of the person's identifiers."""
    keys = person.keys
    out = []
    for row in rows:
        try:
            body = _DEC.decode(row[body_at])
        except msgspec.DecodeError:
            continue
        if isinstance(body, dict) and carried_keys(body, rules, contact=contact) & keys:
            out.append((row, body))
    return out


def queued_events(
    tx: Tx, person: Person, rules: IdentityRules, columns: str
) -> tuple[Person, list[tuple[Sequence[Any], dict[str, Any]]]]:
    """Events waiting for the worker that belong to the person, and the person with the
    identifiers those events would have linked to them (``pending``).

    An event belongs to the person when it carries one of their identifiers; its other
    identifiers then count as theirs too, as the worker would link them, unless another
    profile owns one, a per-type limit (one ``user_id``) or the cap on identifiers would be
    broken. This repeats until no new identifier turns up. ``columns`` are columns of
    ``events`` to return; the body is appended last.
    """
    keys = set(person.keys)
    counts = Counter(k.split(":", 1)[0] for k in keys)
    pending: list[Identifier] = []
    found: dict[int, tuple[Sequence[Any], dict[str, Any]]] = {}
    decoded: dict[int, tuple[Sequence[Any], dict[str, Any], list[Identifier]] | None] = {}
    fresh: list[Identifier] = list(person.every_identifier)
    # Only the stretch of the log the queue spans is read (the backlog, normally the newest
    # events), by seq, however long the log; a plain join lets a planner scan all of it.
    bounds = tx.one("SELECT MIN(seq), MAX(seq) FROM event_queue")
    lo, hi = (bounds[0], bounds[1]) if bounds and bounds[0] is not None else (0, -1)
    scanned = hi < lo  # the whole queue has been read (an empty one: at once)
    while fresh:
        narrow = like_filter(fresh, "body", exact=True)
        where, params = narrow if narrow is not None else ("1 = 1", [])
        scanned_now = narrow is None
        for row in [] if scanned else tx.execute(
            f"SELECT seq, {columns}, body FROM events WHERE seq >= ? AND seq <= ? "
            f"AND {where} AND seq IN (SELECT seq FROM event_queue WHERE seq >= ? AND seq <= ?)",
            [lo, hi, *params, lo, hi],
        ):
            if row[0] not in decoded:
                try:
                    body = _DEC.decode(row[-1])
                except msgspec.DecodeError:
                    body = None
                decoded[row[0]] = (row[1:], body, extract(body, rules)) if isinstance(
                    body, dict) else None
        scanned = scanned or scanned_now
        fresh = []
        for seq in sorted(decoded):  # in the order the worker would link them
            item = decoded[seq]
            if item is None or seq in found or not {i.key for i in item[2]} & keys:
                continue
            found[seq] = (item[0], item[1])
            new = [i for i in item[2] if i.key not in keys]
            owned = graph_store.owners(tx, [i.key for i in new]) if new else {}
            for ident in new:
                limit = rules.limit(ident.type)
                if ident.key in owned or ident.key in keys or len(keys) >= rules.max_identifiers:
                    continue
                if limit is not None and counts[ident.type] >= limit:
                    continue
                keys.add(ident.key)
                counts[ident.type] += 1
                pending.append(ident)
                fresh.append(ident)
    rows = [found[seq] for seq in sorted(found)]
    return replace(person, pending=tuple(pending)), rows


def rejected_events(
    tx: Tx, person: Person, rules: IdentityRules, columns: str
) -> list[tuple[Sequence[Any], dict[str, Any]]]:
    """Rows of the rejected store whose event carries the person's identifiers (also an
    ``email`` or ``phone`` in its traits or properties); ``columns`` as above, alias ``r``."""
    narrow = like_filter(person.every_identifier, "r.body")
    where, params = narrow if narrow is not None else ("1 = 1", [])
    rows = tx.execute(
        f"SELECT {columns}, r.body FROM rejected_events r WHERE {where} ORDER BY r.id", params
    )
    return matching(rows, -1, person, rules, contact=True)


def timeline_seqs(tx: Tx, profile_ids: Sequence[str]) -> list[int]:
    seqs: list[int] = []
    for start in range(0, len(profile_ids), 500):
        chunk = profile_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        seqs.extend(int(r[0]) for r in tx.execute(
            f"SELECT seq FROM profile_events WHERE profile_id IN ({marks})", chunk))
    return sorted(set(seqs))


def identity_log_ids(tx: Tx, person: Person) -> list[int]:
    """Identity log entries about the person: those of their profiles, those naming one of
    their profiles as the other side, and those naming one of their identifiers (a link that
    another profile was refused, say)."""
    ids: set[int] = set()
    profiles = list(person.profiles)
    for start in range(0, len(profiles), 400):
        chunk = profiles[start : start + 400]
        marks = ",".join("?" * len(chunk))
        ids.update(int(r[0]) for r in tx.execute(
            f"SELECT id FROM identity_log WHERE profile_id IN ({marks}) "
            f"OR other_profile IN ({marks})", [*chunk, *chunk]))
    wanted = {(i.type, i.value) for i in person.every_identifier}
    values = sorted({v for _, v in wanted})
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        marks = ",".join("?" * len(chunk))
        ids.update(int(r[0]) for r in tx.execute(
            f"SELECT id, id_type, id_value FROM identity_log WHERE id_value IN ({marks})", chunk
        ) if (r[1], r[2]) in wanted)
    return sorted(ids)
