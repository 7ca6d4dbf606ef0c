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
from partitur.segments.sql import id_chunks
from partitur.store.db import Tx

_DEC = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class Need:
    """What to load: these event names, from ``since_us`` (None: all time), with or without
    properties."""

    names: frozenset[str]
    since_us: int | None
    properties: bool

    @staticmethod
    def union(needs: Iterable[Need]) -> Need:
        names: set[str] = set()
        since: int | None = 0
        first = True
        props = False
        for need in needs:
            names |= need.names
            props = props or need.properties
            if need.since_us is None or since is None:
                since = None
            else:
                since = need.since_us if first else min(since, need.since_us)
            first = False
        return Need(frozenset(names), None if first else since, props)


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
        self.loaded_rows = 0

    @classmethod
    def load(
        cls, tx: Tx, profile_ids: Collection[str], need: Need, dialect: str = "sqlite"
    ) -> EventCounts:
        counts = cls()
        if not need.names or not profile_ids:
            return counts
        names = sorted(need.names)
        body = "e.body" if need.properties else "NULL"
        since = "" if need.since_us is None else " AND pe.ts >= ?"
        for who, id_params in id_chunks(dialect, "pe.profile_id", sorted(profile_ids)):
            for what, name_params in id_chunks(dialect, "e.event", names):
                params: list[Any] = [*id_params, *name_params]
                if need.since_us is not None:
                    params.append(need.since_us)
                rows = tx.execute(
                    f"SELECT pe.profile_id, pe.ts, e.event, {body} "
                    "FROM profile_events pe JOIN events e ON e.seq = pe.seq "
                    f"WHERE {who} AND {what}{since}",
                    params,
                )
                for profile_id, ts, name, text in rows:
                    counts._rows[profile_id][name].append(_Row(name, int(ts), text))
                counts.loaded_rows += len(rows)
        for pid, by_name in counts._rows.items():
            for name, person_rows in by_name.items():
                person_rows.sort(key=lambda r: r.ts)
                counts._times[(pid, name)] = [r.ts for r in person_rows]
        return counts

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
