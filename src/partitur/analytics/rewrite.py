"""Rewriting Parquet files with DuckDB: compaction, erasure and re-attribution.

Every rewrite applies the current aliases (merged-away ids become the profile they live on),
so compacted files need no alias lookups for merges older than the compaction; it can also
drop people (erasure) and give rows a new owner by seq (after an unmerge).

Output is sorted by person (``hash(profile_id)``, the key funnels and paths group people by)
and then time: their sort then works on presorted runs, about a quarter less work. A file
still holds one stretch of time (files are cut by seq), so time filters skip whole files,
though no longer row groups within one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from partitur.analytics.columns import COLUMNS
from partitur.analytics.duck import sql_list, sql_text
from partitur.analytics.store import FileInfo, Manifest, ParquetStore, _fsync_dir


def files_with_profiles(duck: Any, store: ParquetStore, manifest: Manifest,
                        profile_ids: Sequence[str]) -> list[FileInfo]:
    """The manifest's files that hold a row of any of ``profile_ids``."""
    if not manifest.files or not profile_ids:
        return []
    by_path = {str(store.events_dir / f.name): f for f in manifest.files}
    duck.register("_ids", pa.table({"id": pa.array(list(profile_ids), pa.string())}))
    try:
        found = duck.execute(
            f"SELECT DISTINCT filename FROM read_parquet({sql_list(list(by_path))}, "
            "filename = true) WHERE profile_id IN (SELECT id FROM _ids)"
        ).fetchall()
    finally:
        duck.unregister("_ids")
    return [by_path[str(r[0])] for r in found]


def files_with_seqs(manifest: Manifest, seqs: Sequence[int]) -> list[FileInfo]:
    """Files whose seq range covers one of ``seqs`` (a superset; rewriting is harmless)."""
    import bisect

    ordered = sorted(seqs)
    out = []
    for f in manifest.files:
        at = bisect.bisect_left(ordered, f.min_seq)
        if at < len(ordered) and ordered[at] <= f.max_seq:
            out.append(f)
    return out


def rewrite(
    duck: Any,
    store: ParquetStore,
    manifest: Manifest,
    files: list[FileInfo],
    name: str,
    *,
    drop: Sequence[str] | None,
    reassign: dict[int, str] | None,
    at_us: int,
) -> FileInfo | None:
    """``files`` rewritten into ``events/<name>``; None if no row is left."""
    paths = sql_list([str(store.events_dir / f.name) for f in files])
    owner = "e.profile_id"
    joins = ""
    alias = store.alias_path(manifest)
    if alias:
        joins += f" LEFT JOIN read_parquet('{sql_text(alias)}') a ON e.profile_id = a.merged"
        owner = "COALESCE(a.survivor, e.profile_id)"
    registered = []
    if reassign:
        duck.register("_owner", pa.table({
            "seq": pa.array(list(reassign), pa.int64()),
            "profile_id": pa.array(list(reassign.values()), pa.string()),
        }))
        registered.append("_owner")
        joins += " LEFT JOIN _owner r ON e.seq = r.seq"
        owner = f"COALESCE(r.profile_id, {owner})"
    where = ""
    if drop:
        duck.register("_drop", pa.table({"id": pa.array(list(drop), pa.string())}))
        registered.append("_drop")
        where = (f"WHERE e.profile_id NOT IN (SELECT id FROM _drop) "
                 f"AND {owner} NOT IN (SELECT id FROM _drop)")
    select = ", ".join(
        f"{owner} AS profile_id" if col == "profile_id" else f"e.{col}" for col, _, _ in COLUMNS
    )
    tmp = store.events_dir / f".{name}.tmp"
    try:
        duck.execute(
            f"COPY (SELECT {select} FROM read_parquet({paths}) e{joins} {where} "
            f"ORDER BY hash({owner}), e.ts, e.seq) TO '{sql_text(str(tmp))}' "
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 131072)"
        ).fetchall()
        found = duck.execute(
            "SELECT count(*), min(seq), max(seq), min(epoch_us(ts)), max(epoch_us(ts)) "
            f"FROM read_parquet('{sql_text(str(tmp))}')"
        ).fetchall()
        stats = found[0] if found else None
    finally:
        for table in registered:
            duck.unregister(table)
    if stats is None or not stats[0]:
        tmp.unlink(missing_ok=True)
        return None
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    final = store.events_dir / name
    os.replace(tmp, final)
    _fsync_dir(store.events_dir)
    rows, lo, hi, first, last = (int(v) for v in stats)
    return FileInfo(name=name, rows=rows, min_seq=lo, max_seq=hi, min_ts=first, max_ts=last,
                    bytes=final.stat().st_size, at=at_us)
