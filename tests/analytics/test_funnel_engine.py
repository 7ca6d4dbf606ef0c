"""The vectorised funnel engine against a brute-force reference that tries every way to fill
the steps, on many small random histories (fixed seed), and its chunking of people."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from partitur.analytics import funnel_engine as fe

STEPS = ("A", "B", "A")  # a repeated step: one event must never fill two steps


def _events(history: list[list[tuple[int, str]]], steps: tuple[str, ...]) -> fe.Events:
    person, t, mask = [], [], []
    for p, events in enumerate(history):
        for when, name in sorted(events, key=lambda e: e[0]):
            person.append(p)
            t.append(when)
            mask.append(sum(1 << k for k, s in enumerate(steps) if s == name))
    zeros = np.zeros(len(t), np.int64)
    return fe.Events(np.array(person, np.int64), np.array(t, np.int64),
                     np.array(mask, np.int64), zeros)


def _reference(events: list[tuple[int, str]], steps: tuple[str, ...], window: int,
               strict: bool) -> int:
    """Furthest step over all attempts, by trying every assignment of events to steps."""
    events = sorted(events, key=lambda e: e[0])
    best = 0

    def valid_strict(chain: list[int]) -> bool:
        lo, hi = events[chain[0]][0], events[chain[-1]][0]
        return all(i in chain for i, (t, _) in enumerate(events) if lo < t < hi)

    def grow(chain: list[int]) -> int:
        k = len(chain)
        if k == len(steps):
            return k
        out = k
        for i, (t, name) in enumerate(events):
            if i in chain or name != steps[k] or t < events[chain[-1]][0]:
                continue
            if t - events[chain[0]][0] > window:
                continue
            nxt = [*chain, i]
            if strict and not valid_strict(nxt):
                continue
            out = max(out, grow(nxt))
        return out

    for i, (_, name) in enumerate(events):
        if name == steps[0]:
            best = max(best, grow([i]))
    return best


@pytest.mark.parametrize(("order", "steps"), [
    ("ordered", STEPS), ("strict", STEPS),
    ("ordered", ("A", "B", "C")),  # distinct steps: older step-1 events are pruned
])
def test_engine_matches_the_exhaustive_reference(order: str, steps: tuple[str, ...]) -> None:
    rng = np.random.default_rng(7)
    history: list[list[tuple[int, str]]] = []
    for _ in range(600):
        size = int(rng.integers(1, 8))
        # Few distinct times, so that ties are common; X is some other event.
        history.append([(int(rng.integers(0, 6)) * 10, str(rng.choice(["A", "B", "C", "X"])))
                        for _ in range(size)])
    names = steps if order == "ordered" else (*steps, "X")  # strict sees every event
    events = _events(history, names)
    if order == "strict":  # X matches no step; it is only there to break chains
        events = fe.Events(events.person, events.t, events.mask & 0b111, events.xmask)
    out = fe.run(events, fe.Spec(steps=3, window_us=25, order=order, exclusions=()))
    got = dict(zip(out.person.tolist(), out.furthest.tolist(), strict=True))
    for p, person_events in enumerate(history):
        expected = _reference(person_events, steps, 25, strict=order == "strict")
        assert got.get(p, 0) == expected, (order, person_events)


def test_any_order_counts_distinct_events_for_repeated_steps() -> None:
    history = [[(0, "A")], [(0, "A"), (5, "A")], [(0, "B"), (1, "A"), (2, "A")]]
    events = _events(history, STEPS)
    out = fe.run(events, fe.Spec(steps=3, window_us=100, order="any", exclusions=()))
    # One A fills one of the two A steps; two As fill both; B + two As fill all three.
    assert out.furthest.tolist() == [1, 2, 3]


def test_people_are_split_into_chunks_when_keys_would_overflow(monkeypatch: Any) -> None:
    rng = np.random.default_rng(3)
    history = [[(int(rng.integers(0, 10**9)), str(rng.choice(["A", "B"])))
                for _ in range(int(rng.integers(1, 6)))] for _ in range(300)]
    events = _events(history, STEPS)
    spec = fe.Spec(steps=3, window_us=10**8, order="ordered", exclusions=())
    whole = fe.run(events, spec)
    monkeypatch.setattr(fe, "KEY_LIMIT", 5 * 10**9)  # a few people per chunk
    assert len(fe._chunks(events, spec.window_us)) > 10
    split = fe.run(events, spec)
    for name in ("person", "furthest", "times", "excluded"):
        assert np.array_equal(getattr(whole, name), getattr(split, name)), name


def test_simultaneous_events_fill_steps_in_any_order() -> None:
    # A, B, A all at the same time can be ordered A -> B -> A.
    history = [[(0, "A"), (0, "B"), (0, "A")]]
    assert _reference(history[0], STEPS, 10, strict=False) == 3
    out = fe.run(_events(history, STEPS), fe.Spec(3, 10, "ordered", ()))
    assert out.furthest.tolist() == [3] and out.times.tolist() == [[0, 0, 0]]
