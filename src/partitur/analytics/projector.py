"""The projector: processed events to Parquet, exactly once, in its own thread.

One cycle, under the directory lock (:class:`~partitur.analytics.store.ParquetStore`):

1. apply erasures recorded by privacy (rewrite the files that hold those people);
2. follow unmerges (events go back to the restored profile: rewrite their rows);
3. write the alias table if merges changed it;
4. flush the outbox: **claim** rows (``file`` set to the new file's name, committed), write
   the file, add it to the manifest (the commit point), delete the claimed rows. After a crash
   the claimed rows are found again: if the manifest lists their file they are deleted, else
   the file is written again from the same rows. Each event lands in exactly one file;
5. compact small files (tiers of similar size, so each row is rewritten a few times at most)
   and delete files retired long enough ago.

Nothing here runs inside the worker's transaction, so the worker never waits for Parquet.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from partitur.analytics import rewrite
from partitur.analytics.columns import to_row, to_table
from partitur.analytics.duck import connect
from partitur.analytics.store import FileInfo, Manifest, ParquetStore, wall
from partitur.store.db import chunks

if TYPE_CHECKING:
    from partitur.services import Services

log = logging.getLogger("partitur.analytics")
COMPACT_FILES = 32  # small files that trigger a compaction before its interval
TIER_BASE = 1000  # rows of the smallest tier
TIER_FANIN = 4  # files of one tier merged into one of the next
CONVERT_ROWS = 5000  # events read and converted at a time


class Projector:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.store = ParquetStore(self.settings.analytics_path)
        self._duck: Any = None
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_compact = wall()
        self._last_alias = 0.0  # when the alias file was last written
        self.written = 0  # events written to Parquet by this projector
        self.cycles = 0
        self.idle = threading.Event()

    # -- running ---------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="partitur-analytics",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        self.close()

    def close(self) -> None:
        if self._duck is not None:
            self._duck.close()
            self._duck = None

    def kick(self) -> None:
        """Run a cycle now instead of at the next interval."""
        self._kick.set()

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                busy = self.cycle()
                backoff = 1.0
            except Exception:
                log.exception("analytics projector cycle failed; retrying in %.0fs", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            if busy:
                continue
            self.idle.set()
            self._kick.wait(self.settings.analytics_flush_seconds)
            self._kick.clear()
            self.idle.clear()

    @property
    def duck(self) -> Any:
        if self._duck is None:
            # Compaction sorts up to a million rows: it spills to disk rather than hold
            # the query limit's worth of memory in the process that runs the worker too.
            self._duck = connect(threads=1,
                                 memory_limit=self.settings.analytics_projector_memory_limit,
                                 temp_dir=self.store.root / ".duckdb-tmp")
        return self._duck

    # -- one cycle -------------------------------------------------------------------------
    def cycle(self, *, compact: bool | None = None) -> bool:
        """One pass; True when a full batch was written (more may be waiting)."""
        with self.store.locked():
            manifest, _ = self._erasures(self.store.manifest())
            manifest = self._unmerges(manifest)
            # The alias table is written whole, and merges come with most batches under load:
            # in the background at most every analytics_alias_seconds (explicit cycles always).
            if compact is not None or (wall() - self._last_alias
                                       >= self.settings.analytics_alias_seconds):
                manifest = self._aliases(manifest)
            manifest, full = self._flush(manifest)
            now = wall()
            due = now - self._last_compact >= self.settings.analytics_compact_seconds
            small = sum(1 for f in manifest.files if f.rows < TIER_BASE * TIER_FANIN)
            if compact or (compact is None and (due or small >= COMPACT_FILES)):
                manifest = self._compact(manifest, force=bool(compact) or due)
                self._last_compact = now
            collected = self.store.collect(manifest, now=now, grace=self._grace())
            if collected.retired != manifest.retired:
                self.store.commit(collected)
        self.cycles += 1
        return full

    def apply_erasures(self) -> None:
        """Remove the people privacy erased from the files now (not at the next cycle)."""
        with self.store.locked():
            self._erasures(self.store.manifest())

    def flush(self) -> int:
        """Write everything processed so far (tests, the CLI); returns events written."""
        before = self.written
        for _ in range(100_000):
            if not self.cycle(compact=False):
                break
        return self.written - before

    def _grace(self) -> float:
        return self.settings.analytics_query_timeout + 30.0

    # -- outbox to files ---------------------------------------------------------------------
    def _flush(self, manifest: Manifest) -> tuple[Manifest, bool]:
        db = self.services.db
        limit = self.settings.analytics_batch
        full = True  # a claim left by a crash, or a full batch: there may be more to do
        with db.transaction() as tx:
            claimed = tx.one("SELECT file FROM analytics_outbox WHERE file IS NOT NULL LIMIT 1")
            if claimed is not None:
                name = str(claimed[0])
            else:
                rows = tx.execute("SELECT seq FROM analytics_outbox ORDER BY seq LIMIT ?",
                                  (limit,))
                if not rows:
                    return manifest, False
                full = len(rows) >= limit
                lo, hi = int(rows[0][0]), int(rows[-1][0])
                name = f"e-{lo:020d}-{hi:020d}.parquet"
                tx.execute(
                    "UPDATE analytics_outbox SET file = ? WHERE file IS NULL AND seq >= ? "
                    "AND seq <= ?",
                    (name, lo, hi),
                )
        if any(f.name == name for f in manifest.files):  # written before a crash
            self._release(name)
            return manifest, True
        with db.read() as tx:
            picked = tx.execute("SELECT seq, profile_id FROM analytics_outbox WHERE file = ?",
                                (name,))
            owner = {int(s): str(p) for s, p in picked}
            # A slice at a time: the bodies and their Python rows of one slice, not of the
            # whole batch, are alive at once (Arrow holds the rest far more compactly).
            tables = []
            for seqs in chunks(sorted(owner), CONVERT_ROWS):
                out = []
                for row in self.services.events.by_seqs(tx, seqs):
                    converted = to_row(row, owner[int(row[0])])
                    if converted is not None:
                        out.append(converted)
                    else:
                        log.error("event %s has an unreadable body; not projected", row[0])
                if out:
                    tables.append(to_table(out))
        rows = sum(t.num_rows for t in tables)
        if rows:
            table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
            info = self.store.write_events(name, table, self.services.clock.now_us())
            manifest = self.store.commit(replace(manifest, files=(*manifest.files, info)))
        self._release(name)
        self.written += rows
        return manifest, full

    def _release(self, name: str) -> None:
        with self.services.db.transaction() as tx:
            tx.execute("DELETE FROM analytics_outbox WHERE file = ?", (name,))

    # -- aliases -----------------------------------------------------------------------------
    def _aliases(self, manifest: Manifest, *, at_once: bool = False) -> Manifest:
        with self.services.db.read() as tx:
            row = tx.one("SELECT value FROM analytics_state WHERE key = 'alias_version'")
            version = int(row[0]) if row else 0
            if version == manifest.alias_version:
                return manifest
            pairs = [(str(m), str(s)) for m, s in
                     tx.execute("SELECT merged, survivor FROM analytics_alias ORDER BY merged")]
        old = manifest.aliases
        self._last_alias = wall()
        name = self.store.write_aliases(manifest.version + 1, pairs) if pairs else None
        manifest = replace(manifest, aliases=name, alias_version=version)
        if old and old != name:
            manifest = self.store.retire(manifest, [f"aliases/{old}"], now=wall(),
                                         at_once=at_once)
        return self.store.commit(manifest)

    # -- erasure -----------------------------------------------------------------------------
    def _erasures(self, manifest: Manifest) -> tuple[Manifest, bool]:
        with self.services.db.read() as tx:
            ids = [str(r[0]) for r in tx.execute("SELECT profile_id FROM analytics_erasures")]
        if not ids:
            return manifest, False
        manifest = self.erase(manifest, ids)
        manifest = self._aliases(manifest, at_once=True)  # the old alias file names them
        with self.services.db.transaction() as tx:
            for chunk in chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                tx.execute(f"DELETE FROM analytics_erasures WHERE profile_id IN ({marks})",
                           list(chunk))
        return manifest, True

    def erase(self, manifest: Manifest, profile_ids: Sequence[str]) -> Manifest:
        """Rewrite every file holding rows of ``profile_ids`` without them (under the lock).
        The replaced files are deleted at once; so is the alias file if it names them."""
        ids = sorted(set(profile_ids))
        hit = rewrite.files_with_profiles(self.duck, self.store, manifest, ids)
        if not hit:
            return manifest
        return self._replace(manifest, hit, drop=ids, reassign=None, at_once=True)

    # -- unmerge -----------------------------------------------------------------------------
    def _unmerges(self, manifest: Manifest) -> Manifest:
        db = self.services.db
        with db.read() as tx:
            row = tx.one("SELECT value FROM analytics_state WHERE key = 'unmerge_cursor'")
            cursor = int(row[0]) if row else 0
            found = tx.execute(
                "SELECT id, profile_id, other_profile FROM identity_log WHERE kind = 'unmerge' "
                "AND id > ? ORDER BY id LIMIT 100",
                (cursor,),
            )
        if not found:
            return manifest
        for log_id, survivor, restored in found:
            manifest = self._unmerge(manifest, str(survivor), str(restored))
            with db.transaction() as tx:
                tx.execute("UPDATE analytics_state SET value = ? WHERE key = 'unmerge_cursor'",
                           (int(log_id),))
        return manifest

    def _unmerge(self, manifest: Manifest, survivor: str, restored: str) -> Manifest:
        """After an unmerge each event belongs to the profile whose timeline holds it now."""
        with self.services.db.transaction() as tx:
            owner = {int(s): str(p) for p, s in tx.execute(
                "SELECT profile_id, seq FROM profile_events WHERE profile_id IN (?, ?)",
                (survivor, restored),
            )}
            for profile in (survivor, restored):
                seqs = [s for s, p in owner.items() if p == profile]
                for chunk in chunks(seqs, 500):
                    marks = ",".join("?" * len(chunk))
                    tx.execute(
                        f"UPDATE analytics_outbox SET profile_id = ? WHERE seq IN ({marks})",
                        [profile, *chunk],
                    )
            # Aliases from the profiles table, which the unmerge brought up to date.
            tx.execute("DELETE FROM analytics_alias WHERE merged IN (?, ?) OR survivor IN "
                       "(?, ?)", (survivor, restored, survivor, restored))
            for merged, into in tx.execute(
                "SELECT id, merged_into FROM profiles WHERE merged_into IN (?, ?)",
                (survivor, restored),
            ):
                tx.execute(
                    "INSERT INTO analytics_alias (merged, survivor, at) VALUES (?, ?, ?) "
                    "ON CONFLICT (merged) DO UPDATE SET survivor = excluded.survivor",
                    (merged, into, self.services.clock.now_us()),
                )
            tx.execute("UPDATE analytics_state SET value = value + 1 WHERE key = "
                       "'alias_version'")
        if not owner:
            return manifest
        hit = rewrite.files_with_seqs(manifest, sorted(owner))
        if not hit:
            return manifest
        return self._replace(manifest, hit, drop=None, reassign=owner, at_once=False)

    # -- compaction --------------------------------------------------------------------------
    def _compact(self, manifest: Manifest, *, force: bool) -> Manifest:
        """Merge files of one size tier; ``force`` also merges the smallest tier when it has
        two files or more."""
        target = self.settings.analytics_file_rows
        tiers: dict[int, list[FileInfo]] = {}
        for f in manifest.files:
            if f.rows < target:
                tier = int(math.log(max(f.rows, 1) / TIER_BASE, TIER_FANIN)) if (
                    f.rows >= TIER_BASE) else 0
                tiers.setdefault(tier, []).append(f)
        for tier in sorted(tiers):
            group = sorted(tiers[tier], key=lambda f: f.min_seq)
            if len(group) >= TIER_FANIN or (force and tier == min(tiers) and len(group) >= 2):
                for batch in _packs(group, target):
                    if len(batch) >= 2:
                        manifest = self._replace(manifest, batch, drop=None, reassign=None,
                                                 at_once=False, merge=True)
        return manifest

    def _replace(self, manifest: Manifest, old: list[FileInfo], *, drop: list[str] | None,
                 reassign: dict[int, str] | None, at_once: bool,
                 merge: bool = False) -> Manifest:
        """Rewrite ``old`` (one file each, or all into one with ``merge``) with the current
        aliases applied, ``drop`` removed and ``reassign`` (seq -> profile) applied."""
        groups = [old] if merge else [[f] for f in old]
        files = [f for f in manifest.files if f not in old]
        written: list[FileInfo] = []
        version = manifest.version + 1
        for group in groups:
            lo = min(f.min_seq for f in group)
            hi = max(f.max_seq for f in group)
            name = f"c-{lo:020d}-{hi:020d}-{version:012d}.parquet"
            info = rewrite.rewrite(
                self.duck, self.store, manifest, group, name, drop=drop, reassign=reassign,
                at_us=self.services.clock.now_us(),
            )
            if info is not None:
                written.append(info)
        files.extend(written)
        files.sort(key=lambda f: f.min_seq)
        new = replace(manifest, files=tuple(files))
        new = self.store.retire(new, [f"events/{f.name}" for f in old], now=wall(),
                                at_once=False)
        new = self.store.commit(new)
        if at_once:  # erasure: the old files go now, not after the grace period
            gone = {f"events/{f.name}" for f in old}
            self.store.retire(new, sorted(gone), now=wall(), at_once=True)
            new = self.store.commit(replace(new, retired=tuple(
                r for r in new.retired if r[0] not in gone)))
        return new


def _packs(files: list[FileInfo], target: int) -> list[list[FileInfo]]:
    out: list[list[FileInfo]] = [[]]
    rows = 0
    for f in files:
        if out[-1] and rows + f.rows > target:
            out.append([])
            rows = 0
        out[-1].append(f)
        rows += f.rows
    return out
