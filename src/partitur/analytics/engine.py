"""The query side: one in-process DuckDB database, a cursor per query, a snapshot of files.

A query reads the manifest once (:meth:`QueryEngine.source`) and sees exactly those files,
whatever the projector does meanwhile. ``profile_id`` in the source is the person's current
profile: rows written before a merge carry the merged-away id, and the alias table maps it to
the survivor at query time (compaction also rewrites them, so this is usually a no-op).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from partitur.analytics.duck import connect, deadline, sql_list, sql_text
from partitur.analytics.idhash import IdHashes
from partitur.analytics.store import Manifest, ParquetStore, empty_events_file

if TYPE_CHECKING:
    from partitur.settings import Settings


@dataclass(frozen=True)
class Source:
    """The event table of one query: a SQL relation over a fixed set of files."""

    sql: str
    manifest: Manifest
    files: int
    paths: tuple[str, ...] = ()  # the event files read
    alias: str | None = None  # the alias file applied


class QueryEngine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = ParquetStore(settings.analytics_path)
        self._db: Any = None
        self.ids = IdHashes()

    @property
    def db(self) -> Any:
        if self._db is None:
            self._db = connect(
                threads=self.settings.analytics_threads,
                memory_limit=self.settings.analytics_memory_limit,
                temp_dir=self.store.root / ".duckdb-query-tmp",
            )
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def source(self, lo_us: int | None = None, hi_us: int | None = None) -> Source:
        """The events (all, or those of files whose time range meets ``[lo_us, hi_us)``;
        callers still filter rows by time)."""
        manifest = self.store.manifest()
        return self._source(manifest, self.store.event_paths(manifest, lo_us, hi_us))

    def source_with_seqs(self, manifest: Manifest, seqs: list[int]) -> Source:
        """The files of ``manifest`` whose seq range holds one of ``seqs``."""
        import bisect

        ordered = sorted(seqs)
        paths = []
        for f in manifest.files:
            at = bisect.bisect_left(ordered, f.min_seq)
            if at < len(ordered) and ordered[at] <= f.max_seq:
                paths.append(str(self.store.events_dir / f.name))
        return self._source(manifest, paths)

    def _source(self, manifest: Manifest, paths: list[str]) -> Source:
        files = len(paths)
        if not paths:
            paths = [empty_events_file(self.store)]
        scan = f"read_parquet({sql_list(paths)})"
        alias = self.store.alias_path(manifest)
        if alias is None:
            return Source(sql=scan, manifest=manifest, files=files, paths=tuple(paths))
        sql = (
            "(SELECT e.* REPLACE (COALESCE(a.survivor, e.profile_id) AS profile_id) "
            f"FROM {scan} e LEFT JOIN read_parquet('{sql_text(alias)}') a "
            "ON e.profile_id = a.merged)"
        )
        return Source(sql=sql, manifest=manifest, files=files, paths=tuple(paths), alias=alias)

    def distinct_ids(self, cursor: Any, source: Source) -> bool:
        """True when ``hash(profile_id)`` tells every person of ``source`` apart
        (:mod:`.idhash`)."""
        live = {str(self.store.events_dir / f.name) for f in source.manifest.files}
        return self.ids.distinct(cursor, source.paths, source.alias, live)

    @contextmanager
    def cursor(self, timeout: float | None = None) -> Iterator[Any]:
        """A cursor of its own for one query, interrupted after ``timeout`` seconds."""
        cur = self.db.cursor()
        try:
            with deadline(cur, timeout or self.settings.analytics_query_timeout):
                yield cur
        finally:
            cur.close()
