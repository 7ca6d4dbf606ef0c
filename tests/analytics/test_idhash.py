"""Telling people apart by a hash of their id: the check that lets funnels and paths skip the
second hash, and the same answers whether a query takes that way or the careful one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from partitur.analytics.idhash import IdHashes
from tests.analytics.conftest import Env, at


def _ids_file(path: Path, ids: list[str]) -> str:
    pq.write_table(pa.table({"profile_id": pa.array(ids, pa.string())}), path)
    return str(path)


def test_ids_are_read_once_per_file_and_new_files_join_the_set(tmp_path: Path) -> None:
    con = duckdb.connect()
    hashes = IdHashes()
    a = _ids_file(tmp_path / "a.parquet", ["p1", "p2", "p2", "p3"])
    b = _ids_file(tmp_path / "b.parquet", ["p3", "p4"])
    assert hashes.distinct(con, (a,), None)
    assert len(hashes._first) == 3
    Path(a).unlink()  # read once: asking again does not open it
    assert hashes.distinct(con, (a,), None)
    assert hashes.distinct(con, (a, b), None)
    assert len(hashes._first) == 4  # p3 is known already
    alias = tmp_path / "aliases.parquet"
    pq.write_table(pa.table({"merged": ["p9"], "survivor": ["p5"]}), alias)
    assert hashes.distinct(con, (b,), str(alias))
    assert len(hashes._first) == 5  # the survivor's id counts
    assert hashes.distinct(con, (b,), str(alias), live={b})
    assert hashes._seen == {b, str(alias)}  # a's name is forgotten, its ids are kept
    assert len(hashes._first) == 5


def test_a_shared_hash_or_too_many_ids_means_no() -> None:
    hashes = IdHashes()
    hashes._add(np.array([5, 9], np.uint64), np.array([1, 2], np.uint32))
    hashes._add(np.array([9], np.uint64), np.array([2], np.uint32))  # the same id again
    assert not hashes._clash
    hashes._add(np.array([9], np.uint64), np.array([3], np.uint32))  # another id, same hash
    assert hashes._clash
    assert not hashes.distinct(duckdb.connect(), (), None)
    within = IdHashes()
    within._add(np.array([4, 4], np.uint64), np.array([1, 2], np.uint32))
    assert within._clash
    small = IdHashes(limit=2)
    small._add(np.array([1, 2, 3], np.uint64), np.array([1, 2, 3], np.uint32))
    assert small._full and not small._clash


def _report(env: Env, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = env.post("/api/v1/analytics/funnel", body)
    return result


def test_funnels_answer_the_same_with_and_without_the_check(env: Env) -> None:
    events = []
    for i in range(30):
        user = f"u{i}"
        source = ["google", "newsletter", None][i % 3]
        context = {"campaign": {"source": source}} if source else None
        events.append(env.track(user, "A", at(i), context=context))
        if i % 2:
            events.append(env.track(user, "B", at(i + 1)))
        if i % 4 == 1:
            events.append(env.track(user, "C", at(i + 2)))
    # Anonymous browsing merged into a known person later: read through the alias table.
    events.append(env.track("anon-1", "A", at(40), anonymous=True))
    env.send(*events)
    env.settle()
    env.send({"type": "identify", "userId": "u0", "anonymousId": "anon-1",
              "timestamp": at(41)}, env.track("u0", "B", at(42)))
    env.settle()
    steps = [{"event": s} for s in "ABC"]
    body = {"steps": steps, "from": at(days=-1), "to": at(days=1), "people_limit": 50}
    bodies = [body, {**body, "breakdown": {"property": "context.campaign.source"}},
              {**body, "breakdown": {"property": "context.campaign.source",
                                     "attribution": "step:1"}}]
    engine = env.analytics.engine
    paths = {"start": {"event": "A"}, "steps": 2, "from": at(days=-1), "to": at(days=1)}
    fast_paths = env.post("/api/v1/analytics/paths", paths)
    fast = [_report(env, b) for b in bodies]
    assert engine.ids.distinct(engine.db.cursor(), engine.source().paths,
                               engine.source().alias)
    engine.ids = IdHashes(limit=0)  # the careful way: a second hash and a seq per person
    careful = [_report(env, b) for b in bodies]
    assert fast == careful
    assert fast_paths == env.post("/api/v1/analytics/paths", paths)
    assert fast_paths["people"] == 30
    assert [s["count"] for s in fast[0]["steps"]] == [30, 16, 8]  # u0 reached B via anon-1
    dropped = {p["profile_id"] for p in fast[0]["steps"][0]["dropped"]["people"]}
    assert env.profile_of("u0") not in dropped and env.profile_of("u2") in dropped
