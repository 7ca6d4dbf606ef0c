"""The segment definitions a worker evaluates, cached and indexed by what they read.

Loaded once and kept until the one-row ``segment_revision`` counter (bumped by every change
to a definition, by any process) moves: a batch costs one primary-key read to check. The
index answers "which segments could this event change?" by event name, trait name and
consent purpose, and orders dynamic segments so that a segment is evaluated after the
segments its condition refers to.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from partitur.conditions import walk
from partitur.conditions.model import EventCondition
from partitur.errors import InvalidInput
from partitur.segments.eventcounts import Need
from partitur.segments.model import Segment, parse_segment
from partitur.store.db import Tx

log = logging.getLogger("partitur.segments")
_DEC = msgspec.json.Decoder()


@dataclass
class Definitions:
    revision: int
    segments: dict[str, Segment] = field(default_factory=dict)
    order: list[Segment] = field(default_factory=list)  # dynamic, dependencies first
    dependents: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_event: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_trait: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_consent: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    needs: dict[str, list[EventCondition]] = field(default_factory=dict)
    _counted: frozenset[str] | None = None

    @classmethod
    def build(cls, revision: int, segments: Iterable[Segment]) -> Definitions:
        defs = cls(revision)
        for seg in segments:
            defs.segments[seg.key] = seg
        for seg in defs.segments.values():
            if seg.refs is None or seg.condition is None:
                continue
            for name in seg.refs.events:
                defs.by_event[name].add(seg.key)
            for name in seg.refs.traits:
                defs.by_trait[name].add(seg.key)
            for purpose in seg.refs.consents:
                defs.by_consent[purpose].add(seg.key)
            for other in seg.refs.segments:
                defs.dependents[other].add(seg.key)
            nodes: list[object] = []
            walk(seg.condition, nodes)  # type: ignore[arg-type]
            defs.needs[seg.key] = [n for n in nodes if isinstance(n, EventCondition)]
        defs.order = _topological([s for s in defs.segments.values() if s.dynamic])
        return defs

    @property
    def dynamic_keys(self) -> set[str]:
        return {seg.key for seg in self.order}

    def affected(
        self, events: Iterable[str], traits: Iterable[str], consents: Iterable[str]
    ) -> set[str]:
        """The dynamic segments that these changes could change."""
        out: set[str] = set()
        for name in events:
            out |= self.by_event.get(name, set())
        for name in traits:
            out |= self.by_trait.get(name, set())
        for purpose in consents:
            out |= self.by_consent.get(purpose, set())
        return out

    def closure(self, keys: Iterable[str]) -> set[str]:
        """``keys`` and every dynamic segment that refers to them, directly or not."""
        out: set[str] = set()
        todo = list(keys)
        while todo:
            key = todo.pop()
            if key in out:
                continue
            out.add(key)
            todo.extend(self.dependents.get(key, ()))
        return {k for k in out if k in self.segments and self.segments[k].dynamic}

    @property
    def counted(self) -> frozenset[str]:
        """Event names some segment counts over all time without a property filter: their
        per-person totals are kept in ``segment_event_counts``."""
        found = self._counted
        if found is None:
            found = self._counted = frozenset(
                cond.event for conds in self.needs.values() for cond in conds
                if _total(cond))
        return found

    def need(self, keys: Iterable[str], now_us: int) -> Need:
        """The events that evaluating ``keys`` at ``now_us`` can ask about. An all-time test
        without a filter reads the person's stored total and only the events dated after
        now, not their whole history."""
        parts = []
        for key in keys:
            for cond in self.needs.get(key, ()):
                name = frozenset({cond.event})
                if _total(cond):
                    parts.append(Need(name, now_us + 1, False, name))
                    continue
                since = None if cond.within_us is None else now_us - cond.within_us
                parts.append(Need(name, since, bool(cond.where)))
        return Need.union(parts)

    def check_cycle(self, candidate: Segment) -> None:
        """:class:`InvalidInput` if ``candidate`` would make segments refer to each other in
        a circle, or refers to a segment that does not exist."""
        if candidate.refs is None:
            return
        for ref in sorted(candidate.refs.segments):
            if ref not in self.segments:
                raise InvalidInput(
                    f"condition: refers to segment {ref!r}, which does not exist",
                    details=[{"path": "condition", "message": f"unknown segment {ref!r}"}],
                )
        graph = {k: set(s.refs.segments) if s.refs else set() for k, s in self.segments.items()}
        graph[candidate.key] = set(candidate.refs.segments)
        path = _find_cycle(graph, candidate.key)
        if path:
            cycle = " -> ".join(path)
            raise InvalidInput(
                f"condition: segments would refer to each other in a circle: {cycle}",
                details=[{"path": "condition", "message": f"cycle {cycle}"}],
            )


def _total(cond: EventCondition) -> bool:
    return cond.within_us is None and not cond.where


def _find_cycle(graph: dict[str, set[str]], start: str) -> list[str] | None:
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def _topological(segments: list[Segment]) -> list[Segment]:
    by_key = {s.key: s for s in segments}
    done: set[str] = set()
    order: list[Segment] = []

    def visit(seg: Segment, active: set[str]) -> None:
        if seg.key in done or seg.key in active:
            return  # a cycle cannot be stored; if two writers raced into one, break it
        active.add(seg.key)
        for ref in sorted(seg.refs.segments if seg.refs else ()):
            if ref in by_key:
                visit(by_key[ref], active)
        active.discard(seg.key)
        done.add(seg.key)
        order.append(seg)

    for seg in sorted(segments, key=lambda s: s.key):
        visit(seg, set())
    return order


def read_revision(tx: Tx) -> int:
    row = tx.one("SELECT revision FROM segment_revision WHERE id = 1")
    return int(row[0]) if row else 0


def load_definitions(tx: Tx) -> Definitions:
    revision = read_revision(tx)
    segments = []
    for key, document, version in tx.execute("SELECT key, document, version FROM segments"):
        try:
            segments.append(parse_segment(_DEC.decode(document), version=int(version)))
        except (InvalidInput, msgspec.DecodeError):
            log.exception("stored segment %s cannot be read; it is skipped", key)
    return Definitions.build(revision, segments)


class DefinitionCache:
    """The current :class:`Definitions`, reloaded when the revision moves."""

    def __init__(self) -> None:
        self._defs: Definitions | None = None
        self._lock = threading.Lock()

    def get(self, tx: Tx) -> Definitions:
        revision = read_revision(tx)
        with self._lock:
            current = self._defs
        if current is not None and current.revision == revision:
            return current
        fresh = load_definitions(tx)
        with self._lock:
            self._defs = fresh
        return fresh
