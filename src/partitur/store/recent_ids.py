"""Which messageIds the embedded store has seen lately, in memory, rebuilt from the log.

De-duplication on SQLite used to insert every messageId into an indexed table. Message ids are
random (UUIDs), so each insert landed on its own page of a B-tree that grows with the window:
once the table held a million ids, remembering an id cost more than storing the event itself
(a page written to the WAL per event; see docs/benchmarks.md). The event log already holds every
id with its ``received_at``, in an append-only table, so the index lives in memory instead:

* each id is kept as a 64-bit hash with the ``received_at`` of its event (16 bytes);
* new ids go into a dict; every 64k they are sorted into an immutable level (numpy arrays),
  and adjacent levels are merged like a binary counter, so a lookup probes a few sorted arrays;
* a hash that matches is only a candidate: the event log is asked whether an event with that
  id and that ``received_at`` exists (the ``events_received`` index makes that a short range
  read), so a hash collision can never drop an event;
* levels whose newest entry is older than the window are dropped whole.

Nothing here is durable and nothing needs to be: after a restart the index is rebuilt from the
events of the window, and before every claim it catches up with events other connections (or
processes) committed since, by ``seq``. A writer holds SQLite's write lock for the whole
transaction, so "catch up, look up, insert" cannot interleave with another writer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

_I64 = npt.NDArray[np.int64]


def id_hash(message_id: str) -> int:
    """Stable within one process, which is all the index needs (it is rebuilt at start)."""
    return hash(message_id)


class RecentIds:
    FRESH_MAX = 65_536

    def __init__(self) -> None:
        self.fresh: dict[int, int] = {}
        self.collided: dict[int, list[int]] = {}  # more received_at for a hash already in fresh
        # (sorted hashes, their received_at, newest received_at), oldest level first
        self.levels: list[tuple[_I64, _I64, int]] = []
        self.last_seq = 0  # every event up to this seq is in the index
        self.loaded = False
        # Writers hold SQLite's lock while they look up, but a transaction's own ids arrive
        # after its commit, when the next writer may already be looking.
        self.lock = threading.Lock()

    def __len__(self) -> int:
        collided = sum(len(more) for more in self.collided.values())
        return len(self.fresh) + collided + sum(len(h) for h, _, _ in self.levels)

    def add(self, pairs: Iterable[tuple[str, int]], upto_seq: int | None = None) -> None:
        with self.lock:
            self._add(pairs)
            if upto_seq is not None and upto_seq > self.last_seq:
                self.last_seq = upto_seq

    def _add(self, pairs: Iterable[tuple[str, int]]) -> None:
        fresh = self.fresh
        for message_id, received_at in pairs:
            h = id_hash(message_id)
            if fresh.setdefault(h, received_at) != received_at:
                self.collided.setdefault(h, []).append(received_at)
        if len(fresh) >= self.FRESH_MAX:
            self._seal()

    def candidates(self, ids: Sequence[str]) -> dict[str, list[int]]:
        """For each id that may have been seen, the ``received_at`` values to check."""
        with self.lock:
            return self._candidates(ids)

    def _candidates(self, ids: Sequence[str]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        fresh = self.fresh
        hashes = [id_hash(i) for i in ids]
        for message_id, h in zip(ids, hashes, strict=True):
            at = fresh.get(h)
            if at is not None:
                out.setdefault(message_id, []).append(at)
                out[message_id].extend(self.collided.get(h, ()))
        if self.levels:
            query = np.fromiter(hashes, dtype=np.int64, count=len(hashes))
            for level_h, level_at, _ in self.levels:
                pos = np.searchsorted(level_h, query)
                pos[pos == len(level_h)] = 0
                for i in np.flatnonzero(level_h[pos] == query).tolist():
                    # equal hashes sit side by side; collect them all
                    j = int(pos[i])
                    while j < len(level_h) and level_h[j] == query[i]:
                        out.setdefault(ids[i], []).append(int(level_at[j]))
                        j += 1
        return out

    def forget(self, before_us: int) -> int:
        """Drop ids received before ``before_us``; returns how many were dropped."""
        with self.lock:
            return self._forget(before_us)

    def _forget(self, before_us: int) -> int:
        dropped = 0
        old = [h for h, at in self.fresh.items() if at < before_us]
        for h in old:
            del self.fresh[h]
            dropped += 1
            more = self.collided.pop(h, [])
            if more:  # a newer id with the same hash takes the place of the forgotten one
                self.fresh[h] = more[0]
                if more[1:]:
                    self.collided[h] = more[1:]
        for h, more in list(self.collided.items()):
            keep_at = [at for at in more if at >= before_us]
            dropped += len(more) - len(keep_at)
            if keep_at:
                self.collided[h] = keep_at
            else:
                del self.collided[h]
        kept: list[tuple[_I64, _I64, int]] = []
        for level_h, level_at, newest in self.levels:
            if newest < before_us:
                dropped += len(level_h)
                continue
            if int(level_at.min()) < before_us:
                keep = level_at >= before_us
                dropped += int((~keep).sum())
                level_h, level_at = level_h[keep], level_at[keep]
            kept.append((level_h, level_at, newest))
        self.levels = kept
        return dropped

    def _seal(self) -> None:
        if not self.fresh:
            return
        pairs = list(self.fresh.items())
        pairs.extend((h, at) for h, more in self.collided.items() for at in more)
        hashes = np.fromiter((h for h, _ in pairs), dtype=np.int64, count=len(pairs))
        received = np.fromiter((at for _, at in pairs), dtype=np.int64, count=len(pairs))
        self.fresh = {}
        self.collided = {}
        order = np.argsort(hashes, kind="stable")
        self.levels.append((hashes[order], received[order], int(received.max())))
        # Merge while the newest level is at least as big as the one before it: log-many
        # levels, each id re-sorted log-many times over its life.
        while len(self.levels) > 1 and len(self.levels[-1][0]) >= len(self.levels[-2][0]):
            h2, at2, new2 = self.levels.pop()
            h1, at1, new1 = self.levels.pop()
            hashes = np.concatenate((h1, h2))
            received = np.concatenate((at1, at2))
            order = np.argsort(hashes, kind="stable")
            self.levels.append((hashes[order], received[order], max(new1, new2)))
