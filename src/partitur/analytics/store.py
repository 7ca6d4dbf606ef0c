"""The analytics directory: Parquet files listed by one manifest, changed under one lock.

::

    analytics/
      manifest.json          which files make up the table now (the commit point)
      events/*.parquet       the event rows (columns: partitur.analytics.columns)
      aliases/*.parquet      merged-away profile id -> the profile it lives on now
      .lock                  held while files or the manifest change

Writers (the projector, compaction, erasure) take the lock (``flock``, so it also holds
between processes on one machine), write new files under temporary names, rename them into
place, then replace the manifest atomically; a file that is not in the manifest is not part
of the table. Readers never take the lock: they read the manifest once per query and see
that set of files. Files a compaction replaced stay on disk for a grace period, so queries
that started before it finish; files an erasure replaced are deleted at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from partitur.analytics.columns import SCHEMA

ALIAS_SCHEMA = pa.schema([pa.field("merged", pa.string()), pa.field("survivor", pa.string())])
ROW_GROUP = 128 * 1024


@dataclass(frozen=True)
class FileInfo:
    name: str  # relative to the events directory
    rows: int
    min_seq: int
    max_seq: int
    min_ts: int  # µs
    max_ts: int
    bytes: int
    at: int  # µs, when written

    def as_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass(frozen=True)
class Manifest:
    version: int = 0
    files: tuple[FileInfo, ...] = ()
    aliases: str | None = None  # file under aliases/
    alias_version: int = 0
    retired: tuple[tuple[str, float], ...] = ()  # (path under the root, wall time retired)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "version": self.version,
            "files": [f.as_json() for f in self.files],
            "aliases": self.aliases,
            "alias_version": self.alias_version,
            "retired": [list(r) for r in self.retired],
            **({"extra": self.extra} if self.extra else {}),
        }


def _manifest_from(doc: dict[str, Any]) -> Manifest:
    return Manifest(
        version=int(doc.get("version", 0)),
        files=tuple(FileInfo(**f) for f in doc.get("files", [])),
        aliases=doc.get("aliases"),
        alias_version=int(doc.get("alias_version", 0)),
        retired=tuple((str(p), float(t)) for p, t in doc.get("retired", [])),
        extra=dict(doc.get("extra", {})),
    )


class ParquetStore:
    """The directory; all writes go through :meth:`locked` and :meth:`commit`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.events_dir = self.root / "events"
        self.alias_dir = self.root / "aliases"
        self.manifest_path = self.root / "manifest.json"
        self.events_dir.mkdir(parents=True, exist_ok=True)
        self.alias_dir.mkdir(parents=True, exist_ok=True)

    # -- reading -------------------------------------------------------------------------
    def manifest(self) -> Manifest:
        try:
            text = self.manifest_path.read_text()
        except FileNotFoundError:
            return Manifest()
        return _manifest_from(json.loads(text))

    def event_paths(self, manifest: Manifest, lo_us: int | None = None,
                    hi_us: int | None = None) -> list[str]:
        """The manifest's event files whose time range meets ``[lo_us, hi_us)``."""
        out = []
        for f in manifest.files:
            if lo_us is not None and f.max_ts < lo_us:
                continue
            if hi_us is not None and f.min_ts >= hi_us:
                continue
            out.append(str(self.events_dir / f.name))
        return out

    def alias_path(self, manifest: Manifest) -> str | None:
        return str(self.alias_dir / manifest.aliases) if manifest.aliases else None

    # -- writing (under the lock) ----------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with open(self.root / ".lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def commit(self, manifest: Manifest) -> Manifest:
        """Replace the manifest (atomically, durably) with ``manifest`` as the next version."""
        new = replace(manifest, version=manifest.version + 1)
        tmp = self.root / f".manifest-{os.getpid()}.tmp"
        with open(tmp, "w") as out:
            json.dump(new.as_json(), out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.manifest_path)
        _fsync_dir(self.root)
        return new

    def write_events(self, name: str, table: pa.Table, at_us: int) -> FileInfo:
        """Write ``table`` as ``events/<name>`` (temporary name, fsync, rename)."""
        return self._write(self.events_dir, name, table, at_us)

    def _write(self, folder: Path, name: str, table: pa.Table, at_us: int) -> FileInfo:
        tmp = folder / f".{name}.tmp"
        pq.write_table(table, tmp, row_group_size=ROW_GROUP, compression="zstd")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, folder / name)
        _fsync_dir(folder)
        return info_for(name, table, (folder / name).stat().st_size, at_us)

    def write_aliases(self, version: int, pairs: list[tuple[str, str]]) -> str:
        name = f"aliases-{version:012d}.parquet"
        table = pa.Table.from_arrays(
            [pa.array([p[0] for p in pairs], pa.string()),
             pa.array([p[1] for p in pairs], pa.string())],
            schema=ALIAS_SCHEMA,
        )
        tmp = self.alias_dir / f".{name}.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, self.alias_dir / name)
        return name

    def retire(self, manifest: Manifest, paths: list[str], *, now: float,
               at_once: bool) -> Manifest:
        """Forget ``paths`` (relative to the root) after they left the manifest: delete them
        now (``at_once``) or after the grace period (:meth:`collect`)."""
        if at_once:
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    (self.root / path).unlink()
            return manifest
        return replace(manifest, retired=manifest.retired + tuple((p, now) for p in paths))

    def collect(self, manifest: Manifest, *, now: float, grace: float) -> Manifest:
        """Delete retired files older than ``grace`` seconds, and leftovers of a crash
        (temporary files, files no manifest lists); returns the manifest to commit if the
        retired list changed (the caller commits it)."""
        keep = []
        for path, at in manifest.retired:
            if now - at >= grace:
                with contextlib.suppress(FileNotFoundError):
                    (self.root / path).unlink()
            else:
                keep.append((path, at))
        listed = {f.name for f in manifest.files}
        retired = {p for p, _ in keep}
        for entry in self.events_dir.iterdir():
            rel = f"events/{entry.name}"
            if entry.name not in listed and rel not in retired:
                _unlink_if_old(entry, now, grace)
        for entry in self.alias_dir.iterdir():
            rel = f"aliases/{entry.name}"
            if entry.name != manifest.aliases and rel not in retired:
                _unlink_if_old(entry, now, grace)
        return replace(manifest, retired=tuple(keep))


def _unlink_if_old(path: Path, now: float, grace: float) -> None:
    # Written by a writer that has not committed yet, or by one that crashed before it did.
    with contextlib.suppress(FileNotFoundError):
        if now - path.stat().st_mtime >= grace:
            path.unlink()


def info_for(name: str, table: pa.Table, size: int, at_us: int) -> FileInfo:
    seq = table.column("seq")
    ts = table.column("ts").cast(pa.int64())
    import pyarrow.compute as pc

    seq_mm = pc.min_max(seq).as_py()
    ts_mm = pc.min_max(ts).as_py()
    return FileInfo(
        name=name, rows=table.num_rows, min_seq=int(seq_mm["min"]), max_seq=int(seq_mm["max"]),
        min_ts=int(ts_mm["min"]), max_ts=int(ts_mm["max"]), bytes=size, at=at_us,
    )


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def empty_events_file(store: ParquetStore) -> str:
    """A file with the schema and no rows, for queries over an empty table."""
    path = store.root / "empty.parquet"
    if not path.exists():
        tmp = store.root / ".empty.parquet.tmp"
        pq.write_table(SCHEMA.empty_table(), tmp)
        os.replace(tmp, path)
    return str(path)


def wall() -> float:
    """Wall time for the grace periods of files (not engine logic: file housekeeping)."""
    return time.time()
