"""The funnel, computed over arrays: pure, vectorised with NumPy, no I/O and no clock.

Input: one row per event, grouped by person and sorted by time (then seq) within a person,
with a bit per step the event matches (``mask``) and a bit per exclusion (``xmask``). Output:
for each person, the furthest step reached and the step times of the attempt that counts,
and the people an exclusion removed. The rules (docs/analytics.md spells them out, PostHog's
definition):

* every event matching step 1 starts an **attempt**; an attempt reaches step k+1 with the
  first event matching step k+1 at or after its step-k event (events with the same time count
  as simultaneous: either may come first) and no later than ``window`` after its step-1
  event (inclusive); one event never fills two steps of one attempt;
* ``strict``: the step events of an attempt must follow each other with no other event of the
  person in between (simultaneous events may be ordered to fit);
* ``any``: an attempt starts at any step event; it reaches as many steps as distinct events in
  ``[start, start + window]`` can fill distinct steps;
* an attempt is **tainted** by an exclusion event strictly after its ``from_step`` event and
  strictly before its ``to_step`` event (or, if it never reached ``to_step``, up to the end of
  its window);
* a person's furthest step F is the most any attempt reached; the attempt that counts is the
  first one reaching F without taint; if every attempt reaching F is tainted, the person is
  excluded from the whole funnel.

Times are compared on one int64 key per row (:func:`_keys`): the person's times shifted into
a range of their own, with a gap wider than the window between people, so that "same person,
within the window" is one comparison and every search is one ``searchsorted``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
KEY_LIMIT = 1 << 62


@dataclass(frozen=True)
class Events:
    person: Ints  # person ordinal 0..P-1, non-decreasing
    t: Ints  # µs
    mask: Ints  # bit k: matches step k
    xmask: Ints  # bit i: matches exclusion i


@dataclass(frozen=True)
class Spec:
    steps: int
    window_us: int
    order: str  # ordered | strict | any
    exclusions: tuple[tuple[int, int], ...]  # (from_step, to_step), 0-based


@dataclass(frozen=True)
class Outcome:
    person: Ints  # ordinals of the people counted, increasing
    furthest: Ints  # steps reached, 1..steps
    times: Ints  # (people, steps) µs of each step in the attempt that counts; -1 if not reached
    excluded: Ints  # ordinals of the people an exclusion removed


def run(events: Events, spec: Spec) -> Outcome:
    """The funnel over ``events``; people are processed in chunks whose keys fit in int64."""
    n = len(events.t)
    if n == 0:
        empty = np.zeros(0, np.int64)
        return Outcome(empty, empty, np.zeros((0, spec.steps), np.int64), empty)
    window = min(spec.window_us, int(events.t.max() - events.t.min()) + 1)
    bounds = _bounds(events.person)
    parts = []
    for lo, hi in _chunks(events, window, bounds):
        sub = Events(events.person[lo:hi], events.t[lo:hi], events.mask[lo:hi],
                     events.xmask[lo:hi])
        at = bounds[np.searchsorted(bounds, lo):np.searchsorted(bounds, hi)]
        parts.append(_run(sub, spec, window, at - lo))
    if len(parts) == 1:
        return parts[0]
    return Outcome(
        person=np.concatenate([p.person for p in parts]),
        furthest=np.concatenate([p.furthest for p in parts]),
        times=np.concatenate([p.times for p in parts]),
        excluded=np.concatenate([p.excluded for p in parts]),
    )


def _bounds(person: Ints) -> Ints:
    """Row index where each person's rows start."""
    return np.flatnonzero(np.r_[True, person[1:] != person[:-1]]).astype(np.int64)


def _chunks(events: Events, window: int, starts: Ints | None = None
            ) -> list[tuple[int, int]]:
    """Row ranges of whole people whose keys (:func:`_keys`) fit in int64; ``starts``: where
    each person's rows start, if known."""
    if starts is None:
        starts = _bounds(events.person)
    ends = np.r_[starts[1:], len(events.t)]
    spans = events.t[ends - 1] - events.t[starts] + window + 1
    total = np.cumsum(spans)
    out = []
    lo_person = 0
    base = 0
    while lo_person < len(starts):
        fits = np.searchsorted(total, base + KEY_LIMIT, side="right")
        hi_person = max(int(fits), lo_person + 1)
        out.append((int(starts[lo_person]), int(ends[hi_person - 1])))
        base = int(total[hi_person - 1])
        lo_person = hi_person
    return out


def _keys(events: Events, window: int, starts: Ints) -> Ints:
    ends = np.r_[starts[1:], len(events.t)]
    t0 = events.t[starts]
    spans = events.t[ends - 1] - t0 + window + 1
    base = np.r_[0, np.cumsum(spans)[:-1]]
    counts = ends - starts
    keys: Ints = np.repeat(base - t0, counts)
    keys += events.t
    return keys


def _run(events: Events, spec: Spec, window: int, starts: Ints) -> Outcome:
    key = _keys(events, window, starts)
    if spec.order == "any":
        starts, reached, times, tainted = _any(key, events, spec, window)
        return _choose(events, starts, reached, tainted, spec.steps, lambda at: times[at])
    starts, reached, used, tainted = _ordered(key, events, spec, window)

    def step_times(at: Ints) -> Ints:  # only for the attempts that count
        found: Ints = np.full((len(at), spec.steps), -1, np.int64)
        for k in range(spec.steps):
            rows = used[at, k]
            hit = np.flatnonzero(rows >= 0)
            found[hit, k] = events.t[rows[hit]]
        return found

    return _choose(events, starts, reached, tainted, spec.steps, step_times)


def _step_rows(mask: Ints, steps: int) -> list[Ints]:
    """Per step, the rows matching it (increasing)."""
    if steps > 16:
        return [np.flatnonzero((mask & (1 << k)) != 0) for k in range(steps)]
    # One stable (radix) sort of the small masks groups the rows by mask, in row order; a
    # step's rows are the groups whose mask has its bit (merged if several).
    small = mask.astype(np.uint8 if steps <= 8 else np.uint16)
    order = np.argsort(small, kind="stable")
    counts = np.bincount(small, minlength=1 << steps)
    ends = np.cumsum(counts)
    values = np.flatnonzero(counts)
    out = []
    for k in range(steps):
        parts = [order[ends[v] - counts[v]:ends[v]] for v in values if v & (1 << k)]
        rows = (np.zeros(0, np.int64) if not parts else parts[0] if len(parts) == 1
                else np.sort(np.concatenate(parts)))
        out.append(rows.astype(np.int64, copy=False))
    return out


class _Next:
    """``nxt[i]``: the first of ``rows`` (sorted row numbers) at or after row ``i``, or
    ``size`` if there is none — for arrays of ``i``."""

    def __init__(self, rows: Ints, size: int) -> None:
        self.rows = np.r_[rows, size].astype(np.int64)

    def __getitem__(self, at: Ints) -> Ints:
        found: Ints = self.rows[np.searchsorted(self.rows, at)]
        return found


class _Groups:
    """Rows with the same key (the same person and time) form a time group; few rows share
    one, so the groups' bounds are searched only for the rows that have a neighbour in it."""

    def __init__(self, key: Ints) -> None:
        self.key = key
        self.tied = np.r_[False, key[1:] == key[:-1], False]  # tied[i]: row i-1 == row i

    def lo(self, at: Ints) -> Ints:
        """Per row in ``at``, the first row of its time group."""
        out = at.copy()
        tie = np.flatnonzero(self.tied[at])
        if tie.size:
            out[tie] = np.searchsorted(self.key, self.key[at[tie]], side="left")
        return out

    def hi(self, at: Ints) -> Ints:
        """Per row in ``at``, one past the last row of its time group."""
        out: Ints = at + 1
        tie = np.flatnonzero(self.tied[out])
        if tie.size:
            out[tie] = np.searchsorted(self.key, self.key[at[tie]], side="right")
        return out


def _latest_starts(starts: Ints, person: Ints, groups: _Groups, mask: Ints, seconds: Ints
                   ) -> Ints:
    """Drop a step-1 event when the person's next step-1 event comes before any event that
    could be their step 2, and matches no other step: from step 2 on both attempts would take
    the same events, and the later one has the later deadline, so it reaches at least as far
    (without exclusions and strict order; as in PostHog's definition, a newer step 1 replaces
    an older one)."""
    if len(starts) < 2:
        return starts
    nxt = starts[1:]
    cur = starts[:-1]
    same = (person[nxt] == person[cur]) & (mask[nxt] == 1)
    # Is there a step-2 row (``seconds``, increasing) in [group(cur), next]?
    after = np.r_[seconds, len(mask)][np.searchsorted(seconds, groups.lo(cur))]
    keep = np.r_[~(same & (after > nxt)), True]
    kept: Ints = starts[keep]
    return kept


def _unused(nxt: _Next, cand: Ints, used: Ints, key: Ints, cur_key: Ints) -> Ints:
    """``cand``, moved on past rows the attempt already used (only rows of the current
    time group can have been used)."""
    size = len(key)
    for _ in range(used.shape[1] + 1):
        maybe = np.flatnonzero((cand < size) & (key[np.minimum(cand, size - 1)] == cur_key))
        if not maybe.size:
            return cand
        clash = (used[maybe] == cand[maybe, None]).any(axis=1)
        if not clash.any():
            return cand
        hit = maybe[clash]
        cand[hit] = nxt[cand[hit] + 1]
    return cand


def _ordered(key: Ints, events: Events, spec: Spec, window: int
             ) -> tuple[Ints, Ints, Ints, npt.NDArray[np.bool_]]:
    steps = spec.steps
    size = len(key)
    mask = events.mask
    step_rows = _step_rows(mask, steps)
    groups = _Groups(key)
    starts = step_rows[0]
    if spec.order == "ordered" and not spec.exclusions and steps > 1:
        starts = _latest_starts(starts, events.person, groups, mask, step_rows[1])
    count = len(starts)
    reached = np.ones(count, np.int64)
    used = np.full((count, steps), -1, np.int64, order="F")  # columns: one per step
    used[:, 0] = starts
    in_group = np.ones(count, np.int64)  # strict: the attempt's events in its last time group
    strict = spec.order == "strict"
    for k in range(1, steps):
        live = np.flatnonzero(reached == k)
        if not live.size:
            break
        nxt = _Next(step_rows[k], size)
        start_key = key[used[live, 0]]
        cur = used[live, k - 1]
        cur_key = key[cur]
        cur_lo = groups.lo(cur)
        found = _unused(nxt, nxt[cur_lo], used[live, :k], key, cur_key)
        inside = found < size
        found_key = key[np.minimum(found, size - 1)]
        ok = inside & (found_key - start_key <= window)
        same = ok & (found_key == cur_key)
        if strict:
            # Either another event of the current time group, or one of the next group (if
            # nothing else is left in this one, or it is the attempt's first). Both can be
            # right (the next group may hold an event that would otherwise break the chain),
            # so when both exist the attempt is split in two and both are followed.
            hi = groups.hi(cur)
            later = nxt[hi]
            first = cur_key == start_key
            whole = in_group[live] == hi - cur_lo
            later_ok = later < size
            later_key = key[np.minimum(later, size - 1)]
            nxt_ok = (later_ok & (groups.lo(np.minimum(later, size - 1)) == hi)
                      & (later_key - start_key <= window) & (first | whole))
            both = same & nxt_ok
            if both.any():
                twins = live[both]
                clone = np.arange(count, count + len(twins))
                used = np.concatenate([used, used[twins]])
                reached = np.concatenate([reached, reached[twins]])
                in_group = np.concatenate([in_group, in_group[twins]])
                count += len(twins)
                used[clone, k] = later[both]
                reached[clone] = k + 1
                in_group[clone] = 1
            step_to = np.where(same, found, later)
            ok = same | nxt_ok
            in_new = np.where(same, in_group[live] + 1, 1)
            moved = live[ok]
            in_group[moved] = in_new[ok]
        else:
            step_to = found
            moved = live[ok]
        reached[moved] = k + 1
        used[moved, k] = step_to[ok]
    if strict and count > len(starts):  # twins next to their original: people stay together
        order = np.argsort(used[:, 0], kind="stable")
        used, reached = used[order], reached[order]
    starts = used[:, 0].copy()
    start_key = key[starts]
    tainted = np.zeros(count, np.bool_)
    for bit, (lo_step, hi_step) in enumerate(spec.exclusions):
        flags = (events.xmask & (1 << bit)) != 0
        if not flags.any():
            continue
        nxt = _Next(np.flatnonzero(flags).astype(np.int64), size)
        live = np.flatnonzero(reached > lo_step)
        after = groups.hi(used[live, lo_step])  # strictly after the from-step's time
        found = nxt[after]
        # A row the attempt used as a step is not an exclusion of it.
        for _ in range(steps + 1):
            inside = found < size
            clash = inside & (used[live] == found[:, None]).any(axis=1)
            if not clash.any():
                break
            found[clash] = nxt[found[clash] + 1]
        inside = found < size
        done = reached[live] > hi_step
        upper = np.where(done, key[np.maximum(used[live, hi_step], 0)] - 1,
                         start_key[live] + window)
        tainted[live] |= inside & (key[np.minimum(found, size - 1)] <= upper)
    return starts, reached, used, tainted


def _any(key: Ints, events: Events, spec: Spec, window: int
         ) -> tuple[Ints, Ints, Ints, npt.NDArray[np.bool_]]:
    steps = spec.steps
    starts = np.flatnonzero(events.mask != 0).astype(np.int64)
    lo = np.searchsorted(key, key[starts], side="left")
    hi = np.searchsorted(key, key[starts] + window, side="right")
    masks = np.unique(events.mask[starts])
    counts = np.zeros((len(starts), len(masks)), np.int64)
    for i, value in enumerate(masks):
        at = np.flatnonzero(events.mask == value)
        counts[:, i] = np.searchsorted(at, hi) - np.searchsorted(at, lo)
    single = all(bin(int(m)).count("1") == 1 for m in masks)
    if single:
        reached = (counts > 0).sum(axis=1).astype(np.int64)
    else:
        # Most distinct steps distinct events can fill: steps minus the largest deficiency
        # |S| - |events matching a step of S| over sets S of steps (Hall, König).
        worst = np.zeros(len(starts), np.int64)
        for subset in range(1, 1 << steps):
            touching = np.array([(int(m) & subset) != 0 for m in masks], np.int64)
            worst = np.maximum(worst, bin(subset).count("1") - counts @ touching)
        reached = steps - worst
    firsts = np.full((len(starts), steps), np.iinfo(np.int64).max, np.int64)
    rows = _step_rows(events.mask, steps)
    for k in range(steps):
        pos = np.searchsorted(rows[k], lo)
        ok = pos < len(rows[k])
        found = rows[k][np.minimum(pos, max(len(rows[k]) - 1, 0))] if len(rows[k]) else pos
        ok &= found < hi if len(rows[k]) else ok
        firsts[ok, k] = events.t[found[ok]]
    ordered = np.sort(firsts, axis=1)
    column = np.arange(steps)[None, :]
    times = np.where(column < reached[:, None], ordered, -1)
    tainted = np.zeros(len(starts), np.bool_)
    if spec.exclusions:
        cand = np.flatnonzero(events.xmask != 0).astype(np.int64)
        last = times[np.arange(len(starts)), np.maximum(reached - 1, 0)]
        complete = reached == steps
        start_key = key[starts]
        upper = np.where(complete, start_key + (last - events.t[starts]) - 1,
                         start_key + window)
        pos = np.searchsorted(cand, np.searchsorted(key, start_key, side="right"))
        ok = pos < len(cand)
        found = cand[np.minimum(pos, max(len(cand) - 1, 0))] if len(cand) else pos
        tainted = ok & (key[found] <= upper) if len(cand) else tainted
    return starts, reached, times, tainted


def _choose(events: Events, starts: Ints, reached: Ints, tainted: npt.NDArray[np.bool_],
            steps: int, times: Callable[[Ints], Ints]) -> Outcome:
    """The outcome; ``times(at)``: the step times of the attempts at positions ``at``."""
    if not len(starts):
        empty = np.zeros(0, np.int64)
        return Outcome(empty, empty, np.zeros((0, steps), np.int64), empty)
    owner = events.person[starts]
    firsts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    furthest = np.maximum.reduceat(reached, firsts)
    people = owner[firsts]
    per_attempt = np.repeat(furthest, np.diff(np.r_[firsts, len(owner)]))
    good = np.flatnonzero((reached == per_attempt) & ~tainted)
    first_good = good[np.r_[True, owner[good][1:] != owner[good][:-1]]] if good.size else good
    counted = owner[first_good]
    excluded = np.setdiff1d(people, counted, assume_unique=True)
    return Outcome(
        person=counted.astype(np.int64),
        furthest=reached[first_good].astype(np.int64),
        times=times(first_good),
        excluded=excluded.astype(np.int64),
    )
