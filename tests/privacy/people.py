"""People the privacy tests send, erase and export, and how to look for their traces."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from partitur.services import Services

SHOP_PLAN = """\
name: Shop
events:
  Order Completed:
    properties:
      order_id: {type: string}
"""

# Every string that would betray Erin if it were left anywhere.
ERIN_TRACES = ("erin@example.com", "erin-42", "anon-erin", "phone-erin", "12345678",
               "Erin Example")


def send(client: TestClient, key: str, *events: dict[str, Any]) -> None:
    r = client.post("/v1/batch", json={"writeKey": key, "batch": list(events)})
    assert r.status_code == 200, r.text


def consent(**purposes: bool) -> dict[str, Any]:
    return {"consent": {"categoryPreferences": purposes}}


def erin(client: TestClient, key: str) -> None:
    """Erin browses on a laptop and a phone (two profiles, merged when she logs in on both),
    gives consent, and sends one event the tracking plan will block if one is applied."""
    send(client, key,
         {"type": "page", "anonymousId": "anon-erin", "name": "Home",
          "timestamp": "2025-12-01T10:00:00Z"},
         {"type": "track", "anonymousId": "phone-erin", "event": "App Opened",
          "timestamp": "2025-12-01T10:01:00Z"},
         {"type": "identify", "anonymousId": "anon-erin", "userId": "erin-42",
          "timestamp": "2025-12-01T10:02:00Z",
          "traits": {"email": "Erin@Example.com", "name": "Erin Example",
                     "phone": "+49 151 12345678"},
          "context": consent(marketing_email=True, analytics=True)},
         {"type": "identify", "anonymousId": "phone-erin", "userId": "erin-42",
          "timestamp": "2025-12-01T10:03:00Z"})


def bob(client: TestClient, key: str) -> None:
    send(client, key,
         {"type": "identify", "userId": "bob-7", "anonymousId": "anon-bob",
          "traits": {"email": "bob@example.com", "name": "Bob"},
          "context": consent(marketing_email=False)},
         {"type": "track", "userId": "bob-7", "event": "Order Completed",
          "properties": {"order_id": "o-bob"}})


COLUMNS = {  # every column that can hold personal data
    "events": ["body", "user_id", "anonymous_id"],
    "rejected_events": ["body", "violations"],
    "identifiers": ["key", "id_value"],
    "identity_log": ["id_value", "detail"],
    "profiles": ["traits", "consent", "trait_meta"],
    "profile_traits": ["value"],
    "audit_log": ["detail", "actor"],
}


def traces(services: Services, needles: tuple[str, ...] = ERIN_TRACES) -> list[str]:
    """``table.column: needle`` for every stored occurrence of a needle (case-insensitive)."""
    found = []
    with services.db.read() as tx:
        for table, columns in COLUMNS.items():
            for column in columns:
                for needle in needles:
                    row = tx.one(
                        f"SELECT COUNT(*) FROM {table} WHERE LOWER({column}) LIKE ?",
                        (f"%{needle.lower()}%",),
                    )
                    assert row is not None
                    if row[0]:
                        found.append(f"{table}.{column}: {needle}")
    return found


def count(services: Services, sql: str, params: tuple[Any, ...] = ()) -> int:
    with services.db.read() as tx:
        row = tx.one(sql, params)
    assert row is not None
    return int(row[0])


def lookup_status(client: TestClient, admin: dict[str, str], kind: str, value: str) -> int:
    r = client.get("/api/v1/profiles/lookup", params={"type": kind, "value": value},
                   headers=admin)
    return r.status_code
