"""``/api/v1/tracking-plan``: versions, lost-update protection, YAML bodies, validation,
lineage and the published JSON Schema."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import yaml
from starlette.testclient import TestClient

from tests.plan.plans import SHOP

PLAN = yaml.safe_load(SHOP)
URL = "/api/v1/tracking-plan"


def changed(doc: dict[str, Any], description: str) -> dict[str, Any]:
    out = {**doc, "events": dict(doc["events"])}
    out["events"]["Order Completed"] = {**out["events"]["Order Completed"],
                                        "description": description}
    return out


def test_round_trip_with_versions(client: TestClient, admin: dict[str, str]) -> None:
    assert client.get(URL, headers=admin).status_code == 404
    r = client.put(URL, json=PLAN, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"version": 1, "changed": True} and r.headers["etag"] == '"1"'
    got = client.get(URL, headers=admin)
    assert got.headers["etag"] == '"1"'
    body = got.json()
    assert body["version"] == 1 and body["created_at"].startswith("2026-01-01T")
    assert body["plan"] == PLAN  # the canonical form is what was sent
    assert client.put(URL, json=body["plan"], headers=admin).json() == {
        "version": 1, "changed": False}
    r = client.put(URL, json=changed(PLAN, "Paid."), headers=admin)
    assert r.json() == {"version": 2, "changed": True}
    assert client.get(URL, headers=admin).json()["plan"]["events"]["Order Completed"][
        "description"] == "Paid."
    old = client.get(URL, params={"version": 1}, headers=admin).json()
    assert old["version"] == 1 and old["plan"] == PLAN
    assert client.get(URL, params={"version": 9}, headers=admin).status_code == 404
    versions = client.get(f"{URL}/versions", headers=admin).json()["versions"]
    assert [(v["version"], v["events"], v["name"]) for v in versions] == [
        (2, 2, "Shop"), (1, 2, "Shop")]


def test_if_match_prevents_lost_updates(client: TestClient, admin: dict[str, str]) -> None:
    r = client.put(URL, json=PLAN, headers={**admin, "If-Match": '"1"'})
    assert r.status_code == 409 and r.json()["error"]["details"] == [
        {"current_version": 0, "expected_version": 1}]
    assert client.put(URL, json=PLAN, headers={**admin, "If-Match": '"0"'}).status_code == 200
    etag = client.get(URL, headers=admin).headers["etag"]
    # Two editors start from version 1; the second to save is told, not overwritten.
    first = client.put(URL, json=changed(PLAN, "A"), headers={**admin, "If-Match": etag})
    assert first.json() == {"version": 2, "changed": True}
    second = client.put(URL, json=changed(PLAN, "B"), headers={**admin, "If-Match": etag})
    assert second.status_code == 409
    assert "version 2, not 1" in second.json()["error"]["message"]
    r = client.put(URL, params={"expected_version": 1}, json=changed(PLAN, "B"), headers=admin)
    assert r.status_code == 409
    r = client.put(URL, params={"expected_version": 2}, json=changed(PLAN, "B"), headers=admin)
    assert r.json() == {"version": 3, "changed": True}
    r = client.put(URL, json=PLAN, headers={**admin, "If-Match": "*"})
    assert r.json()["version"] == 4
    r = client.put(URL, json=PLAN, headers={**admin, "If-Match": "yesterday"})
    assert r.status_code == 400 and "If-Match" in r.json()["error"]["message"]


def test_yaml_bodies_and_validation(client: TestClient, admin: dict[str, str]) -> None:
    yaml_headers = {**admin, "Content-Type": "application/yaml"}
    r = client.post(f"{URL}/validate", content=SHOP, headers=yaml_headers)
    assert r.json() == {"valid": True, "events": 2}
    broken = SHOP.replace("revenue: {type: number, minimum: 0}", "revenue: {type: numeric}")
    r = client.post(f"{URL}/validate", content=broken, headers=yaml_headers)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "invalid_input"
    assert "event 'Order Completed': properties.revenue.type: invalid JSON Schema" in (
        error["message"])
    assert error["details"][0]["where"] == "event 'Order Completed'"
    assert client.get(URL, headers=admin).status_code == 404, "validating applies nothing"
    r = client.put(URL, content=broken, headers=yaml_headers)
    assert r.status_code == 400 and "event 'Order Completed'" in r.json()["error"]["message"]
    r = client.put(URL, content=SHOP, headers=yaml_headers)
    assert r.json() == {"version": 1, "changed": True}
    r = client.put(URL, content="events: [", headers=yaml_headers)
    assert r.status_code == 400 and "not valid YAML" in r.json()["error"]["message"]
    r = client.put(URL, content=b"{not json", headers=admin)
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"]["message"]


def test_invalid_plans_are_refused_naming_the_event(
    client: TestClient, admin: dict[str, str]
) -> None:
    r = client.put(URL, json={"events": {"A": {"color": "red"}}}, headers=admin)
    assert r.status_code == 400
    assert "event 'A': color: unknown key" in r.json()["error"]["message"]
    r = client.put(URL, json={"events": [{"name": "B", "properties": {"n": {"type": "x"}}}]},
                   headers=admin)
    assert r.status_code == 400 and "event 'B'" in r.json()["error"]["message"]
    assert client.get(URL, headers=admin).status_code == 404


def test_lineage(client: TestClient, admin: dict[str, str], write_key: str) -> None:
    assert client.get(f"{URL}/lineage", headers=admin).status_code == 404
    client.put(URL, json=PLAN, headers=admin)
    found = client.get(f"{URL}/lineage", headers=admin).json()
    assert found["version"] == 1
    web = next(s for s in found["sources"] if s["source"] == "web")
    assert web["known"] is True, "the write_key fixture made a source named web"
    assert {"type": "identify"} in web["produces"]
    journeys = next(c for c in found["consumers"] if c["system"] == "journeys")
    assert journeys["consumes"] == [{"type": "track", "event": "Order Completed"},
                                    {"type": "identify"}]
    order = next(c for c in found["calls"] if c.get("event") == "Order Completed")
    assert order["produced_by"] == ["web", "backend"]


def test_the_document_schema_is_published(client: TestClient) -> None:
    r = client.get("/api/v1/schemas/tracking-plan.json")
    assert r.status_code == 200
    schema = r.json()
    assert schema["title"] == "TrackingPlan"
    assert jsonschema_rs.validator_for(schema).is_valid(PLAN)


def test_admin_token_required(client: TestClient) -> None:
    for method, path in [("GET", URL), ("PUT", URL), ("GET", f"{URL}/violations"),
                         ("GET", f"{URL}/rejected"), ("GET", f"{URL}/lineage"),
                         ("GET", f"{URL}/versions"), ("POST", f"{URL}/validate")]:
        r = client.request(method, path, json=PLAN)
        assert r.status_code == 401, (method, path)
