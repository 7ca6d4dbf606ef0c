"""The ingest-time check drops events (and rejected-store copies) that carry an erased
identifier, within the group commit's transaction; everything else passes untouched."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.testclient import TestClient

from partitur.ingest.decode import decode
from partitur.ingest.rows import to_rows
from partitur.privacy.suppress import SuppressionCheck
from partitur.services import Services
from partitur.worker.processor import rules_from
from tests.privacy.people import SHOP_PLAN, erin, send


@dataclass
class Batch:
    rows: Any
    rejected: Any


def batch(services: Services, *events: dict[str, Any]) -> Batch:
    source = services.keys.get_source("web")
    decoded = decode(json.dumps({"batch": list(events)}).encode(), None, services.limits)
    rows, rejected = to_rows(decoded, None, source_id=source.id,
                             received_us=services.clock.now_us(), limits=services.limits,
                             inspect=services.plan.inspector(source))
    return Batch(rows, rejected)


def who(b: Batch) -> list[str]:
    bodies = [json.loads(r[9]) for r in b.rows]
    return [body.get("anonymousId") or body["userId"] for body in bodies]


def test_suppressed_identifiers_are_dropped_at_the_door(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    check = SuppressionCheck(rules_from(services.settings), services.db.dialect)
    first = batch(services, {"type": "track", "userId": "erin-42", "event": "Opened"})
    with services.db.transaction() as tx:
        assert check(tx, [first]) == 0  # nobody erased yet: one cheap query, nothing else
    assert who(first) == ["erin-42"]

    erin(client, write_key)
    settle()
    assert client.post("/api/v1/privacy/erase", json={"type": "email",
                       "value": "erin@example.com"}, headers=admin).status_code == 200
    services.plan.apply_yaml(SHOP_PLAN)
    services.keys.update_source("web", plan_policy={"unplanned_events": "block"})
    logged = batch(
        services,
        {"type": "track", "userId": " erin-42 ", "event": "Order Completed"},
        {"type": "track", "userId": "bob-7", "event": "Order Completed"},
        {"type": "page", "anonymousId": "anon-erin", "name": "Home"},
        {"type": "alias", "userId": "new-id", "previousId": "phone-erin"},
        {"type": "page", "userId": "anonymous", "anonymousId": "someone", "name": "Home"},
    )
    blocked = batch(
        services,
        {"type": "track", "anonymousId": "visitor", "event": "Newsletter Opened",
         "properties": {"email": "Erin@Example.com"}},
        {"type": "track", "anonymousId": "visitor", "event": "Newsletter Opened",
         "context": {"traits": {"phone": "+49 151 12345678"}}},
        {"type": "track", "userId": "bob-7", "event": "Newsletter Opened"},
    )
    assert len(blocked.rejected) == 3 and blocked.rows == []
    with services.db.transaction() as tx:
        assert check(tx, [logged, blocked]) == 5
    assert who(logged) == ["bob-7", "someone"]
    assert [json.loads(r[0][8])["userId"] for r in blocked.rejected] == ["bob-7"]


def test_erasures_after_the_first_check_are_seen_by_the_next(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    check = SuppressionCheck(rules_from(services.settings), services.db.dialect)
    erin(client, write_key)
    send(client, write_key, {"type": "identify", "userId": "bob-7", "anonymousId": "anon-bob"})
    settle()
    erase = {"type": "user_id", "value": "erin-42"}
    assert client.post("/api/v1/privacy/erase", json=erase, headers=admin).status_code == 200
    events = [{"type": "track", "userId": "bob-7", "event": "Opened"},
              {"type": "track", "anonymousId": "anon-bob", "event": "Opened"},
              {"type": "track", "userId": "erin-42", "event": "Opened"}]
    first = batch(services, *events)
    with services.db.transaction() as tx:
        assert check(tx, [first]) == 1
    assert who(first) == ["bob-7", "anon-bob"]
    erase = {"type": "user_id", "value": "bob-7"}
    assert client.post("/api/v1/privacy/erase", json=erase, headers=admin).status_code == 200
    second = batch(services, *events)
    with services.db.transaction() as tx:
        assert check(tx, [second]) == 3
    assert second.rows == []


def test_the_server_keeps_erased_people_out_of_the_log_and_the_rejected_store(
    client: TestClient, services: Services, write_key: str, admin: dict[str, str], settle: Any
) -> None:
    erin(client, write_key)
    settle()
    erase = {"type": "user_id", "value": "erin-42"}
    assert client.post("/api/v1/privacy/erase", json=erase, headers=admin).status_code == 200
    services.plan.apply_yaml(SHOP_PLAN)
    services.keys.update_source("web", plan_policy={"unplanned_events": "block"})
    with services.db.read() as tx:
        before = tx.one("SELECT MAX(seq) FROM events")
    send(client, write_key,
         {"type": "track", "userId": "erin-42", "event": "Order Completed",
          "properties": {"order_id": "o-1"}},
         {"type": "track", "userId": "erin-42", "event": "Unplanned Thing"},
         {"type": "track", "userId": "bob-7", "event": "Unplanned Thing"},
         {"type": "track", "userId": "bob-7", "event": "Order Completed",
          "properties": {"order_id": "o-2"}})
    with services.db.read() as tx:
        logged = tx.execute("SELECT user_id FROM events WHERE seq > ?",
                            (before[0] if before and before[0] else 0,))
        rejected = tx.execute("SELECT body FROM rejected_events")
    assert [r[0] for r in logged] == ["bob-7"]
    assert len(rejected) == 1 and "erin-42" not in rejected[0][0]
