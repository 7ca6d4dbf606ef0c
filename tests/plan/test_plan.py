"""The tracking plan: applied from YAML and the API, enforced per source through /v1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from starlette.testclient import TestClient

from partitur.cli import main
from partitur.services import Services

PLAN = """
name: Shop
events:
  - name: Order Completed
    description: An order was paid.
    producers: [web]
    consumers: [analytics, journeys]
    properties:
      type: object
      required: [order_id, revenue]
      properties:
        order_id: {type: string}
        revenue: {type: number, minimum: 0}
identify:
  traits:
    type: object
    properties:
      plan: {enum: [free, pro]}
"""


def stored(services: Services) -> list[dict[str, Any]]:
    with services.db.read() as tx:
        return [json.loads(r[0]) for r in tx.execute("SELECT body FROM events ORDER BY seq")]


def track(client: TestClient, key: str, event: str, props: dict[str, Any]) -> None:
    r = client.post("/v1/track", json={"writeKey": key, "userId": "u", "event": event,
                                       "properties": props})
    assert r.status_code == 200, r.text


def test_cli_validate_and_apply(tmp_path: Path) -> None:
    good = tmp_path / "plan.yaml"
    good.write_text(PLAN)
    runner = CliRunner()
    r = runner.invoke(main, ["plan", "validate", str(good)])
    assert r.exit_code == 0 and "valid (1 events)" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("events:\n  - name: Broken\n    properties: {type: nonsense}\n")
    r = runner.invoke(main, ["plan", "validate", str(bad)])
    assert r.exit_code == 2 and "event 'Broken'" in r.output
    data = tmp_path / "data"
    r = runner.invoke(main, ["plan", "apply", str(good), "--data", str(data)], env={})
    assert r.exit_code == 0 and "version 1 (applied)" in r.output
    r = runner.invoke(main, ["plan", "apply", str(good), "--data", str(data)], env={})
    assert "version 1 (unchanged)" in r.output


def test_policies_end_to_end(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str]
) -> None:
    services.plan.apply_yaml(PLAN)
    got = client.get("/api/v1/tracking-plan", headers=admin).json()
    assert got["version"] == 1 and got["plan"]["events"][0]["consumers"] == ["analytics",
                                                                            "journeys"]
    # Default policy: violations are flagged (stamped and recorded), unplanned allowed.
    track(client, write_key, "Order Completed", {"order_id": "o1", "revenue": -5})
    track(client, write_key, "Something Else", {"x": 1})
    body = stored(services)
    assert body[0]["_partitur"]["violations"][0]["rule"] == "schema"
    assert "violations" not in body[1].get("_partitur", {})

    services.keys.update_source("web", plan_policy={
        "unplanned_events": "block", "unplanned_properties": "omit", "violations": "block"})
    services.plan._checked = 0.0
    services.keys._cache.clear()
    track(client, write_key, "Unknown Event", {})
    track(client, write_key, "Order Completed", {"order_id": "o2", "revenue": 10, "coupon": "X"})
    track(client, write_key, "Order Completed", {"order_id": "o3"})
    body = stored(services)
    assert [b.get("event") for b in body] == ["Order Completed", "Something Else",
                                               "Order Completed"]
    assert body[2]["properties"] == {"order_id": "o2", "revenue": 10}

    summary = client.get("/api/v1/tracking-plan/violations", headers=admin).json()["violations"]
    by_rule = {(v["event"], v["rule"]): v for v in summary}
    assert by_rule[("Unknown Event", "unplanned_event")]["blocked"] == 1
    assert by_rule[("Order Completed", "schema")]["count"] == 2
    assert by_rule[("Order Completed", "unplanned_property")]["count"] == 1
    rejected = client.get("/api/v1/tracking-plan/rejected", headers=admin).json()["rejected"]
    assert {r["action"] for r in rejected} == {"blocked", "flagged"}
    assert any(r["body"].get("event") == "Unknown Event" for r in rejected)


def test_invalid_plan_over_api(client: TestClient, admin: dict[str, str]) -> None:
    r = client.put("/api/v1/tracking-plan", json={"events": [{"name": "A", "color": "red"}]},
                   headers=admin)
    assert r.status_code == 400 and "event 'A'" in r.json()["error"]["message"]
    assert client.get("/api/v1/tracking-plan", headers=admin).status_code == 404
    assert client.get("/api/v1/schemas/tracking-plan.json").json()["title"] == "TrackingPlan"
