"""The published journeys a process runs, cached and reloaded when a revision counter moves.

Every publish, pause, resume and archive bumps ``journey_revision``; each batch reads that one
row and reloads only when it changed. Published versions are immutable, so a parsed version is
kept for the life of the process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import msgspec

from partitur.journeys.model import Journey
from partitur.journeys.parse import parse_journey
from partitur.store.db import Tx

_DEC = msgspec.json.Decoder()


@dataclass
class Live:
    """Journeys by what starts them, and the status of each journey key."""

    revision: int = -1
    status: dict[str, str] = field(default_factory=dict)  # key -> live|paused|archived|draft
    current: dict[str, tuple[int, Journey]] = field(default_factory=dict)  # live/paused
    # by (call type, name) of what enters: ("track", "Signed Up"), ("page", "*"), ...
    by_event: dict[tuple[str, str], list[tuple[int, Journey]]] = field(default_factory=dict)
    by_segment: dict[tuple[str, bool], list[tuple[int, Journey]]] = field(default_factory=dict)
    scheduled: list[tuple[int, Journey]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.status

    @property
    def held(self) -> list[str]:
        """Journeys whose timers wait (paused)."""
        return sorted(k for k, s in self.status.items() if s == "paused")


class DefinitionCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, int], Journey] = {}
        self._live = Live()

    def version(self, tx: Tx, key: str, version: int) -> Journey | None:
        found = self._versions.get((key, version))
        if found is not None:
            return found
        row = tx.one("SELECT document FROM journey_versions WHERE journey = ? AND version = ?",
                     (key, version))
        if row is None:
            return None
        journey = parse_journey(_DEC.decode(row[0]))
        with self._lock:
            self._versions[(key, version)] = journey
        return journey

    def live(self, tx: Tx) -> Live:
        row = tx.one("SELECT revision FROM journey_revision WHERE id = 1")
        revision = int(row[0]) if row else 0
        current = self._live
        if current.revision == revision:
            return current
        live = Live(revision=revision)
        for key, status, version in tx.execute(
            "SELECT key, status, live_version FROM journeys"
        ):
            live.status[key] = status
            if status not in ("live", "paused") or version is None:
                continue
            journey = self.version(tx, key, int(version))
            if journey is None:
                continue
            pair = (int(version), journey)
            live.current[key] = pair
            if status != "live":
                continue
            trig = journey.trigger
            if trig.call is not None:
                live.by_event.setdefault(trig.call, []).append(pair)
            elif trig.kind in ("segment_entered", "segment_exited") and trig.segment:
                live.by_segment.setdefault(
                    (trig.segment, trig.kind == "segment_entered"), []).append(pair)
            elif trig.kind == "schedule":
                live.scheduled.append(pair)
        with self._lock:
            self._live = live
        return live

    def forget(self) -> None:
        with self._lock:
            self._live = Live()


def document_of(journey: Journey) -> dict[str, Any]:
    return dict(journey.document)
