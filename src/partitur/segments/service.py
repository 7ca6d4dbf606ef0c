"""Segments as the API and the command line see them: define, list, inspect, delete, and the
members of static lists. One instance per running Partitur (``services.extra["segments"]``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from partitur.clock import iso
from partitur.errors import Conflict, InvalidInput, NotFound
from partitur.profiles import store as profile_store
from partitur.profiles.state import ProfileState
from partitur.segments import events as segment_events
from partitur.segments.definitions import DefinitionCache, load_definitions
from partitur.segments.engine import Cause, Change, evaluate_people, write
from partitur.segments.hook import SegmentHook, as_notes, drop_totals, unfold_static
from partitur.segments.model import check_key, parse_segment
from partitur.segments.schema import check_schema
from partitur.segments.usage import journeys_using
from partitur.store.db import Tx, chunks
from partitur.worker.hooks import BatchContext

if TYPE_CHECKING:
    from partitur.services import Services

log = logging.getLogger("partitur.segments")
_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder()
MAX_STATIC_ADD = 10_000

_SEGMENT_COLS = (
    "key, document, version, created_at, updated_at, backfill_status, backfill_done, "
    "backfill_total, backfill_started_at, backfill_finished_at, backfill_error"
)


def _when(us: Any) -> str | None:
    return None if us is None else iso(int(us))


class SegmentService:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.cache = DefinitionCache()
        self.hook = SegmentHook(self)
        self.kick = threading.Event()  # wakes the segment runner (a backfill to do)

    # -- definitions ---------------------------------------------------------------------

    def put(self, doc: Any, key: str | None = None) -> tuple[dict[str, Any], bool]:
        """Create or replace a segment; (its description, created?)."""
        seg = parse_segment(doc, key=key)
        check_schema(doc)  # the published schema is the contract: never store what it refuses
        now = self.services.clock.now_us()
        with self.services.db.transaction() as tx:
            # Serialises every definition change (and so the cycle check) across processes.
            tx.execute("UPDATE segment_revision SET revision = revision + 1 WHERE id = 1")
            defs = load_definitions(tx)
            defs.check_cycle(seg)
            old = defs.segments.get(seg.key)
            row = tx.one("SELECT version, kind FROM segments WHERE key = ?", (seg.key,))
            if row is not None and row[1] != seg.kind:
                raise Conflict(
                    f"segment {seg.key!r} is {row[1]}; a segment's type cannot change "
                    "(delete it and create it again)",
                    details=[{"path": "type", "message": f"stored as {row[1]}"}],
                )
            document = _ENC.encode(seg.document()).decode()
            if row is None:
                tx.execute(
                    "INSERT INTO segments (key, name, description, kind, document, version, "
                    "created_at, updated_at, backfill_status) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
                    (seg.key, seg.name, seg.description, seg.kind, document, now, now,
                     "pending" if seg.dynamic else "done"),
                )
            else:
                tx.execute(
                    "UPDATE segments SET name = ?, description = ?, document = ?, "
                    "version = version + 1, updated_at = ? WHERE key = ?",
                    (seg.name, seg.description, document, now, seg.key),
                )
            if seg.dynamic and (old is None or old.condition != seg.condition):
                total = tx.one("SELECT COUNT(*) FROM profiles WHERE merged_into IS NULL")
                tx.execute(
                    "UPDATE segments SET backfill_status = 'pending', backfill_cursor = NULL, "
                    "backfill_done = 0, backfill_total = ?, backfill_started_at = NULL, "
                    "backfill_finished_at = NULL, backfill_error = NULL WHERE key = ?",
                    (int(total[0]) if total else 0, seg.key),
                )
            described = self._describe(tx, seg.key)
        self.kick.set()
        return described, row is None

    def get(self, key: str) -> dict[str, Any]:
        with self.services.db.read() as tx:
            return self._describe(tx, key)

    def all(self) -> list[dict[str, Any]]:
        with self.services.db.read() as tx:
            sizes = dict(
                tx.execute("SELECT segment, COUNT(*) FROM segment_members GROUP BY segment")
            )
            rows = tx.execute(f"SELECT {_SEGMENT_COLS} FROM segments ORDER BY key")
            return [self._row(row, int(sizes.get(row[0], 0))) for row in rows]

    def delete(self, key: str) -> int:
        """Delete a segment nothing uses any more. Its members exit (recorded with cause
        ``deleted`` and handed to the hooks after ours); the number of them is returned."""
        now = self.services.clock.now_us()
        with self.services.db.transaction() as tx:
            tx.execute("UPDATE segment_revision SET revision = revision + 1 WHERE id = 1")
            defs = load_definitions(tx)
            if key not in defs.segments:
                raise NotFound(f"no segment {key!r}")
            users = sorted(defs.dependents.get(key, ()))
            if users:
                raise Conflict(f"segment {key!r} is used by segment {', '.join(users)}; change "
                               "those first", details=[{"segment": k} for k in users])
            journeys = journeys_using(tx, key)
            if journeys:
                named = ", ".join(dict.fromkeys(
                    f"{u.journey} (version {u.version}, {u.where})" for u in journeys))
                raise Conflict(
                    f"segment {key!r} is used by journey {named}; archive those journeys or "
                    "publish versions that do not use it first",
                    details=[{"journey": u.journey, "version": u.version, "path": u.where}
                             for u in journeys],
                )
            tx.execute("DELETE FROM segments WHERE key = ?", (key,))
            tx.execute("DELETE FROM segment_due WHERE segment = ?", (key,))
            tx.execute("DELETE FROM segment_static_merged WHERE segment = ?", (key,))
            return self._exit_all(tx, key, now)

    def _exit_all(self, tx: Tx, key: str, now: int, page: int = 5000) -> int:
        """Every member of ``key`` exits, a page at a time (cause ``deleted``)."""
        seen = _ENC.encode({"segment deleted": key}).decode()
        total = 0
        for _ in range(100_000_000 // page):
            ids = [str(r[0]) for r in tx.execute(
                "SELECT profile_id FROM segment_members WHERE segment = ? "
                "ORDER BY profile_id LIMIT ?", (key, page))]
            if not ids:
                break
            write(tx, [], [(key, p) for p in ids],
                  [(p, key, 0, now, "deleted", seen) for p in ids],
                  dialect=self.services.db.dialect)
            changes = [Change(p, key, False, now, "deleted", {"segment deleted": key})
                       for p in ids]
            self.notify(tx, now, profile_store.load(tx, ids), changes)
            total += len(ids)
        return total

    def _describe(self, tx: Tx, key: str) -> dict[str, Any]:
        row = tx.one(f"SELECT {_SEGMENT_COLS} FROM segments WHERE key = ?", (check_key(key),))
        if row is None:
            raise NotFound(f"no segment {key!r}")
        size = tx.one("SELECT COUNT(*) FROM segment_members WHERE segment = ?", (key,))
        return self._row(row, int(size[0]) if size else 0)

    @staticmethod
    def _row(row: Sequence[Any], size: int) -> dict[str, Any]:
        (_key, document, version, created, updated, status, done, total, started, finished,
         error) = row
        doc = _DEC.decode(document)
        out = {
            **doc,
            "version": int(version),
            "size": size,
            "created_at": _when(created),
            "updated_at": _when(updated),
        }
        if doc.get("type") == "dynamic":
            out["backfill"] = {
                "status": status,
                "done": int(done),
                "total": int(total),
                "started_at": _when(started),
                "finished_at": _when(finished),
                "error": error,
            }
        return out

    # -- members -------------------------------------------------------------------------

    def _exists(self, tx: Tx, key: str) -> str:
        row = tx.one("SELECT kind FROM segments WHERE key = ?", (check_key(key),))
        if row is None:
            raise NotFound(f"no segment {key!r}")
        return str(row[0])

    def members(self, key: str, *, after: str | None, limit: int) -> dict[str, Any]:
        with self.services.db.read() as tx:
            self._exists(tx, key)
            rows = tx.execute(
                "SELECT profile_id, since FROM segment_members WHERE segment = ? "
                "AND profile_id > ? ORDER BY profile_id LIMIT ?",
                (key, after or "", limit + 1),
            )
        page = rows[:limit]
        return {
            "segment": key,
            "members": [{"profile_id": p, "since": iso(int(s))} for p, s in page],
            "next": page[-1][0] if len(rows) > limit else None,
        }

    def iter_members(self, key: str, page: int = 2000) -> Iterable[list[tuple[Any, ...]]]:
        """Pages of ``(profile_id, since, user_id, email)``, for the CSV export."""
        with self.services.db.read() as tx:
            self._exists(tx, key)
        after = ""
        for _ in range(100_000_000 // page):
            with self.services.db.read() as tx:
                rows = tx.execute(
                    "SELECT profile_id, since FROM segment_members WHERE segment = ? "
                    "AND profile_id > ? ORDER BY profile_id LIMIT ?",
                    (key, after, page),
                )
                if not rows:
                    return
                idents: dict[tuple[str, str], str] = {}
                ids = [r[0] for r in rows]
                marks = ",".join("?" * len(ids))
                for pid, id_type, value in tx.execute(
                    "SELECT profile_id, id_type, id_value FROM identifiers WHERE profile_id IN "
                    f"({marks}) AND id_type IN ('user_id', 'email') ORDER BY first_seen",
                    ids,
                ):
                    idents.setdefault((pid, id_type), value)
            yield [
                (pid, iso(int(since)), idents.get((pid, "user_id"), ""),
                 idents.get((pid, "email"), ""))
                for pid, since in rows
            ]
            after = rows[-1][0]
            if len(rows) < page:
                return

    def change_static(self, key: str, profile_ids: Any, *, add: bool) -> dict[str, Any]:
        """Add people to (or remove them from) a static segment. Merged-away ids count as
        the profile they were merged into; unknown ids are reported, not stored."""
        if (not isinstance(profile_ids, list) or not all(isinstance(p, str) for p in profile_ids)
                or len(profile_ids) > MAX_STATIC_ADD):
            raise InvalidInput(
                f"profile_ids: a list of at most {MAX_STATIC_ADD} profile id strings",
                details=[{"path": "profile_ids", "message": "a list of profile id strings"}],
            )
        now = self.services.clock.now_us()
        with self.services.db.transaction() as tx:
            if self._exists(tx, key) != "static":
                raise Conflict(f"segment {key!r} is dynamic; its members follow its condition")
            live: dict[str, str] = {}
            unknown: list[str] = []
            for pid in dict.fromkeys(profile_ids):
                resolved, _ = profile_store.resolve_id(tx, pid)
                if resolved is None:
                    unknown.append(pid)
                else:
                    live[pid] = resolved
            targets = sorted(set(live.values()))
            current: set[str] = set()
            for chunk in chunks(targets):
                marks = ",".join("?" * len(chunk))
                current.update(r[0] for r in tx.execute(
                    f"SELECT profile_id FROM segment_members WHERE segment = ? AND profile_id "
                    f"IN ({marks})", [key, *chunk]))
            moving = [p for p in targets if (p not in current) == add]
            changes = [Change(p, key, add, now, "static", None) for p in moving]
            if not add:  # removed from the list: an unmerge does not bring them back
                for chunk in chunks(targets):
                    marks = ",".join("?" * len(chunk))
                    tx.execute(f"DELETE FROM segment_static_merged WHERE segment = ? AND "
                               f"survivor IN ({marks})", [key, *chunk])
            write(
                tx,
                [(key, p, now) for p in moving] if add else [],
                [] if add else [(key, p) for p in moving],
                [(p, key, int(add), now, "static", None) for p in moving],
                dialect=self.services.db.dialect,
            )
            people = profile_store.load(tx, moving)
            defs = self.cache.get(tx)
            dependents = defs.closure([key]) - {key}
            if dependents and moving:
                outcome = evaluate_people(
                    tx, defs, people, {p: dependents for p in moving}, now, "static",
                    self.services.db.dialect,
                )
                changes.extend(outcome.changes)
            self.notify(tx, now, people, changes)
        return {
            "segment": key,
            "added" if add else "removed": len(moving),
            "unchanged": len(targets) - len(moving),
            "unknown": unknown,
        }

    def unmerged(self, tx: Tx, survivor: str, restored: str) -> list[Change]:
        """After an unmerge, inside its transaction: the static lists ``restored`` had before
        the merge are its own again (``survivor`` keeps only those it had itself), then every
        dynamic segment is evaluated afresh for both."""
        now = self.services.clock.now_us()
        changes = unfold_static(tx, survivor, restored, now)
        if changes:
            self.notify(tx, now, profile_store.load(tx, [survivor, restored]), changes)
        return changes + self.reevaluate(tx, [survivor, restored], "unmerge")

    def reevaluate(self, tx: Tx, profile_ids: Sequence[str], cause: Cause) -> list[Change]:
        """Evaluate every dynamic segment afresh for these people (after their profiles were
        rebuilt, e.g. by an unmerge), inside ``tx``; write and hand on the changes."""
        now = self.services.clock.now_us()
        drop_totals(tx, sorted(set(profile_ids)))  # their timelines changed
        people = profile_store.load(tx, sorted(set(profile_ids)))
        defs = self.cache.get(tx)
        everything = defs.dynamic_keys
        outcome = evaluate_people(tx, defs, people, {p: everything for p in people}, now,
                                  cause, self.services.db.dialect)
        self.notify(tx, now, people, outcome.changes)
        return outcome.changes

    def notify(
        self, tx: Tx, now: int, people: dict[str, ProfileState], changes: list[Change],
        *, hand_on: bool = True,
    ) -> None:
        """Record changes made outside the profile worker as events, and (``hand_on``) hand
        them to the hooks after ours (journeys)."""
        if not changes:
            return
        defs = self.cache.get(tx)
        names = {k: seg.name for k, seg in defs.segments.items()}
        segment_events.record(tx, self.services, changes, names)
        if not hand_on:
            return
        hooks = self.services.batch_hooks
        later = hooks[hooks.index(self.hook) + 1 :] if self.hook in hooks else []
        if not later:
            return
        batch = BatchContext(tx=tx, now_us=now, events=[], profiles=people, merges=[],
                             changes=list(as_notes(changes)))
        for hook in later:
            hook(batch)

    # -- a person's segments -------------------------------------------------------------

    @staticmethod
    def of_profile(tx: Tx, profile_id: str, history_limit: int = 200) -> dict[str, Any]:
        rows = tx.execute(
            "SELECT m.segment, m.since, s.name, s.kind FROM segment_members m "
            "LEFT JOIN segments s ON s.key = m.segment WHERE m.profile_id = ? "
            "ORDER BY m.segment",
            (profile_id,),
        )
        history = tx.execute(
            "SELECT segment, entered, at, cause, seen FROM segment_history "
            "WHERE profile_id = ? ORDER BY id DESC LIMIT ?",
            (profile_id, history_limit),
        )
        return {
            "profile_id": profile_id,
            "segments": [
                {"key": k, "name": name, "type": kind, "since": iso(int(since))}
                for k, since, name, kind in rows
            ],
            "history": [
                {"segment": seg, "entered": bool(entered), "at": iso(int(at)), "cause": cause,
                 "seen": _DEC.decode(seen) if seen else None}
                for seg, entered, at, cause, seen in history
            ],
        }
