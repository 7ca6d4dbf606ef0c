"""Journeys as the API and the command line see them: drafts, versions, status, stats, paths.

One instance per running Partitur (``services.extra["journeys"]``); it also carries what the
batch hook and the timer runner share (the definition cache, how effects are written, the
listeners that learn of new wake times).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from partitur.clock import iso
from partitur.errors import Conflict, NotFound
from partitur.journeys import store
from partitur.journeys.definitions import DefinitionCache
from partitur.journeys.engine import Halt, advance
from partitur.journeys.hook import JourneyHook
from partitur.journeys.parse import InvalidJourney, parse_journey
from partitur.journeys.validate import (
    graph_problems,
    raise_first,
    segment_problems,
    template_problems,
)
from partitur.store.db import Tx

if TYPE_CHECKING:
    from partitur.services import Services

log = logging.getLogger("partitur.journeys")
_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder()
ARCHIVE_BATCH = 1000


def _bump(tx: Tx) -> None:
    tx.execute("UPDATE journey_revision SET revision = revision + 1 WHERE id = 1")


class JourneyService:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.db = services.db
        self.dialect = services.db.dialect
        self.clock = services.clock
        self.cache = DefinitionCache()
        self.hook = JourneyHook(self)
        self.listeners: list[Callable[[list[tuple[int, str, int]]], None]] = []

    # -- what the hook and the timers share -------------------------------------------------
    def source_id(self, tx: Tx) -> str:
        """The ``partitur-journeys`` source that journey-written events come from, created
        in ``tx`` when missing (a fixed id, so a rolled-back creation is simply redone)."""
        tx.execute("INSERT INTO sources (id, name, created_at) VALUES (?, ?, ?) "
                   "ON CONFLICT (name) DO NOTHING",
                   ("src_journeys", store.SOURCE_NAME, self.clock.now_us()))
        row = tx.one("SELECT id FROM sources WHERE name = ?", (store.SOURCE_NAME,))
        assert row is not None
        return str(row[0])

    def effects(self) -> store.Effects:
        return store.Effects(append_events=self.services.events.append,
                             source_id=self.source_id, partitions=self.settings.partitions)

    def after_write(self, tx: Tx, outcome: store.Outcome) -> None:
        if not outcome.wakes or not self.listeners:
            return
        wakes = list(outcome.wakes)

        def tell() -> None:
            for listener in list(self.listeners):
                listener(wakes)

        after = getattr(tx, "after_commit", None)
        if isinstance(after, list):
            after.append(tell)
        else:  # PostgreSQL: a hint only; the runner claims from the store
            tell()

    # -- definitions --------------------------------------------------------------------------
    def put(self, doc: Any, key: str | None = None) -> tuple[dict[str, Any], bool]:
        """Save a draft (refused when its graph is invalid); (description, created?)."""
        journey = parse_journey(doc, key=key)
        raise_first(graph_problems(journey) + template_problems(journey))
        now = self.clock.now_us()
        with self.db.transaction() as tx:
            warnings = [p.message for p in
                        template_problems(journey, tx) + segment_problems(journey, tx)]
            row = tx.one("SELECT status FROM journeys WHERE key = ?", (journey.key,))
            body = _ENC.encode(journey.document).decode()
            if row is None:
                tx.execute(
                    "INSERT INTO journeys (key, name, draft, status, live_version, created_at, "
                    "updated_at) VALUES (?, ?, ?, 'draft', NULL, ?, ?)",
                    (journey.key, journey.name, body, now, now),
                )
            else:
                tx.execute("UPDATE journeys SET name = ?, draft = ?, updated_at = ? "
                           "WHERE key = ?", (journey.name, body, now, journey.key))
            described = self._describe(tx, journey.key)
        described["warnings"] = warnings
        return described, row is None

    def _row(self, tx: Tx, key: str) -> tuple[Any, ...]:
        row = tx.one("SELECT key, name, draft, status, live_version, created_at, updated_at "
                     "FROM journeys WHERE key = ?", (key,))
        if row is None:
            raise NotFound(f"no journey {key!r}")
        return row

    def _describe(self, tx: Tx, key: str) -> dict[str, Any]:
        key, name, draft, status, live_version, created, updated = self._row(tx, key)
        versions = tx.execute("SELECT version, published_at FROM journey_versions "
                              "WHERE journey = ? ORDER BY version", (key,))
        active = tx.one("SELECT COUNT(*) FROM journey_instances WHERE journey = ? "
                        "AND status = 'active'", (key,))
        return {
            "key": key, "name": name, "status": status,
            "live_version": None if live_version is None else int(live_version),
            "versions": [{"version": int(v), "published_at": iso(int(at))}
                         for v, at in versions],
            "active": int(active[0]) if active else 0,
            "created_at": iso(int(created)), "updated_at": iso(int(updated)),
            "draft": _DEC.decode(draft),
        }

    def get(self, key: str) -> dict[str, Any]:
        with self.db.read() as tx:
            return self._describe(tx, key)

    def all(self) -> list[dict[str, Any]]:
        with self.db.read() as tx:
            keys = [r[0] for r in tx.execute("SELECT key FROM journeys ORDER BY key")]
            out = []
            for key in keys:
                item = self._describe(tx, key)
                item.pop("draft")
                out.append(item)
            return out

    def version_document(self, key: str, version: int | None = None) -> dict[str, Any]:
        with self.db.read() as tx:
            _, _, draft, _, _live, _, _ = self._row(tx, key)
            if version is None:
                return dict(_DEC.decode(draft))
            row = tx.one("SELECT document FROM journey_versions WHERE journey = ? AND "
                         "version = ?", (key, version))
            if row is None:
                raise NotFound(f"journey {key!r} has no version {version}")
            return dict(_DEC.decode(row[0]))

    # -- publishing ---------------------------------------------------------------------------
    def publish(self, key: str, *, migrate: bool = False, dry_run: bool = False
                ) -> dict[str, Any]:
        """Publish the draft as a new immutable version. The report lists, per older version,
        how many people wait in each step that changed or disappeared; with ``migrate`` the
        people whose step still exists move to the new version (same step id)."""
        now = self.clock.now_us()
        with self.db.transaction() as tx:
            _, _, draft, status, _live_version, _, _ = self._row(tx, key)
            if status == "archived":
                raise Conflict(f"journey {key!r} is archived")
            journey = parse_journey(_DEC.decode(draft), key=key)
            raise_first(graph_problems(journey) + template_problems(journey, tx)
                        + segment_problems(journey, tx))
            last = tx.one("SELECT MAX(version) FROM journey_versions WHERE journey = ?", (key,))
            version = (int(last[0]) if last and last[0] is not None else 0) + 1
            new_steps = {s["id"]: s for s in journey.document["steps"]}
            report = []
            for old_version, step, waiting in tx.execute(
                "SELECT version, step, COUNT(*) FROM journey_instances WHERE journey = ? AND "
                "status = 'active' GROUP BY version, step ORDER BY version, step", (key,)
            ):
                old = self.cache.version(tx, key, int(old_version))
                old_doc = next((s for s in (old.document["steps"] if old else [])
                                if s["id"] == step), None)
                change = ("removed" if step not in new_steps
                          else "changed" if old_doc != new_steps[step] else "unchanged")
                report.append({"version": int(old_version), "step": step,
                               "waiting": int(waiting), "change": change})
            result: dict[str, Any] = {"journey": key, "version": version, "report": report,
                                      "migrated": 0, "dry_run": dry_run}
            if dry_run:
                tx.execute("SELECT 1")  # nothing written
                return result
            tx.execute("INSERT INTO journey_versions (journey, version, document, published_at)"
                       " VALUES (?, ?, ?, ?)",
                       (key, version, _ENC.encode(journey.document).decode(), now))
            new_status = "paused" if status == "paused" else "live"
            tx.execute("UPDATE journeys SET status = ?, live_version = ?, updated_at = ? "
                       "WHERE key = ?", (new_status, version, now, key))
            if migrate:
                movable = [r["step"] for r in report if r["change"] != "removed"]
                for step_id in sorted(set(movable)):
                    rows = tx.execute(
                        "UPDATE journey_instances SET version = ?, updated_at = ? WHERE "
                        "journey = ? AND status = 'active' AND step = ? AND version <> ? "
                        "RETURNING id", (version, now, key, step_id, version))
                    result["migrated"] += len(rows)
            tx.execute("DELETE FROM journey_schedules WHERE journey = ?", (key,))
            _bump(tx)
        return result

    def set_status(self, key: str, action: str) -> dict[str, Any]:
        now = self.clock.now_us()
        with self.db.transaction() as tx:
            _, _, _, status, live_version, _, _ = self._row(tx, key)
            target = {"pause": "paused", "resume": "live", "archive": "archived"}[action]
            if status == "archived":
                raise Conflict(f"journey {key!r} is archived")
            if live_version is None and action != "archive":
                raise Conflict(f"journey {key!r} has no published version; publish it first")
            tx.execute("UPDATE journeys SET status = ?, updated_at = ? WHERE key = ?",
                       (target, now, key))
            if action == "resume":  # firings missed while paused are skipped, not caught up
                tx.execute("DELETE FROM journey_schedules WHERE journey = ?", (key,))
            _bump(tx)
        halted = self._halt_all(key, "journey archived") if action == "archive" else 0
        if action == "resume":  # wake this process's timer runner: held waits fire now
            for listener in list(self.listeners):
                listener([(now, "", 0)])
        described = self.get(key)
        described["halted"] = halted
        return described

    def _halt_all(self, key: str, reason: str) -> int:
        total = 0
        for _ in range(100_000):
            now = self.clock.now_us()
            with self.db.transaction() as tx:
                lock = " FOR UPDATE" if self.dialect == "postgres" else ""
                rows = tx.execute(f"SELECT {store.COLUMNS} FROM journey_instances WHERE "
                                  f"journey = ? AND status = 'active' LIMIT ?{lock}",
                                  (key, ARCHIVE_BATCH))
                steps = []
                for row in rows:
                    inst = store.from_row(row)
                    journey = self.cache.version(tx, key, inst.version)
                    if journey is not None:
                        steps.append((advance(journey, inst, Halt(reason), now), inst))
                store.apply(tx, steps, now, self.effects())
            total += len(rows)
            if len(rows) < ARCHIVE_BATCH:
                break
        return total

    # -- reading ------------------------------------------------------------------------------
    def stats(self, key: str) -> dict[str, Any]:
        with self.db.read() as tx:
            _, _, draft, status, live_version, _, _ = self._row(tx, key)
            counters: dict[tuple[str, str], int] = {
                (step, metric): int(value) for step, metric, value in tx.execute(
                    "SELECT step, metric, value FROM journey_stats WHERE journey = ?", (key,))
            }
            waiting = dict(tx.execute(
                "SELECT step, COUNT(*) FROM journey_instances WHERE journey = ? AND "
                "status = 'active' GROUP BY step", (key,)))
            doc = self._current_doc(tx, key, live_version, draft)
        order = [s["id"] for s in doc.get("steps", [])]
        seen = {step for step, _ in counters if step} | set(waiting)
        order += sorted(s for s in seen if s not in order)
        steps = []
        for step in order:
            entry: dict[str, Any] = {
                "step": step,
                "entered": counters.get((step, "entered"), 0),
                "waiting": int(waiting.get(step, 0)),
                "exited": counters.get((step, "exited"), 0),
                "converted": counters.get((step, "converted"), 0),
            }
            arms = {m[4:]: v for (s, m), v in counters.items() if s == step
                    and m.startswith("arm:")}
            if arms:
                entry["arms"] = {
                    arm: {"entered": n, "converted": counters.get((step, f"converted:{arm}"), 0)}
                    for arm, n in sorted(arms.items())
                }
            steps.append(entry)
        entered = counters.get(("", "entered"), 0)
        converted = counters.get(("", "converted"), 0)
        return {
            "journey": key, "status": status,
            "entered": entered, "active": sum(int(v) for v in waiting.values()),
            "completed": counters.get(("", "completed"), 0),
            "exited": counters.get(("", "exited"), 0),
            "converted": converted,
            "conversion_rate": round(converted / entered, 4) if entered else None,
            "steps": steps,
        }

    @staticmethod
    def _current_doc(tx: Tx, key: str, live_version: Any, draft: str) -> dict[str, Any]:
        if live_version is not None:
            row = tx.one("SELECT document FROM journey_versions WHERE journey = ? AND "
                         "version = ?", (key, live_version))
            if row:
                return dict(_DEC.decode(row[0]))
        return dict(_DEC.decode(draft))

    @staticmethod
    def of_profile(tx: Tx, profile_id: str, limit: int = 100) -> dict[str, Any]:
        """Where a person is in each journey, and the path that led there, with reasons and
        the delivery status of every message."""
        from partitur.channels import delivery_status

        rows = tx.execute(f"SELECT {store.COLUMNS} FROM journey_instances WHERE profile_id = ?"
                          " ORDER BY entered_at DESC, id LIMIT ?", (profile_id, limit))
        instances = [store.from_row(r) for r in rows]
        paths = store.path_of(tx, [i.id for i in instances])
        keys = [e["message_key"] for p in paths.values() for e in p if "message_key" in e]
        statuses = delivery_status(tx, keys) if keys else {}
        out = []
        for inst in instances:
            path = paths.get(inst.id, [])
            for entry in path:
                key = entry.get("message_key")
                if key:
                    found = statuses.get(key)
                    entry["delivery"] = (
                        {k: found.get(k) for k in ("status", "reason", "attempts", "sent_at",
                                                   "provider_id", "due_at")}
                        if found else {"status": "unknown"})
            out.append({
                "journey": inst.journey, "version": inst.version, "entry": inst.entry,
                "instance_id": inst.id, "status": inst.status, "step": inst.step,
                "waiting_for": inst.waiting_for,
                "wake_at": iso(inst.wake_at) if inst.wake_at is not None else None,
                "entered_at": iso(inst.entered_at),
                "ended_at": iso(inst.ended_at) if inst.ended_at is not None else None,
                "exit_reason": inst.exit_reason,
                "converted_at": iso(inst.converted_at) if inst.converted_at else None,
                "arms": dict(inst.context.get("arms") or {}),
                "path": path,
            })
        return {"profile_id": profile_id, "journeys": out}


def check_document(doc: Any, tx: Tx | None = None) -> list[InvalidJourney]:
    """Every problem with a document, without saving it (for ``journeys validate``)."""
    try:
        journey = parse_journey(doc)
    except InvalidJourney as exc:
        return [exc]
    return graph_problems(journey) + template_problems(journey, tx) + (
        segment_problems(journey, tx) if tx is not None else [])
