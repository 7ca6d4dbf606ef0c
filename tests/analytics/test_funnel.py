"""Funnel semantics (PostHog's definition) on hand-built histories, through the HTTP API, the
worker and the projector, on SQLite and PostgreSQL. Each history's answer is worked out in
the comments next to it. Times are minutes after T0 (2026-01-05) unless said otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from tests.analytics.conftest import Env, at

RANGE = {"from": at(days=-1), "to": at(days=30)}


def funnel(env: Env, steps: list[Any], **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"steps": [{"event": s} if isinstance(s, str) else s for s in steps],
                            **RANGE, **kw}
    result: dict[str, Any] = env.post("/api/v1/analytics/funnel", body)
    return result


def counts(result: dict[str, Any]) -> list[int]:
    return [s["count"] for s in result["steps"]]


def by_value(result: dict[str, Any]) -> dict[Any, list[int]]:
    return {b["value"]: [s["count"] for s in b["steps"]] for b in result["breakdown"]}


def e(env: Env, user: str, event: str, minute: float, **props: Any) -> dict[str, Any]:
    return env.track(user, event, at(minute), **props)


def test_ordered_counts_rates_times_and_dropped_people(env: Env) -> None:
    env.send(
        # u1: A, B, C in order -> step 3.
        e(env, "u1", "A", 0), e(env, "u1", "B", 1), e(env, "u1", "C", 2),
        # u2: A, C, B -> B after A (step 2); no C after that B -> step 2.
        e(env, "u2", "A", 0), e(env, "u2", "C", 1), e(env, "u2", "B", 2),
        # u3: B then A -> the attempt starts at A; no B after it -> step 1.
        e(env, "u3", "B", 0), e(env, "u3", "A", 1),
        # u4: never did A -> not in the funnel.
        e(env, "u4", "C", 0),
    )
    env.settle()
    result = funnel(env, ["A", "B", "C"])
    assert counts(result) == [3, 2, 1]
    steps = result["steps"]
    assert [s["conversion_rate"] for s in steps] == [1.0, 0.666667, 0.333333]
    assert [s["conversion_from_previous"] for s in steps] == [1.0, 0.666667, 0.5]
    # A->B: u1 took 60 s, u2 120 s; B->C: u1 60 s.
    assert steps[1]["avg_time_to_convert_s"] == 90.0
    assert steps[1]["median_time_to_convert_s"] == 90.0
    assert steps[2]["avg_time_to_convert_s"] == 60.0
    assert steps[0]["avg_time_to_convert_s"] is None
    u2, u3 = env.profile_of("u2"), env.profile_of("u3")
    assert steps[0]["dropped"] == {
        "count": 1, "people": [{"profile_id": u3, "events": f"/api/v1/profiles/{u3}/events"}],
        "next_cursor": None}
    assert steps[1]["dropped"]["count"] == 1
    assert steps[1]["dropped"]["people"][0]["profile_id"] == u2
    assert "dropped" not in steps[2]
    assert result["conversion_rate"] == 0.333333
    assert result["median_time_to_convert_s"] == 120.0  # u1: A at 0, C at 2 min
    # The people behind a step, a page at a time.
    reached = {"steps": [{"event": s} for s in "ABC"], **RANGE,
               "people": {"step": 0, "status": "reached", "limit": 2}}
    page = env.post("/api/v1/analytics/funnel/people", reached)
    assert page["count"] == 3 and len(page["people"]) == 2 and page["next_cursor"]
    reached["people"]["cursor"] = page["next_cursor"]
    rest = env.post("/api/v1/analytics/funnel/people", reached)
    seen = [p["profile_id"] for p in page["people"] + rest["people"]]
    assert sorted(seen) == sorted(env.profile_of(u) for u in ("u1", "u2", "u3"))
    assert rest["next_cursor"] is None
    converted = env.post("/api/v1/analytics/funnel/people", {
        **reached, "people": {"step": 2, "status": "converted"}})
    assert [p["profile_id"] for p in converted["people"]] == [env.profile_of("u1")]


def test_window_is_inclusive_and_every_step_one_event_starts_an_attempt(env: Env) -> None:
    env.send(
        # w1: B exactly 10 min after A: inside a 10-minute window (inclusive) -> step 2.
        e(env, "w1", "A", 0), e(env, "w1", "B", 10),
        # w2: B 10 min 1 s after A -> outside -> step 1.
        e(env, "w2", "A", 0), env.track("w2", "B", at(10, seconds=1)),
        # w3: A at 0 and 5, B at 14: too late for the first attempt, in time for the
        # second (9 min) -> step 2.
        e(env, "w3", "A", 0), e(env, "w3", "A", 5), e(env, "w3", "B", 14),
    )
    env.settle()
    result = funnel(env, ["A", "B"], window="10m")
    assert counts(result) == [3, 2]
    # Time to convert comes from the attempt that counts: 600 s (w1) and 540 s (w3).
    assert result["steps"][1]["avg_time_to_convert_s"] == 570.0


def test_a_to_a_needs_two_events_and_ties_count_as_simultaneous(env: Env) -> None:
    env.send(
        # a1: one A -> step 1 only (one event never fills two steps).
        e(env, "a1", "A", 0),
        # a2: A, A -> step 2.
        e(env, "a2", "A", 0), e(env, "a2", "A", 1),
        # a3: two A with the same timestamp -> two events -> step 2.
        e(env, "a3", "A", 0), e(env, "a3", "A", 0),
    )
    # t1: B sent before A but with the same timestamp: simultaneous, B may follow A -> 2.
    env.send(e(env, "t1", "B", 0))
    env.send(e(env, "t1", "A", 0))
    # t2: B a minute before A -> 1.
    env.send(e(env, "t2", "B", 0), e(env, "t2", "A", 1))
    env.settle()
    assert counts(funnel(env, ["A", "A"])) == [5, 2]  # t1 and t2 did A once
    assert counts(funnel(env, ["A", "B"])) == [5, 1]  # only t1 did B at/after A


def test_strict_order_breaks_on_any_other_event_in_between(env: Env) -> None:
    env.send(
        # s5: B and X at the same minute: X before B breaks A->B, after B breaks B->C -> 2.
        e(env, "s5", "A", 0), e(env, "s5", "B", 1), e(env, "s5", "X", 1), e(env, "s5", "C", 2),
        # s6: other event only after the funnel -> 3.
        e(env, "s6", "A", 0), e(env, "s6", "B", 1), e(env, "s6", "C", 2), e(env, "s6", "X", 3),
        # s7: Y between B and C -> 2.
        e(env, "s7", "A", 0), e(env, "s7", "B", 1), e(env, "s7", "Y", 1.5),
        e(env, "s7", "C", 2),
        # s8: X breaks the first attempt at once; the second A starts a clean one -> 3.
        e(env, "s8", "A", 0), e(env, "s8", "X", 0.5), e(env, "s8", "A", 1),
        e(env, "s8", "B", 2), e(env, "s8", "C", 3),
        # s3: X at the same time as A can be placed before it -> 3.
        e(env, "s3", "A", 0), e(env, "s3", "X", 0), e(env, "s3", "B", 1), e(env, "s3", "C", 2),
        # s9: an identify call is not an action: it does not break the chain -> 3.
        e(env, "s9", "A", 0),
        {"type": "identify", "userId": "s9", "traits": {"plan": "pro"}, "timestamp": at(1)},
        e(env, "s9", "B", 2), e(env, "s9", "C", 3),
    )
    env.settle()
    assert counts(funnel(env, ["A", "B", "C"], order="strict")) == [6, 6, 4]
    assert counts(funnel(env, ["A", "B", "C"], order="ordered")) == [6, 6, 6]


def test_exclusions_remove_a_person_unless_a_clean_attempt_reaches_as_far(env: Env) -> None:
    env.send(
        # e1: X between A and B in the only attempt (which reaches C) -> excluded.
        e(env, "e1", "A", 0), e(env, "e1", "X", 1), e(env, "e1", "B", 2), e(env, "e1", "C", 3),
        # e2: first attempt tainted (reaches B); the second, clean, reaches B too -> 2.
        e(env, "e2", "A", 0), e(env, "e2", "X", 1), e(env, "e2", "B", 2),
        e(env, "e2", "A", 10), e(env, "e2", "B", 11),
        # e3: X after B, outside the excluded span A->B -> 3.
        e(env, "e3", "A", 0), e(env, "e3", "B", 1), e(env, "e3", "X", 2), e(env, "e3", "C", 3),
        # e4: A then X, B never comes: X is inside the window -> excluded.
        e(env, "e4", "A", 0), e(env, "e4", "X", 1),
        # e5: the furthest attempt (3) is clean; a later tainted one reaches 1 -> 3.
        e(env, "e5", "A", 0), e(env, "e5", "B", 1), e(env, "e5", "C", 2),
        e(env, "e5", "A", 5), e(env, "e5", "X", 6),
        # e6: the furthest attempt (3) is tainted, a clean one only reaches 2 -> excluded.
        e(env, "e6", "A", 0), e(env, "e6", "X", 1), e(env, "e6", "B", 2), e(env, "e6", "C", 3),
        e(env, "e6", "A", 10), e(env, "e6", "B", 11),
        # e7: tainted attempt reaches 3 (C at 22); the later clean attempt reaches 3 too and
        # counts (times from it: 1 min, 1 min) -> 3.
        e(env, "e7", "A", 0), e(env, "e7", "X", 1), e(env, "e7", "B", 2),
        e(env, "e7", "A", 20), e(env, "e7", "B", 21), e(env, "e7", "C", 22),
        # e8: X at the same time as A is not strictly after it -> 2.
        e(env, "e8", "A", 0), e(env, "e8", "X", 0), e(env, "e8", "B", 1),
    )
    env.settle()
    result = funnel(env, ["A", "B", "C"],
                    exclusions=[{"event": "X", "from_step": 0, "to_step": 1}])
    assert counts(result) == [5, 5, 3]  # e2, e3, e5, e7, e8; C: e3, e5, e7
    assert result["excluded_people"] == 3  # e1, e4, e6
    # A->B: 60 s for all five; B->C: e3 120 s, e5 60 s, e7 60 s.
    assert result["steps"][1]["avg_time_to_convert_s"] == 60.0
    assert result["steps"][2]["avg_time_to_convert_s"] == 80.0
    assert result["steps"][2]["median_time_to_convert_s"] == 60.0
    excluded = env.post("/api/v1/analytics/funnel/people", {
        "steps": [{"event": s} for s in "ABC"], **RANGE,
        "exclusions": [{"event": "X", "from_step": 0, "to_step": 1}],
        "people": {"status": "excluded", "step": 0}})
    assert sorted(p["profile_id"] for p in excluded["people"]) == sorted(
        env.profile_of(u) for u in ("e1", "e4", "e6"))
    # Without the exclusion everybody counts.
    assert counts(funnel(env, ["A", "B", "C"])) == [8, 7, 5]


@pytest.mark.parametrize(("attribution", "expected"), [
    # b1: A(x) 0, A(y) 1, B(z) 2; b2: A(x) 0, B(x) 1; b3: A(-) 0, B(y) 1.
    # First value on any step event: b1 x, b2 x, b3 y (A has none).
    ("first_touch", {"x": [2, 2], "y": [1, 1]}),
    # Last value: b1 z, b2 x, b3 y.
    ("last_touch", {"z": [1, 1], "x": [1, 1], "y": [1, 1]}),
    # Each value on its own events: x: b1 (A only) and b2 (A, B); y: b1 (A only), b3 has
    # no A with y; none: b3 (A only).
    ("all_events", {"x": [2, 1], "y": [1, 0], None: [1, 0]}),
    # Values of step 0's events, and step 0 then only matched by events carrying them:
    # b1 x and y (both convert), b2 x, b3 none.
    ("step:0", {"x": [2, 2], "y": [1, 1], None: [1, 1]}),
    # Values of step 1's events: b1 z, b2 x, b3 y.
    ("step:1", {"z": [1, 1], "x": [1, 1], "y": [1, 1]}),
])
def test_breakdown_attribution(env: Env, attribution: str, expected: dict[Any, list[int]]
                               ) -> None:
    env.send(
        e(env, "b1", "A", 0, source="x"), e(env, "b1", "A", 1, source="y"),
        e(env, "b1", "B", 2, source="z"),
        e(env, "b2", "A", 0, source="x"), e(env, "b2", "B", 1, source="x"),
        e(env, "b3", "A", 0), e(env, "b3", "B", 1, source="y"),
    )
    env.settle()
    result = funnel(env, ["A", "B"], breakdown={"property": "source",
                                                 "attribution": attribution})
    assert by_value(result) == expected
    assert counts(result) == [3, 3]  # the whole funnel, each person once


def test_breakdown_on_a_context_column_and_people_by_value(env: Env) -> None:
    env.send(
        env.track("c1", "A", at(0), context={"campaign": {"source": "news"}}),
        env.track("c1", "B", at(1)),
        env.track("c2", "A", at(0), context={"campaign": {"source": "ads"}}),
    )
    env.settle()
    body = {"steps": [{"event": "A"}, {"event": "B"}], **RANGE,
            "breakdown": {"property": "context.campaign.source"}}
    assert by_value(env.post("/api/v1/analytics/funnel", body)) == {"news": [1, 1],
                                                                    "ads": [1, 0]}
    dropped = env.post("/api/v1/analytics/funnel/people", {
        **body, "people": {"step": 0, "status": "dropped", "breakdown_value": "ads"}})
    assert [p["profile_id"] for p in dropped["people"]] == [env.profile_of("c2")]


def test_any_order_and_the_time_range(env: Env) -> None:
    env.send(
        # y1: C, B, A -> all three in the window -> 3.
        e(env, "y1", "C", 0), e(env, "y1", "B", 1), e(env, "y1", "A", 2),
        # y2: B, A -> 2.
        e(env, "y2", "B", 0), e(env, "y2", "A", 1),
        # y3: A, then C 15 days later (outside 14 days) -> 1.
        e(env, "y3", "A", 0), env.track("y3", "C", at(days=15)),
        # y4: A before 'from', B inside: only B counts -> 1 (any order), 0 (ordered).
        env.track("y4", "A", at(days=-2)), e(env, "y4", "B", 0),
    )
    env.settle()
    assert counts(funnel(env, ["A", "B", "C"], order="any")) == [4, 2, 1]
    # Ordered: y1 (A last), y2 (B before A), y3 (no B) reach 1; y4's A is out of range.
    assert counts(funnel(env, ["A", "B", "C"])) == [3, 0, 0]


def test_step_filters_with_where(env: Env) -> None:
    env.send(
        env.page("p1", "Page Viewed", at(0), url="/pricing"),
        e(env, "p1", "Order Completed", 1, revenue=120),
        env.page("p2", "Page Viewed", at(0), url="/about"),
        e(env, "p2", "Order Completed", 1, revenue=20),
        env.page("p3", "Page Viewed", at(0), url="/pricing"),
        e(env, "p3", "Order Completed", 1, revenue=20),
    )
    env.settle()
    steps = [{"event": "Page Viewed", "where": {"url": "/pricing"}},
             {"event": "Order Completed", "where": {"revenue": {"gte": 100}}}]
    assert counts(funnel(env, steps)) == [2, 1]
    steps[0]["where"] = {"url": {"in": ["/pricing", "/about"]}}
    assert counts(funnel(env, steps)) == [3, 1]
    steps[1]["where"] = {"revenue": {"lt": 100}}
    assert counts(funnel(env, steps)) == [3, 2]


@pytest.mark.parametrize(("body", "field"), [
    ({"steps": []}, "steps"),
    ({"steps": [{"event": "A"}, {"evnt": "B"}]}, "steps[1].evnt"),
    ({"steps": ["A", "B"], "window": "soon"}, "window"),
    ({"steps": ["A", "B"], "order": "sideways"}, "order"),
    ({"steps": ["A", "B"], "from": "yesterday"}, "from"),
    ({"steps": ["A", "B"], "exclusions": [{"event": "X", "from_step": 1, "to_step": 1}]},
     "exclusions[0].to_step"),
    ({"steps": ["A", "B", "C"], "order": "any",
      "exclusions": [{"event": "X", "from_step": 0, "to_step": 1}]}, "exclusions[0]"),
    ({"steps": ["A", "B"], "breakdown": {"property": "x", "attribution": "step:5"}},
     "breakdown.attribution"),
    ({"steps": [{"event": "A", "where": {"n": {"gt": "ten"}}}]}, "steps[0].where.n"),
])
def test_bad_requests_name_the_field(env: Env, body: dict[str, Any], field: str) -> None:
    error = env.post("/api/v1/analytics/funnel", body, status=400)["error"]
    assert error["code"] == "invalid_input"
    assert error["details"][0]["field"] == field, error
