"""Paths, retention, time to convert, KPI series with anomalies, drill-down to people and
saving them as a static segment, exports — through the HTTP API on both stores. Expected
answers are worked out in the comments from the histories sent."""

from __future__ import annotations

import csv
import io
from typing import Any

import pyarrow.parquet as pq

from tests.analytics.conftest import Env, at

RANGE = {"from": at(days=-1), "to": at(days=30)}


def _paths_history(env: Env) -> None:
    env.send(
        # u1: SU, PV, PV (a repeat), ProdV, Order
        env.track("u1", "Signed Up", at(0)), env.page("u1", "Page Viewed", at(1)),
        env.page("u1", "Page Viewed", at(2)), env.track("u1", "Product Viewed", at(3)),
        env.track("u1", "Order Completed", at(4)),
        # u2: SU, ProdV, Order
        env.track("u2", "Signed Up", at(0)), env.track("u2", "Product Viewed", at(1)),
        env.track("u2", "Order Completed", at(2)),
        # u3: PV before signing up, then SU, PV
        env.page("u3", "Page Viewed", at(0)), env.track("u3", "Signed Up", at(1)),
        env.page("u3", "Page Viewed", at(2)),
        # u4: never signs up
        env.page("u4", "Page Viewed", at(0)),
    )
    env.settle()


def test_paths_after_and_before_an_event(env: Env) -> None:
    _paths_history(env)
    after = env.post("/api/v1/analytics/paths",
                     {"start": {"event": "Signed Up"}, "steps": 3, **RANGE})
    # Paths (repeats collapsed): u1 SU>PV>ProdV>Order, u2 SU>ProdV>Order, u3 SU>PV.
    links = {(link["source"], link["target"]): link["value"] for link in after["links"]}
    assert links == {
        ("0:Signed Up", "1:Page Viewed"): 2,
        ("0:Signed Up", "1:Product Viewed"): 1,
        ("1:Page Viewed", "2:Product Viewed"): 1,
        ("1:Product Viewed", "2:Order Completed"): 1,
        ("2:Product Viewed", "3:Order Completed"): 1,
    }
    assert after["people"] == 3
    nodes = {n["id"]: n for n in after["nodes"]}
    assert nodes["1:Page Viewed"]["people"] == 2
    assert nodes["1:Page Viewed"]["ended_here"] == 1  # u3 did nothing after
    # The minimum-edge filter keeps the link two people took, and the nodes it joins.
    strong = env.post("/api/v1/analytics/paths",
                      {"start": {"event": "Signed Up"}, "steps": 3, "min_edge": 2, **RANGE})
    assert [(x["source"], x["target"], x["value"]) for x in strong["links"]] == [
        ("0:Signed Up", "1:Page Viewed", 2)]
    assert {n["id"] for n in strong["nodes"]} == {"0:Signed Up", "1:Page Viewed"}
    assert strong["links_below_min_edge"] == 4
    # Without collapsing, u1's second page view is a step of its own.
    raw = env.post("/api/v1/analytics/paths", {"start": "Signed Up", "steps": 2,
                                               "collapse_repeats": False, **RANGE})
    assert {(x["source"], x["target"]) for x in raw["links"]} >= {
        ("1:Page Viewed", "2:Page Viewed")}
    # Before the order: u1 PV>ProdV>Order, u2 SU>ProdV>Order.
    before = env.post("/api/v1/analytics/paths",
                      {"end": {"event": "Order Completed"}, "steps": 2, **RANGE})
    assert {(x["source"], x["target"]): x["value"] for x in before["links"]} == {
        ("-1:Product Viewed", "0:Order Completed"): 2,
        ("-2:Page Viewed", "-1:Product Viewed"): 1,
        ("-2:Signed Up", "-1:Product Viewed"): 1,
    }
    people = env.post("/api/v1/analytics/people", {
        "source": "paths", "query": {"start": "Signed Up", "steps": 3, **RANGE},
        "node": "1:Page Viewed"})
    assert sorted(p["profile_id"] for p in people["people"]) == sorted(
        [env.profile_of("u1"), env.profile_of("u3")])


def test_retention_cohorts_by_first_event(env: Env) -> None:
    env.send(
        # r1: first open on day 0; back on days 1 and 3.
        env.track("r1", "App Opened", at(days=0, hours=9)),
        env.track("r1", "App Opened", at(days=1, hours=9)),
        env.track("r1", "App Opened", at(days=3, hours=9)),
        # r2: first on day 0; back on day 2.
        env.track("r2", "App Opened", at(days=0, hours=20)),
        env.track("r2", "App Opened", at(days=2, hours=1)),
        # r3: first on day 1; back on day 2.
        env.track("r3", "App Opened", at(days=1, hours=3)),
        env.track("r3", "App Opened", at(days=2, hours=3)),
        # r4: first ever on day -5 (before the range): in no cohort.
        env.track("r4", "App Opened", at(days=-5)), env.track("r4", "App Opened", at(days=1)),
    )
    env.settle()
    body = {"start_event": "App Opened", "interval": "day", "periods": 3,
            "from": at(days=0), "to": at(days=2)}
    result = env.post("/api/v1/analytics/retention", body)
    cohorts = {c["cohort"]: (c["size"], c["counts"]) for c in result["cohorts"]}
    assert cohorts == {
        "2026-01-05T00:00:00.000Z": (2, [2, 1, 1, 1]),  # day 1: r1, day 2: r2, day 3: r1
        "2026-01-06T00:00:00.000Z": (1, [1, 1, 0, 0]),  # day 2: r3
    }
    assert result["cohorts"][0]["rates"] == [1.0, 0.5, 0.5, 0.5]
    # Per period, over both cohorts: 3/3, 2/3, 1/3, 1/3.
    assert result["average_rates"] == [1.0, 0.666667, 0.333333, 0.333333]
    back = env.post("/api/v1/analytics/people", {
        "source": "retention", "query": body, "cohort": "2026-01-05", "period": 2})
    assert [p["profile_id"] for p in back["people"]] == [env.profile_of("r2")]
    weekly = env.post("/api/v1/analytics/retention", {**body, "interval": "week",
                                                      "periods": 1})
    # One weekly cohort (week of 2026-01-05) of r1, r2, r3; nobody came back the week after.
    assert [(c["size"], c["counts"]) for c in weekly["cohorts"]] == [(3, [3, 0])]


def test_kpi_series_flags_a_drop_and_a_spike_with_a_sentence(env: Env) -> None:
    # One order a day at noon worth 1000, for four weeks of history and the week shown,
    # except 400 on day 3 (2026-01-08) and 2000 on day 5.
    revenue = {3: 400, 5: 2000}
    env.send(*(env.track("buyer", "Order Completed", at(days=d, hours=12),
                         revenue=revenue.get(d, 1000)) for d in range(-28, 7)))
    env.settle()
    body = {"event": "Order Completed", "metric": "sum", "property": "revenue",
            "interval": "day", "from": at(days=0), "to": at(days=7)}
    result = env.post("/api/v1/analytics/kpi", body)
    [series] = result["series"]
    assert [p["value"] for p in series["points"]] == [1000, 1000, 1000, 400, 1000, 2000, 1000]
    # Same weekday, 4 weeks back: all 1000 -> expected 1000; spread max(0, sqrt 1000, 100)
    # = 100; range 1000 +/- 3 x 100 = 700..1300.
    day3 = series["points"][3]
    assert (day3["expected"], day3["lower"], day3["upper"]) == (1000, 700, 1300)
    assert [(a["t"][:10], a["value"]) for a in result["anomalies"]] == [
        ("2026-01-08", 400), ("2026-01-10", 2000)]
    assert result["anomalies"][0]["message"] == (
        "Order Completed (sum of revenue) dropped 43% below the expected range at "
        "2026-01-08: 400 against 700 to 1300 (usually about 1000)")
    assert "rose 54% above" in result["anomalies"][1]["message"]
    counts = env.post("/api/v1/analytics/kpi", {**body, "metric": "count", "property": None})
    assert [p["value"] for p in counts["series"][0]["points"]] == [1] * 7
    assert counts["anomalies"] == []
    buyers = env.post("/api/v1/analytics/people", {
        "source": "kpi", "query": body, "t": at(days=3)})
    assert [p["profile_id"] for p in buyers["people"]] == [env.profile_of("buyer")]


def test_kpi_unique_people_by_hour_with_breakdown(env: Env) -> None:
    env.send(
        env.track("a", "Visit", at(0), context={"campaign": {"source": "ads"}}),
        env.track("a", "Visit", at(5), context={"campaign": {"source": "ads"}}),
        env.track("b", "Visit", at(10), context={"campaign": {"source": "ads"}}),
        env.track("c", "Visit", at(70), context={"campaign": {"source": "mail"}}),
    )
    env.settle()
    result = env.post("/api/v1/analytics/kpi", {
        "event": "Visit", "metric": "unique_people", "interval": "hour", "from": at(0),
        "to": at(180), "breakdown": "context.campaign.source", "anomalies": False})
    series = {s["value"]: [p["value"] for p in s["points"]] for s in result["series"]}
    assert series == {"ads": [2, 0, 0], "mail": [0, 1, 0]}


def test_time_to_convert_histogram(env: Env) -> None:
    env.send(env.track("t1", "A", at(0)), env.track("t1", "B", at(1)),
             env.track("t2", "A", at(0)), env.track("t2", "B", at(2)),
             env.track("t3", "A", at(0)))
    env.settle()
    result = env.post("/api/v1/analytics/time-to-convert",
                      {"steps": ["A", "B"], **RANGE, "bins": 2})
    # t1 took 60 s, t2 120 s: bins [0, 60) and [60, 120] (the last bin is closed).
    assert result["people"] == 2
    assert [(b["from_s"], b["to_s"], b["count"]) for b in result["bins"]] == [
        (0.0, 60.0, 0), (60.0, 120.0, 2)]
    assert result["median_s"] == 90.0


def test_people_saved_as_a_static_segment_and_exports(env: Env) -> None:
    env.send(env.track("s1", "A", at(0)), env.track("s1", "B", at(1)),
             env.track("s2", "A", at(0)), env.track("s3", "A", at(0)))
    env.settle()
    selection = {"source": "funnel", "query": {"steps": ["A", "B"], **RANGE},
                 "step": 0, "status": "dropped"}
    saved = env.post("/api/v1/analytics/people/save",
                     {**selection, "segment": "dropped-a", "name": "Did A, not B"})
    assert saved["created"] is True and saved["added"] == 2 and saved["people"] == 2
    r = env.client.get("/api/v1/segments/dropped-a/members", headers=env.admin)
    assert r.status_code == 200, r.text
    assert sorted(m["profile_id"] for m in r.json()["members"]) == sorted(
        [env.profile_of("s2"), env.profile_of("s3")])
    again = env.post("/api/v1/analytics/people/save", {**selection, "segment": "dropped-a"})
    assert again["created"] is False and again["unchanged"] == 2
    # Any result as CSV or Parquet.
    funnel = {"steps": ["A", "B"], **RANGE}
    r = env.client.post("/api/v1/analytics/funnel?format=csv", json=funnel, headers=env.admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["name"], row["count"]) for row in rows] == [("A", "3"), ("B", "1")]
    r = env.client.post("/api/v1/analytics/people?format=parquet", json=selection,
                        headers=env.admin)
    assert r.status_code == 200
    table = pq.read_table(io.BytesIO(r.content))
    assert sorted(table.column("profile_id").to_pylist()) == sorted(
        [env.profile_of("s2"), env.profile_of("s3")])


def test_bad_query_requests_name_the_field(env: Env) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("paths", {"steps": 3}, "start"),
        ("paths", {"start": "A", "steps": 11}, "steps"),
        ("retention", {"interval": "day"}, "start_event"),
        ("retention", {"start_event": "A", "interval": "month"}, "interval"),
        ("kpi", {"metric": "sum"}, "property"),
        ("kpi", {"metric": "median"}, "metric"),
        ("people", {"source": "nowhere"}, "source"),
        ("people/save", {"source": "funnel", "query": {"steps": ["A"]}}, "segment"),
    ]
    for path, body, field in cases:
        error = env.post(f"/api/v1/analytics/{path}", body, status=400)["error"]
        assert error["details"][0]["field"] == field, (path, error)
