"""A person's stored events, counted by name, properties and time, for conditions.

:class:`EventCounts` loads, in one query for many people, the events a set of conditions
can ask about: only the names they mention, only as far back as their longest window, and
the properties only when a condition filters on them. Counting is then done in memory, so
every segment evaluated for a person in a batch shares one read. The timeline
(``profile_events``, keyed by profile and time) is joined with the log (``events``) by
``seq``; both stores run the same SQL.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from partitur.conditions import EventQuery
from partitur.segments.sql import id_chunks, insert_rows
from partitur.store.db import Tx

_DEC = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class Need:
    """What to load: these event names, from ``since_us`` (None: all time), with or without
    properties; and for the names in ``totals``, the stored all-time counts
    (``segment_event_counts``) instead of the whole history."""

    names: frozenset[str]
    since_us: int | None
    properties: bool
    totals: frozenset[str] = frozenset()

    @staticmethod
    def union(needs: Iterable[Need]) -> Need:
        names: set[str] = set()
        totals: set[str] = set()
        since: int | None = 0
        first = True
        props = False
        for need in needs:
            names |= need.names
            totals |= need.totals
            props = props or need.properties
            if need.since_us is None or since is None:
                since = None
            else:
                since = need.since_us if first else min(since, need.since_us)
            first = False
        return Need(frozenset(names), None if first else since, props, frozenset(totals))


class _Row:
    __slots__ = ("body", "name", "props", "ts")

    def __init__(self, name: str, ts: int, body: str | None) -> None:
        self.name = name
        self.ts = ts
        self.body = body
        self.props: Any = _UNPARSED

    def properties(self) -> Any:
        if self.props is _UNPARSED:
            props = None
            if self.body is not None:
                try:
                    message = _DEC.decode(self.body)
                except msgspec.DecodeError:
                    message = None
                if isinstance(message, dict):
                    props = message.get("properties")
            self.props = props if isinstance(props, dict) else None
            self.body = None
        return self.props


_UNPARSED = object()


class EventCounts:
    """Events of many people, loaded once; :meth:`for_profile` gives a subject's callbacks."""

    def __init__(self) -> None:
        # profile -> event name -> rows in time order (and their times, for bisection)
        self._rows: dict[str, dict[str, list[_Row]]] = defaultdict(lambda: defaultdict(list))
        self._times: dict[tuple[str, str], list[int]] = {}
        self._since: int | None = None  # rows were loaded from here on
        self._totals: dict[tuple[str, str], int] = {}  # (profile, name) -> all-time count
        self.loaded_rows = 0
        self.counted_rows = 0  # events counted in SQL to build missing totals

    @classmethod
    def load(
        cls, tx: Tx, profile_ids: Collection[str], need: Need, dialect: str = "sqlite",
        *, keep_totals: bool = False,
    ) -> EventCounts:
        """Load what ``need`` asks for. Totals missing from ``segment_event_counts`` are
        counted from the timeline; with ``keep_totals`` (only the profile worker, which alone
        adds to them) they are stored for next time."""
        counts = cls()
        if not need.names or not profile_ids:
            return counts
        counts._since = need.since_us
        if need.totals:
            counts._load_totals(tx, sorted(profile_ids), sorted(need.totals), dialect,
                                keep_totals)
        names = sorted(need.names)
        counts._load_rows(tx, sorted(profile_ids), names, need, dialect)
        for pid, by_name in counts._rows.items():
            for name, person_rows in by_name.items():
                person_rows.sort(key=lambda r: r.ts)
                counts._times[(pid, name)] = [r.ts for r in person_rows]
        return counts

    def _add(self, rows: Iterable[tuple[Any, Any, Any, Any]]) -> None:
        n = 0
        for profile_id, ts, name, text in rows:
            self._rows[profile_id][name].append(_Row(name, int(ts), text))
            n += 1
        self.loaded_rows += n

    def _load_rows(
        self, tx: Tx, ids: list[str], names: list[str], need: Need, dialect: str
    ) -> None:
        body = "e.body" if need.properties else "NULL"
        since = "" if need.since_us is None else " AND pe.ts >= ?"
        for who, id_params in id_chunks(dialect, "pe.profile_id", ids):
            for what, name_params in id_chunks(dialect, "e.event", names):
                params: list[Any] = [*id_params]
                if need.since_us is not None:
                    params.append(need.since_us)
                self._add(tx.execute(
                    f"SELECT pe.profile_id, pe.ts, e.event, {body} FROM profile_events pe "
                    f"JOIN events e ON e.seq = pe.seq WHERE {who}{since} AND {what}",
                    [*params, *name_params],
                ))

    def _load_totals(
        self, tx: Tx, ids: list[str], names: list[str], dialect: str, keep: bool
    ) -> None:
        stored: dict[tuple[str, str], int] = {}
        for who, id_params in id_chunks(dialect, "profile_id", ids):
            for what, name_params in id_chunks(dialect, "event", names):
                for pid, name, n in tx.execute(
                    f"SELECT profile_id, event, n FROM segment_event_counts WHERE {who} "
                    f"AND {what}", [*id_params, *name_params],
                ):
                    stored[(pid, name)] = int(n)
        missing = sorted({p for p in ids for name in names if (p, name) not in stored})
        built: dict[tuple[str, str], tuple[int, int | None]] = {
            (p, name): (0, None) for p in missing for name in names if (p, name) not in stored
        }
        counted: list[Any] = []
        for who, id_params in id_chunks(dialect, "pe.profile_id", missing):
            for what, name_params in id_chunks(dialect, "e.event", names):
                counted.extend(tx.execute(
                    "SELECT pe.profile_id, e.event, COUNT(*), MAX(pe.ts) FROM profile_events "
                    f"pe JOIN events e ON e.seq = pe.seq WHERE {who} AND {what} "
                    "GROUP BY pe.profile_id, e.event", [*id_params, *name_params],
                ))
        for pid, name, n, last in counted:
            if (pid, name) in built:
                built[(pid, name)] = (int(n), int(last))
                self.counted_rows += int(n)
        self._totals = {**stored, **{k: v[0] for k, v in built.items()}}
        if keep and built:
            insert_rows(tx, dialect, "segment_event_counts",
                        [("profile_id", "text"), ("event", "text"), ("n", "bigint"),
                         ("last_ts", "bigint")],
                        [(p, name, n, last) for (p, name), (n, last) in sorted(built.items())],
                        "ON CONFLICT DO NOTHING")

    def _span(self, profile_id: str, query: EventQuery) -> tuple[list[int], int, int]:
        times = self._times.get((profile_id, query.name))
        if times is None:
            return [], 0, 0
        lo = 0 if query.since_us is None else bisect_left(times, query.since_us)
        hi = len(times) if query.until_us is None else bisect_right(times, query.until_us)
        return times, lo, hi

    def times(self, profile_id: str, query: EventQuery) -> list[int]:
        times, lo, hi = self._span(profile_id, query)
        if not query.where:
            return times[lo:hi]
        rows = self._rows[profile_id][query.name]
        return [
            rows[i].ts for i in range(lo, hi)
            if query.where.matches(rows[i].properties(), query.now_us)
        ]

    def count(self, profile_id: str, query: EventQuery) -> int:
        total = None
        if query.since_us is None and not query.where:
            total = self._totals.get((profile_id, query.name))
        if total is not None:
            if query.until_us is None:
                return total
            # The rows loaded reach back to the present: those after ``until`` are the
            # future-dated events the total includes.
            if self._since is not None and self._since > query.until_us + 1:
                raise RuntimeError("all-time counts need the rows after 'until' loaded")
            times = self._times.get((profile_id, query.name), [])
            return total - (len(times) - bisect_right(times, query.until_us))
        if not query.where:
            _, lo, hi = self._span(profile_id, query)
            return hi - lo
        return len(self.times(profile_id, query))

    def for_profile(
        self, profile_id: str
    ) -> tuple[Callable[[EventQuery], int], Callable[[EventQuery], Sequence[int]]]:
        """``(count_events, event_times)`` for a :class:`~partitur.conditions.Subject`."""
        return (lambda q: self.count(profile_id, q)), (lambda q: self.times(profile_id, q))


def count_events(tx: Tx, profile_id: str, query: EventQuery) -> int:
    """Count one person's events for ``query`` straight from the store (journeys use this
    for a single branch; segments load many people at once with :class:`EventCounts`)."""
    if query.where:
        need = Need(frozenset({query.name}), query.since_us, True)
        return EventCounts.load(tx, [profile_id], need).count(profile_id, query)
    sql = (
        "SELECT COUNT(*) FROM profile_events pe JOIN events e ON e.seq = pe.seq "
        "WHERE pe.profile_id = ? AND e.event = ?"
    )
    params: list[Any] = [profile_id, query.name]
    if query.since_us is not None:
        sql += " AND pe.ts >= ?"
        params.append(query.since_us)
    if query.until_us is not None:
        sql += " AND pe.ts <= ?"
        params.append(query.until_us)
    row = tx.one(sql, params)
    return int(row[0]) if row else 0


def event_counter(tx: Tx, profile_id: str) -> Callable[[EventQuery], int]:
    """A ``count_events`` callback for one person, reading inside ``tx``."""
    return lambda query: count_events(tx, profile_id, query)
