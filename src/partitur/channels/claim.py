"""Claiming due outbox rows: the policies, the rendering, and the lease, in one transaction.

For each due row (SQLite: the single writer; PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so
several dispatchers share the outbox) the person is loaded as they are *now*, then:

1. erased or unknown person → ``suppressed`` (every category);
2. marketing only: missing or withdrawn consent → ``suppressed``; over the channel's frequency
   cap → ``suppressed``; inside quiet hours → deferred to their end (``queued``, ``due_at``
   moved) or, with ``quiet_hours_policy = skip``, ``suppressed``;
3. no address to send to → ``suppressed``; template missing or failing to render (a missing
   variable, say) → ``failed`` with the reason;
4. otherwise → ``sending``: ``attempts`` + 1 and a lease (``due_at`` = now + lease).

Frequency caps count the person's marketing messages on the channel that were sent within
the window or are being sent. On PostgreSQL, a transaction-level advisory lock per person
(taken in a fixed order) makes two dispatchers count one after the other.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from partitur.channels.base import Envelope
from partitur.channels.config import ChannelConfig
from partitur.channels.policy import consent_problem, person_zone
from partitur.channels.record import Finisher
from partitur.channels.render import Rendered, RenderFailure, render_row
from partitur.clock import iso
from partitur.profiles import store as profile_store
from partitur.profiles.state import ProfileState
from partitur.store.db import Tx, chunks
from partitur.templates import store as template_store

_DEC = msgspec.json.Decoder()
_CAP_LOCK = 0x4F55_5442  # "OUTB": advisory lock namespace for per-person cap counting

COLUMNS = (
    "key, profile_id, channel, category, template, variables, webhook, recipient, journey, "
    "version, instance_id, step_id, status, attempts"
)


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    profile_id: str
    channel: str
    category: str
    template: Any
    variables: dict[str, Any]
    webhook: dict[str, Any] | None
    recipient: str | None
    journey: str | None
    version: int | None
    instance_id: str | None
    step_id: str | None
    status: str
    attempts: int

    @classmethod
    def of(cls, r: tuple[Any, ...]) -> Row:
        return cls(
            r[0],
            r[1],
            r[2],
            r[3],
            _DEC.decode(r[4]) if r[4] else None,
            _DEC.decode(r[5]) if r[5] else {},
            _DEC.decode(r[6]) if r[6] else None,
            r[7],
            r[8],
            r[9],
            r[10],
            r[11],
            r[12],
            int(r[13]),
        )

    def properties(self) -> dict[str, Any]:
        """What delivery events say about the message."""
        props: dict[str, Any] = {
            "key": self.key,
            "channel": self.channel,
            "category": self.category,
        }
        if self.journey is not None:
            props.update(journey=self.journey, journey_version=self.version, step=self.step_id)
        if isinstance(self.template, str):
            props["template"] = self.template
        return props


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed row, rendered, on its way to the transport."""

    row: Row
    envelope: Envelope
    attempts: int  # the claim's token: a late result for an older claim is ignored
    detail: dict[str, Any] = field(default_factory=dict)


class Claimer:
    def __init__(self, config: ChannelConfig, finisher: Finisher, dialect: str) -> None:
        self.config = config
        self.finisher = finisher
        self.dialect = dialect

    def _select(self, tx: Tx, channel: str, limit: int, now_us: int) -> list[Row]:
        sql = (
            f"SELECT {COLUMNS} FROM outbox WHERE channel = ? AND due_at <= ? "
            "ORDER BY due_at LIMIT ?"
        )
        if self.dialect == "postgres":
            sql += " FOR UPDATE SKIP LOCKED"
        return [Row.of(r) for r in tx.execute(sql, (channel, now_us, limit))]

    def claim(self, tx: Tx, limits: Mapping[str, int], total: int, now_us: int) -> list[Job]:
        """Claim up to ``total`` due rows, at most ``limits[channel]`` of each channel (in the
        mapping's order); returns the rows that are to be sent now."""
        rows: list[Row] = []
        for channel, limit in limits.items():
            room = min(limit, total - len(rows))
            if room > 0:
                rows.extend(self._select(tx, channel, room, now_us))
        if not rows:
            return []
        rows.sort(key=lambda r: (zlib.crc32(r.profile_id.encode()), r.key))
        templates = template_store.find(
            tx, [r.template for r in rows if isinstance(r.template, str)]
        )
        people = _People.load(tx, [r.profile_id for r in rows])
        counted: dict[tuple[str, str], int] = {}
        locked: set[str] = set()
        jobs: list[Job] = []
        for row in rows:
            job = self._prepare(tx, row, templates, people, counted, locked, now_us)
            if job is not None:
                jobs.append(job)
        tx.executemany(
            "UPDATE outbox SET status = 'sending', attempts = ?, due_at = ?, updated_at = ? "
            "WHERE key = ?",
            [(j.attempts, now_us + self.config.lease_us, now_us, j.row.key) for j in jobs],
        )
        self.finisher.flush(tx, now_us)
        return jobs

    def _prepare(
        self,
        tx: Tx,
        row: Row,
        templates: Mapping[str, template_store.Template],
        people: _People,
        counted: dict[tuple[str, str], int],
        locked: set[str],
        now_us: int,
    ) -> Job | None:
        fin = self.finisher
        config = self.config
        if row.status == "sending" and row.attempts >= config.max_attempts:
            fin.dead(tx, row, "the dispatcher stopped during the last attempt", now_us)
            return None
        state = people.state(row.profile_id)
        if state is None:
            fin.suppress(tx, row, "the person was erased or is unknown", now_us)
            return None
        identifiers = people.identifiers.get(state.id, [])
        event = row.variables.get("event")
        if row.category == "marketing":
            problem = consent_problem(row.channel, state.consent, config.purposes)
            if problem:
                fin.suppress(tx, row, problem, now_us)
                return None
            cap = config.caps.get(row.channel)
            if cap is not None:
                if self.dialect == "postgres" and row.profile_id not in locked:
                    tx.execute(
                        "SELECT pg_advisory_xact_lock(?, ?)",
                        (_CAP_LOCK, zlib.crc32(row.profile_id.encode()) - 2**31),
                    )
                    locked.add(row.profile_id)
                slot = (row.profile_id, row.channel)
                if slot not in counted:
                    counted[slot] = _cap_count(tx, row, now_us - cap.window_us)
                if counted[slot] >= cap.count:
                    fin.suppress(tx, row, f"frequency cap {row.channel} {cap.text} reached", now_us)
                    return None
            quiet = config.quiet_hours
            if quiet is not None:
                zone = person_zone(
                    state.traits, event if isinstance(event, dict) else None, config.default_zone
                )
                until = quiet.quiet_until(now_us, zone)
                if until is not None:
                    where = f"quiet hours {quiet.text} {zone.key}"
                    if config.quiet_policy == "skip":
                        fin.suppress(tx, row, where, now_us)
                    else:
                        fin.defer(tx, row, f"{where}: deferred to {iso(until)}", until, now_us)
                    return None
        result = render_row(row, state, identifiers, templates, config, fin.secret)
        if isinstance(result, RenderFailure):
            if result.suppress:
                fin.suppress(tx, row, result.reason, now_us)
            else:
                fin.fail(tx, row, result.reason, now_us, detail=result.detail)
            return None
        if row.category == "marketing" and row.channel in config.caps:
            slot = (row.profile_id, row.channel)
            counted[slot] = counted.get(slot, 0) + 1
        return _job(row, result, row.attempts + 1)  # marked sending by the caller


@dataclass(slots=True)
class _People:
    """The people a claim's rows are for, loaded in a few statements: who each stored
    profile id is now (following merges), their state and their identifiers."""

    live: dict[str, str | None]
    states: dict[str, ProfileState]
    identifiers: dict[str, list[tuple[str, str]]]

    @classmethod
    def load(cls, tx: Tx, profile_ids: list[str]) -> _People:
        wanted = sorted(set(profile_ids))
        live: dict[str, str | None] = {p: None for p in wanted}
        for chunk in chunks(wanted):
            marks = ",".join("?" * len(chunk))
            for pid, merged_into in tx.execute(
                f"SELECT id, merged_into FROM profiles WHERE id IN ({marks})", chunk
            ):
                live[pid] = pid if merged_into is None else profile_store.resolve_id(tx, pid)[0]
        found = sorted({p for p in live.values() if p is not None})
        states = profile_store.load(tx, found)
        identifiers: dict[str, list[tuple[str, str]]] = {p: [] for p in found}
        for chunk in chunks(found):
            marks = ",".join("?" * len(chunk))
            for pid, kind, value in tx.execute(
                f"SELECT profile_id, id_type, id_value FROM identifiers "
                f"WHERE profile_id IN ({marks}) ORDER BY first_seen, key",
                chunk,
            ):
                identifiers[pid].append((kind, value))
        return cls(live, states, identifiers)

    def state(self, profile_id: str) -> ProfileState | None:
        live = self.live.get(profile_id)
        return self.states.get(live) if live is not None else None


def _job(row: Row, rendered: Rendered, attempts: int) -> Job:
    envelope = Envelope(
        key=row.key,
        channel=row.channel,
        profile_id=row.profile_id,
        category=row.category,
        to=rendered.to,
        content=rendered.content,
        unsubscribe_url=rendered.unsubscribe_url,
        attempt=attempts,
    )
    return Job(row, envelope, attempts, rendered.detail)


def _cap_count(tx: Tx, row: Row, since_us: int) -> int:
    found = tx.one(
        "SELECT COUNT(*) FROM outbox WHERE profile_id = ? AND channel = ? "
        "AND category = 'marketing' AND key <> ? "
        "AND ((status = 'sent' AND sent_at >= ?) OR status = 'sending')",
        (row.profile_id, row.channel, row.key, since_us),
    )
    return int(found[0]) if found else 0
