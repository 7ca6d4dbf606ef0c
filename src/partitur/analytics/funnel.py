"""Funnels: DuckDB selects and sorts the events that matter, :mod:`.funnel_engine` walks them,
and this module turns the outcome into counts, rates, times and people per step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from partitur.analytics import funnel_engine as fe
from partitur.analytics.engine import QueryEngine, Source
from partitur.analytics.funnel_model import FunnelQuery
from partitur.analytics.spec import ACTION_TYPES, Match, bad
from partitur.analytics.sql import Params, match_sql, path_sql, time_sql
from partitur.errors import StorageError

PEOPLE_STATUSES = ("dropped", "reached", "converted", "excluded")


@dataclass(frozen=True)
class Result:
    """People of one funnel run: per person ordinal a sort key, one of their event seqs (to
    look their profile id up; None when the key alone tells people apart, see
    :mod:`.idhash`), the breakdown value (as a code into ``names``); the engine's outcome."""

    keys: np.ndarray[Any, Any]  # uint64 hash of the profile id, per person ordinal
    seqs: np.ndarray[Any, Any] | None  # int64, a seq of the person's, per person ordinal
    codes: np.ndarray[Any, Any]  # int64 per person ordinal: breakdown value, -1 for none
    names: list[Any]  # breakdown value of each code
    outcome: fe.Outcome
    source: Source
    engine: QueryEngine

    def code_of(self, value: Any) -> int | None:
        """The code of breakdown value ``value`` (-1 for none); None if nobody has it."""
        if value is None:
            return -1
        return self.names.index(value) if value in self.names else None

    def ids(self, ordinals: Any) -> dict[int, str]:
        """Profile ids of the people at ``ordinals`` (one query, by seq or by key)."""
        return lookup_ids(self, ordinals)


def _bits(matches: list[Match], p: Params) -> str:
    """An INTEGER with bit k set when the row matches ``matches[k]``."""
    if not matches:
        return "(0)::INTEGER"
    if all(m.event is not None and m.type is None and not m.where for m in matches):
        # By name only: one CASE over the names (a name may stand for several bits).
        by_name: dict[str, int] = {}
        for k, m in enumerate(matches):
            assert m.event is not None
            by_name[m.event] = by_name.get(m.event, 0) | (1 << k)
        whens = " ".join(f"WHEN {p(name)} THEN {b}" for name, b in by_name.items())
        return f"(CASE event {whens} ELSE 0 END)::INTEGER"
    return "(" + " + ".join(f"(CASE WHEN {match_sql(m, p)} THEN {1 << k} ELSE 0 END)"
                            for k, m in enumerate(matches)) + ")::INTEGER"


def _select(q: FunnelQuery, source: str, p: Params, breakdown: bool, salt: str | None
            ) -> str:
    # People are told apart by a 64-bit hash of their id (integers sort far faster than
    # strings). Unless the files' ids are known to have no two sharing it (``salt`` None, see
    # :mod:`.idhash`), a second hash detects the (astronomically rare) collision, see
    # :func:`_fetch`.
    first = f"hash(profile_id || {p(salt)})" if salt else "hash(profile_id)"
    pid = f"{first} AS pid" if salt is None else (
        f"{first} AS pid, hash(profile_id || {p(salt + '#')}) AS pid2")
    bval = path_sql(q.breakdown.path, p) if (breakdown and q.breakdown) else "NULL"
    mask = _bits(list(q.steps), p)
    xmask = _bits([x.match for x in q.exclusions], p)
    where = [time_sql(q.from_us, q.to_us)]
    matches = [*q.steps, *(x.match for x in q.exclusions)]
    if q.order == "strict":
        where.append(f"type = ANY({p(list(ACTION_TYPES))})")
    elif all(m.event is not None for m in matches):
        # (A list parameter: DuckDB then filters in the scan, before it reads other columns.)
        names = sorted({m.event for m in matches if m.event is not None})
        where.append(f"event = ANY({p(names)})")
    inner = (f"SELECT {pid}, epoch_us(ts) AS t, seq, {bval} AS bval, {mask} AS mask, "
             f"{xmask} AS xmask FROM {source} WHERE {' AND '.join(where)}")
    plain = all(m.event is not None and m.type is None and not m.where for m in matches)
    if q.order == "strict" or plain:  # (plain: the name filter already keeps only matches)
        return inner
    return f"SELECT * FROM ({inner}) WHERE mask != 0 OR xmask != 0"


def _sql(q: FunnelQuery, source: str, breakdown: bool, salt: str | None = ""
         ) -> tuple[str, list[Any]]:
    p = Params()
    base = _select(q, source, p, breakdown, salt)
    mode = q.breakdown.attribution if (breakdown and q.breakdown) else None
    # Without a known-safe hash, a second hash and a seq per person to look the id up by.
    pid2, seq = ("", "") if salt is None else ("pid2, ", "seq, ")
    cols = f"{pid2}t, {seq}mask" + (", xmask" if q.exclusions else "") + (
        ", bval" if mode in ("first_touch", "last_touch") else "")
    if mode == "all_events":
        # One run per value the person has: only their events carrying that value.
        sql = (f"SELECT pid, bval AS vval, {cols} FROM ({base}) "
               "ORDER BY pid, vval NULLS FIRST, t")
    elif mode == "step":
        assert q.breakdown is not None and q.breakdown.step is not None
        bit = 1 << q.breakdown.step
        # One run per value seen on the person's step-N events (or one with none): step N is
        # then only matched by events carrying that value.
        sql = (
            f"WITH src AS ({base}), "
            f"vals AS (SELECT DISTINCT pid, bval AS vval FROM src WHERE (mask & {bit}) != 0), "
            "who AS (SELECT * FROM vals UNION ALL SELECT DISTINCT pid, NULL FROM src "
            "WHERE pid NOT IN (SELECT pid FROM vals)) "
            f"SELECT s.pid, w.vval, {pid2 and 's.' + pid2}s.t, {seq and 's.' + seq}"
            f"CASE WHEN (s.mask & {bit}) != 0 AND "
            f"s.bval IS DISTINCT FROM w.vval THEN s.mask - {bit} ELSE s.mask END AS mask, "
            "s.xmask FROM src s JOIN who w ON s.pid = w.pid "
            "ORDER BY s.pid, w.vval NULLS FIRST, s.t"
        )
    else:
        sql = f"SELECT pid, {cols} FROM ({base}) ORDER BY pid, t"
    return sql, p.values


def _codes(column: Any) -> tuple[np.ndarray[Any, Any], list[Any]]:
    encoded = pc.dictionary_encode(column).combine_chunks()
    indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return indices, encoded.dictionary.to_pylist()


def _fetch(engine: QueryEngine, q: FunnelQuery, source: Source, breakdown: bool) -> pa.Table:
    """The rows, sorted; if two people's ids share a hash, again with another salt."""
    with engine.cursor() as cur:
        if engine.distinct_ids(cur, source):
            sql, params = _sql(q, source.sql, breakdown, None)
            table: pa.Table = cur.sql(sql, params=params).to_arrow_table()
            return table
    for salt in ("", "1", "2", "3"):
        sql, params = _sql(q, source.sql, breakdown, salt)
        with engine.cursor() as cur:
            table = cur.sql(sql, params=params).to_arrow_table()
        pid = table.column("pid").to_numpy()
        pid2 = table.column("pid2").to_numpy()
        if not np.any((pid[1:] == pid[:-1]) & (pid2[1:] != pid2[:-1])):
            return table
    raise StorageError("profile ids collide under every hash tried")  # pragma: no cover


def run(engine: QueryEngine, q: FunnelQuery, *, breakdown: bool) -> Result:
    source = engine.source(q.from_us, q.to_us)
    table = _fetch(engine, q, source, breakdown)
    steps = len(q.steps)
    if table.num_rows == 0:
        empty = np.zeros(0, np.int64)
        return Result(np.zeros(0, np.uint64), empty, empty, [],
                      fe.Outcome(empty, empty, np.zeros((0, steps), np.int64), empty), source,
                      engine)
    pid = table.column("pid").to_numpy()
    if "vval" in table.column_names:
        vval, vval_names = _codes(table.column("vval"))
        new = np.r_[True, (pid[1:] != pid[:-1]) | (vval[1:] != vval[:-1])]
    else:
        vval, vval_names = np.zeros(0, np.int64), []
        new = np.r_[True, pid[1:] != pid[:-1]]
    person = np.cumsum(new, dtype=np.int64)
    person -= 1
    firsts = np.flatnonzero(new)
    mask = table.column("mask").to_numpy().astype(np.int64)
    events = fe.Events(
        person=person,
        t=table.column("t").to_numpy().astype(np.int64, copy=False),
        mask=mask,
        xmask=(table.column("xmask").to_numpy().astype(np.int64)
               if "xmask" in table.column_names else np.zeros(len(mask), np.int64)),
    )
    spec = fe.Spec(steps=steps, window_us=q.window_us, order=q.order,
                   exclusions=tuple((x.from_step, x.to_step) for x in q.exclusions))
    _check_any(q, mask)
    outcome = fe.run(events, spec)
    mode = q.breakdown.attribution if (breakdown and q.breakdown) else None
    people = len(firsts)
    if mode in ("all_events", "step"):
        codes, names = vval[firsts], vval_names
    elif mode in ("first_touch", "last_touch"):
        codes, names = _touch(table, person, mask, people, last=mode == "last_touch")
    else:
        codes, names = np.full(people, -1, np.int64), []
    seqs = (table.column("seq").to_numpy()[firsts].astype(np.int64)
            if "seq" in table.column_names else None)
    return Result(pid[firsts], seqs, codes, names, outcome, source, engine)


def lookup_ids(result: Result, ordinals: Any) -> dict[int, str]:
    chosen = np.unique(np.asarray(ordinals, np.int64))
    if not chosen.size:
        return {}
    if result.seqs is None:
        keys = result.keys[chosen]
        by_key = ids_by_key(result.engine, result.source, keys)
        return {int(o): by_key[int(k)] for o, k in zip(chosen, keys, strict=True)
                if int(k) in by_key}
    seqs = result.seqs[chosen]
    by_seq = ids_by_seq(result.engine, result.source, seqs)
    return {int(o): by_seq[int(s)] for o, s in zip(chosen, seqs, strict=True)
            if int(s) in by_seq}


def ids_by_key(engine: QueryEngine, source: Source, keys: Any) -> dict[int, str]:
    """Profile id (aliases applied) of the people whose ``hash(profile_id)`` is in ``keys``
    (only where that hash is known to tell the people of ``source`` apart). One scan of the
    ids (a time filter would not help: compacted files are sorted by person)."""
    with engine.cursor() as cur:
        cur.register("_keys", pa.table({"h": pa.array(np.asarray(keys, np.uint64))}))
        rows = cur.sql(f"SELECT DISTINCT hash(profile_id), profile_id FROM {source.sql} "
                       "WHERE hash(profile_id) IN (SELECT h FROM _keys)").fetchall()
        cur.unregister("_keys")
    return {int(key): str(pid) for key, pid in rows}


def ids_by_seq(engine: QueryEngine, source: Source, seqs: Any) -> dict[int, str]:
    """Profile id (aliases applied) of the events ``seqs`` in ``source``."""
    seqs = np.asarray(seqs, np.int64)
    source = engine.source_with_seqs(source.manifest, seqs.tolist())
    with engine.cursor() as cur:
        cur.register("_seqs", pa.table({"seq": pa.array(seqs)}))
        rows = cur.sql(f"SELECT seq, profile_id FROM {source.sql} "
                       "WHERE seq IN (SELECT seq FROM _seqs)").fetchall()
        cur.unregister("_seqs")
    return {int(seq): str(pid) for seq, pid in rows}


def _check_any(q: FunnelQuery, mask: np.ndarray[Any, Any]) -> None:
    if q.order != "any" or len(q.steps) <= 12:
        return
    if any(bin(int(m)).count("1") > 1 for m in np.unique(mask)):
        raise bad("steps", "an 'any' order funnel whose steps match the same events is "
                  "limited to 12 steps")


def _touch(table: pa.Table, person: np.ndarray[Any, Any], mask: np.ndarray[Any, Any],
           people: int, *, last: bool) -> tuple[np.ndarray[Any, Any], list[Any]]:
    """Per person, the breakdown value (code) of their first (or last) step event that has
    one, and the values of the codes."""
    bval, names = _codes(table.column("bval"))
    rows = np.flatnonzero((bval >= 0) & (mask != 0))
    codes = np.full(people, -1, np.int64)
    if not rows.size:
        return codes, names
    owners = person[rows]
    if last:
        pick = rows[np.r_[owners[1:] != owners[:-1], True]]
    else:
        pick = rows[np.r_[True, owners[1:] != owners[:-1]]]
    codes[person[pick]] = bval[pick]
    return codes, names
