"""Each policy action end to end: through /v1/track and /v1/batch into the event log and the
rejected store, on both stores."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from partitur.clock import ManualClock, iso
from partitur.services import Services
from tests.plan.plans import SHOP

ORDER = "Order Completed"
GOOD = {"order_id": "o1", "revenue": 10, "currency": "EUR"}


def stored(services: Services) -> list[dict[str, Any]]:
    with services.db.read() as tx:
        return [json.loads(r[0]) for r in tx.execute("SELECT body FROM events ORDER BY seq")]


def send(client: TestClient, key: str, endpoint: str, calls: list[dict[str, Any]]) -> None:
    """Each call on its own (``/v1/<type>``) or all in one ``/v1/batch``; always a 200."""
    if endpoint == "batch":
        r = client.post("/v1/batch", json={"writeKey": key, "batch": calls})
        assert r.status_code == 200, r.text
        return
    for call in calls:
        kind = call["type"]
        body = {k: v for k, v in call.items() if k != "type"}
        r = client.post(f"/v1/{kind}", json={"writeKey": key, **body})
        assert r.status_code == 200, r.text


def track(event: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": event, "properties": properties, **extra}


def rejected(client: TestClient, admin: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = client.get("/api/v1/tracking-plan/rejected", params=params, headers=admin)
    assert r.status_code == 200, r.text
    return r.json()["rejected"]  # type: ignore[no-any-return]


def summary(client: TestClient, admin: dict[str, str], **params: Any) -> dict[Any, Any]:
    r = client.get("/api/v1/tracking-plan/violations", params=params, headers=admin)
    assert r.status_code == 200, r.text
    return {(v["event"], v["rule"]): v for v in r.json()["violations"]}


def policy(services: Services, **rules: str) -> None:
    services.keys.update_source("web", plan_policy=rules)


MIXED = [
    track(ORDER, GOOD),
    track(ORDER, {**GOOD, "revenue": -5}),  # schema
    track(ORDER, {**GOOD, "coupon": "X"}),  # unplanned property
    track("Newsletter Opened", {"issue": 3}),  # unplanned event
]

endpoints = pytest.mark.parametrize("endpoint", ["track", "batch"])


@endpoints
def test_allow_lets_everything_through_untouched(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], endpoint: str
) -> None:
    services.plan.apply_yaml(SHOP)
    policy(services, unplanned_events="allow", unplanned_properties="allow", violations="allow")
    send(client, write_key, endpoint, MIXED)
    body = stored(services)
    assert [b["properties"] for b in body] == [m["properties"] for m in MIXED]
    assert all("violations" not in b["_partitur"] for b in body)
    assert rejected(client, admin) == [] and summary(client, admin) == {}


@endpoints
def test_flag_stamps_the_stored_event_and_records_it(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], endpoint: str
) -> None:
    services.plan.apply_yaml(SHOP)
    policy(services, unplanned_events="flag", unplanned_properties="flag", violations="flag")
    send(client, write_key, endpoint, MIXED)
    body = stored(services)
    assert [b["properties"] for b in body] == [m["properties"] for m in MIXED]
    assert "violations" not in body[0]["_partitur"]
    assert body[1]["_partitur"]["violations"] == [{
        "rule": "schema", "path": "properties.revenue", "action": "flagged",
        "message": "-5 is less than the minimum of 0"}]
    assert body[2]["_partitur"]["violations"] == [{
        "rule": "unplanned_property", "path": "properties.coupon", "action": "flagged",
        "message": "'coupon' is not a planned property of event 'Order Completed'"}]
    assert body[3]["_partitur"]["violations"][0]["rule"] == "unplanned_event"
    records = rejected(client, admin)
    assert [r["action"] for r in records] == ["flagged"] * 3
    # Newest first; each holds the event as stored, with its violations.
    assert [r["body"] for r in reversed(records)] == body[1:]
    assert {r["message_id"] for r in records} == {b["messageId"] for b in body[1:]}
    assert all(r["plan_version"] == 1 and r["source"] == body[0]["_partitur"]["source"]
               for r in records)


@endpoints
def test_omit_removes_unplanned_properties_from_the_stored_event(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], endpoint: str
) -> None:
    services.plan.apply_yaml(SHOP)
    policy(services, unplanned_properties="omit", violations="allow")
    send(client, write_key, endpoint, [
        track(ORDER, {**GOOD, "coupon": "X", "affiliate": "y"}),
        track("Product Viewed", {"product_id": "p1", "colour": "red"}),
        {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com", "age": 3}},
    ])
    body = stored(services)
    assert body[0]["properties"] == GOOD
    assert body[1]["properties"] == {"product_id": "p1"}
    assert body[2]["traits"] == {"email": "a@example.com"}
    assert [v["path"] for v in body[0]["_partitur"]["violations"]] == [
        "properties.affiliate", "properties.coupon"]
    assert {v["action"] for b in body for v in b["_partitur"]["violations"]} == {"omitted"}
    records = {r["type"] + ":" + (r["event"] or ""): r for r in rejected(client, admin)}
    assert records[f"track:{ORDER}"]["action"] == "omitted"
    # Nothing is lost: the rejected store keeps what was sent.
    assert records[f"track:{ORDER}"]["body"]["properties"] == {
        **GOOD, "coupon": "X", "affiliate": "y"}
    assert records["identify:"]["body"]["traits"]["age"] == 3


@endpoints
def test_block_keeps_the_event_out_of_the_log_but_in_the_rejected_store(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], endpoint: str
) -> None:
    services.plan.apply_yaml(SHOP)
    policy(services, unplanned_events="block", unplanned_properties="block", violations="block")
    send(client, write_key, endpoint, MIXED)
    body = stored(services)
    assert [b["properties"] for b in body] == [GOOD]
    records = rejected(client, admin)
    assert [r["action"] for r in records] == ["blocked"] * 3
    assert [r["body"]["properties"] for r in reversed(records)] == [
        m["properties"] for m in MIXED[1:]]
    assert {v["action"] for r in records for v in r["violations"]} == {"blocked"}


def test_rules_combine_into_the_strongest_action(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str]
) -> None:
    services.plan.apply_yaml(SHOP)
    policy(services, unplanned_properties="omit", violations="flag")
    send(client, write_key, "track", [track(ORDER, {"order_id": 7, "coupon": "X"})])
    [event] = stored(services)
    assert event["properties"] == {"order_id": 7}
    found = {(v["rule"], v["path"]): v["action"] for v in event["_partitur"]["violations"]}
    assert found == {
        ("unplanned_property", "properties.coupon"): "omitted",
        ("schema", "properties.order_id"): "flagged",  # 7 is not a string
        ("schema", "properties.revenue"): "flagged",  # required
    }
    assert [r["action"] for r in rejected(client, admin)] == ["flagged"]
    policy(services, unplanned_properties="omit", violations="block")
    send(client, write_key, "track", [track(ORDER, {"order_id": 7, "coupon": "X"})])
    assert len(stored(services)) == 1
    last = rejected(client, admin)[0]
    assert last["action"] == "blocked" and last["body"]["properties"]["coupon"] == "X"


def test_defaults_flag_violations_and_allow_the_unplanned(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str]
) -> None:
    services.plan.apply_yaml(SHOP)
    send(client, write_key, "batch", [
        *MIXED,
        {"type": "identify", "userId": "u1", "traits": {"email": "not an address"}},
        {"type": "page", "userId": "u1", "name": "Home", "properties": {"path": 3}},
        {"type": "screen", "userId": "u1", "name": "Cart", "properties": {"x": 1}},
        {"type": "alias", "userId": "u1", "previousId": "a1"},
    ])
    flagged = [(b["type"], v["rule"], v["path"]) for b in stored(services)
               for v in b["_partitur"].get("violations", [])]
    assert flagged == [("track", "schema", "properties.revenue"),
                       ("identify", "schema", "traits.email"),
                       ("page", "schema", "properties.path")]


def test_the_plans_policy_applies_unless_the_source_has_its_own(
    client: TestClient, services: Services, write_key: str
) -> None:
    services.plan.apply_yaml(SHOP + "policy: {unplanned_events: block}\n")
    send(client, write_key, "track", [track("Newsletter Opened", {})])
    assert stored(services) == []
    policy(services, unplanned_events="allow")
    send(client, write_key, "track", [track("Newsletter Opened", {})])
    assert [b["event"] for b in stored(services)] == ["Newsletter Opened"]


def test_violations_summary_counts_by_event_and_rule(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str],
    clock: ManualClock,
) -> None:
    services.plan.apply_yaml(SHOP)
    policy(services, unplanned_events="block", unplanned_properties="flag", violations="flag")
    ios_key, ios = services.keys.create_write_key("ios")
    services.keys.update_source("ios", plan_policy={"violations": "block"})
    first = clock.now_us()
    send(client, write_key, "batch", [
        track(ORDER, {**GOOD, "revenue": -1}),
        track(ORDER, {**GOOD, "revenue": "12.00", "currency": "eur"}),  # two errors, one event
        track(ORDER, {**GOOD, "coupon": "A", "note": "B"}),
        track(ORDER, {**GOOD, "coupon": "C"}),
        track("Newsletter Opened", {}),
        track("Newsletter Opened", {}),
    ])
    clock.advance(timedelta(minutes=5))
    send(client, ios_key, "batch", [track(ORDER, {"order_id": "o9", "revenue": -2})])
    got = summary(client, admin)
    assert set(got) == {(ORDER, "schema"), (ORDER, "unplanned_property"),
                        ("Newsletter Opened", "unplanned_event")}
    schema = got[(ORDER, "schema")]
    assert (schema["count"], schema["violations"], schema["flagged"], schema["blocked"]) == (
        3, 4, 2, 1)
    assert schema["last_seen"] == iso(clock.now_us())
    assert schema["sample"] == "-2 is less than the minimum of 0"  # the latest
    assert schema["paths"] == {"properties.revenue": 3, "properties.currency": 1}
    unplanned = got[(ORDER, "unplanned_property")]
    assert (unplanned["count"], unplanned["violations"]) == (2, 3)
    assert unplanned["paths"] == {"properties.coupon": 2, "properties.note": 1}
    event = got[("Newsletter Opened", "unplanned_event")]
    assert (event["count"], event["blocked"], event["type"]) == (2, 2, "track")
    assert event["last_seen"] == iso(first)
    # Only the iOS source, or only what came after the first batch.
    assert {k: v["count"] for k, v in summary(client, admin, source="ios").items()} == {
        (ORDER, "schema"): 1}
    assert summary(client, admin, source=ios.id).keys() == {(ORDER, "schema")}
    later = summary(client, admin, since=iso(first + 60_000_000))
    assert {k: v["count"] for k, v in later.items()} == {(ORDER, "schema"): 1}
    assert summary(client, admin, since=str(first + 1)).keys() == later.keys()
    r = client.get("/api/v1/tracking-plan/violations", params={"source": "nope"}, headers=admin)
    assert r.status_code == 404
    r = client.get("/api/v1/tracking-plan/violations", params={"since": "soon"}, headers=admin)
    assert r.status_code == 400 and "since" in r.json()["error"]["message"]


def test_rejected_store_pages_and_filters(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str]
) -> None:
    services.plan.apply_yaml(SHOP)
    policy(services, unplanned_events="block", violations="flag")
    send(client, write_key, "batch", [track(f"Unplanned {i}", {}) for i in range(5)]
         + [track(ORDER, {"order_id": "o1", "revenue": -1})])
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2, "rule": "unplanned_event"}
        if cursor:
            params["cursor"] = cursor
        r = client.get("/api/v1/tracking-plan/rejected", params=params, headers=admin)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [item["event"] for item in page["rejected"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"Unplanned {i}" for i in reversed(range(5))]
    assert [r["event"] for r in rejected(client, admin, rule="schema")] == [ORDER]
    assert [r["event"] for r in rejected(client, admin, event="Unplanned 2")] == ["Unplanned 2"]
    assert len(rejected(client, admin, action="blocked")) == 5
    assert len(rejected(client, admin, source="web")) == 6
    for bad in ({"cursor": "abc"}, {"rule": "typo"}, {"limit": 0}, {"action": "dropped"}):
        r = client.get("/api/v1/tracking-plan/rejected", params=bad, headers=admin)
        assert r.status_code == 400, (bad, r.text)


def test_a_retried_event_is_recorded_once(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str]
) -> None:
    services.plan.apply_yaml(SHOP)
    policy(services, unplanned_events="block")
    for _ in range(3):
        send(client, write_key, "batch", [track("Unplanned", {}, messageId="m-1"),
                                          track(ORDER, {"revenue": -1}, messageId="m-2")])
    assert [r["message_id"] for r in rejected(client, admin)] == ["m-2", "m-1"]
    assert {k: v["count"] for k, v in summary(client, admin).items()} == {
        ("Unplanned", "unplanned_event"): 1, (ORDER, "schema"): 1}
    assert len(stored(services)) == 1


def test_no_plan_means_no_checks(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str]
) -> None:
    policy(services, unplanned_events="block")
    send(client, write_key, "track", [track("Anything", {"x": 1})])
    assert len(stored(services)) == 1 and rejected(client, admin) == []


def test_a_plan_applied_elsewhere_takes_effect_within_seconds(
    client: TestClient, services: Services, make_services: Any, write_key: str
) -> None:
    services.plan.apply_yaml(SHOP)
    policy(services, unplanned_events="block")
    send(client, write_key, "track", [track("Launched", {})])
    assert stored(services) == []
    other = make_services()  # another process on the same store
    other.plan.apply_yaml(SHOP.replace("traits:", "  Launched: {}\ntraits:"))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        compiled = services.plan.compiled()
        if compiled is not None and compiled.version == 2:
            break
        time.sleep(0.05)
    send(client, write_key, "track", [track("Launched", {})])
    assert [b["event"] for b in stored(services)] == ["Launched"]


def test_a_pathological_event_records_a_bounded_number_of_violations(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str]
) -> None:
    from partitur.plan.enforce import MAX_RECORDED

    many_props = "\n".join(f"      p{i}: {{type: integer}}" for i in range(50))
    services.plan.apply_yaml(f"events:\n  Wide:\n    properties:\n{many_props}\n")
    policy(services, unplanned_properties="omit", violations="flag")
    props = {**{f"p{i}": "text" for i in range(50)}, **{f"x{i}": 1 for i in range(60)}}
    send(client, write_key, "track", [track("Wide", props)])
    [event] = stored(services)
    assert event["properties"] == {f"p{i}": "text" for i in range(50)}, "all 60 omitted"
    found = event["_partitur"]["violations"]
    unplanned = [v for v in found if v["rule"] == "unplanned_property"]
    assert len(unplanned) == MAX_RECORDED + 1
    assert unplanned[-1] == {"rule": "unplanned_property", "path": "properties",
                             "action": "omitted",
                             "message": "40 more properties are not planned for event 'Wide'"}
    assert len([v for v in found if v["rule"] == "schema"]) == MAX_RECORDED
    assert summary(client, admin)[("Wide", "schema")]["violations"] == MAX_RECORDED
