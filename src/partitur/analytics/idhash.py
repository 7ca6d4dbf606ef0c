"""Whether ``hash(profile_id)`` tells every person in a set of files apart.

Funnels group a person's events by a 64-bit hash of the profile id (integers sort far faster
than strings). Two ids sharing a hash would be counted as one person, so a query either
carries a second, independent hash per row and checks it (the sure way, which costs the sort
another column and the scan a string concatenation per row), or knows beforehand that no two
ids of its files share a hash. :class:`IdHashes` knows that: it keeps the two hashes of every
id of every file it has seen (files never change once written) and of the alias table's
survivors, and reads only the files it has not seen yet. The set only grows (ids of files
retired since stay in it), so it may answer "no" where a smaller set would say "yes", never
the other way round; past ``limit`` ids it stops keeping them and answers "no".
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from partitur.analytics.duck import sql_list, sql_text

LIMIT = 10_000_000  # ids kept (12 bytes each)


class IdHashes:
    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._seen: set[str] = set()  # event files and alias files read
        self._first: npt.NDArray[np.uint64] = np.zeros(0, np.uint64)  # sorted, unique
        self._second: npt.NDArray[np.uint32] = np.zeros(0, np.uint32)  # per first
        self._clash = False
        self._full = False

    def distinct(self, cursor: Any, paths: tuple[str, ...], alias: str | None,
                 live: set[str] | None = None) -> bool:
        """True when no two profile ids in ``paths`` (and ``alias``'s survivors) share
        ``hash(profile_id)``; reads the files not seen before with ``cursor``. ``live``: every
        file the table has now (the names of others are forgotten; their ids stay)."""
        with self._lock:
            if self._clash or self._full:
                return False
            if live is not None:
                self._seen &= live | {alias}
            new = [p for p in paths if p not in self._seen]
            reads = []
            if new:
                reads.append(f"SELECT profile_id AS id FROM read_parquet({sql_list(new)})")
            if alias is not None and alias not in self._seen:
                reads.append(f"SELECT survivor AS id FROM read_parquet('{sql_text(alias)}')")
            if reads:
                table = cursor.sql(
                    "SELECT hash(id) AS h, hash(id || '#') AS h2 FROM (SELECT DISTINCT id FROM ("
                    + " UNION ALL ".join(reads) + ") WHERE id IS NOT NULL)"
                ).to_arrow_table()
                self._add(table.column("h").to_numpy(),
                          table.column("h2").to_numpy().astype(np.uint32))
                self._seen.update(new)
                if alias is not None:
                    self._seen.add(alias)
            return not (self._clash or self._full)

    def _add(self, first: npt.NDArray[np.uint64], second: npt.NDArray[np.uint32]) -> None:
        order = np.argsort(first, kind="stable")
        first, second = first[order], second[order]
        # Each id gives one row (DISTINCT), so a hash seen twice among them is a clash; an
        # id seen before has the same two hashes (only 32 bits of the second are kept: a
        # clash goes unnoticed once in 2**32 clashes).
        if np.any(first[1:] == first[:-1]):
            self._clash = True
            return
        at = np.searchsorted(self._first, first)
        inside = at < len(self._first)
        known = np.zeros(len(first), np.bool_)
        known[inside] = self._first[at[inside]] == first[inside]
        if np.any(self._second[at[known]] != second[known]):
            self._clash = True
            return
        fresh = ~known
        if len(self._first) + int(fresh.sum()) > self.limit:
            self._full = True
            self._first, self._second = np.zeros(0, np.uint64), np.zeros(0, np.uint32)
            return
        self._first = np.insert(self._first, at[fresh], first[fresh])
        self._second = np.insert(self._second, at[fresh], second[fresh])
