"""Every operator, through the whole path on both stores: traits and event properties sent over
HTTP, processed by the worker, segments evaluated by the hook and backfill."""

from __future__ import annotations

from typing import Any

from partitur.clock import iso
from tests.segments.conftest import Env

DAY = 86_400_000_000

# (segment condition, is Kari in it, is Ola in it)
CASES: list[tuple[dict[str, Any], bool, bool]] = [
    ({"trait": "plan", "equals": "pro"}, True, False),
    ({"trait": "plan", "not_equals": "pro"}, False, True),
    ({"trait": "plan", "in": ["pro", "team"]}, True, False),
    ({"trait": "plan", "not_in": ["pro", "team"]}, False, True),
    ({"trait": "email", "contains": "@EXAMPLE", "ignore_case": True}, True, False),
    ({"trait": "tags", "contains": "vip"}, True, False),
    ({"trait": "email", "starts_with": "ola"}, False, True),
    ({"trait": "age", "gt": 40}, True, False),
    ({"trait": "age", "gte": 30}, True, True),
    ({"trait": "age", "lt": 40}, False, True),
    ({"trait": "age", "lte": 30}, False, True),
    ({"trait": "address.city", "equals": "Oslo"}, True, False),
    ({"trait": "phone", "exists": True}, False, True),
    ({"trait": "phone", "exists": False}, True, False),
    ({"trait": "signed_up_at", "before": "-30d"}, False, True),
    ({"trait": "signed_up_at", "after": "-30d"}, True, False),
    ({"trait": "signed_up_at", "within_last": "7d"}, True, False),
    ({"trait": "signed_up_at", "more_than_ago": "60d"}, False, True),
    ({"consent": "marketing_email", "is": True}, True, False),
    ({"consent": "marketing_email", "is": False}, False, True),
    ({"consent": "sms", "is": "unknown"}, True, True),
    ({"event": "Order Completed", "where": {"currency": "EUR", "total": {"gte": 100}}},
     True, False),
    ({"event": "Order Completed", "at_least": 2}, False, True),
    ({"event": "Order Completed", "at_most": 1}, True, False),
    ({"event": "Order Completed", "performed": False, "where": {"currency": "NOK"}},
     True, False),
    ({"event": "Order Completed", "where": {"items": {"contains": "boots"}}}, True, False),
    ({"event": "Order Completed", "where": {"coupon": {"exists": True}}}, False, True),
    ({"not": {"all": [{"trait": "plan", "equals": "pro"},
                      {"segment": "op-0"}]}}, False, True),
    ({"any": [{"segment": "op-0"}, {"trait": "age", "lt": 0}]}, True, False),
]


def test_every_operator_on_the_store(env: Env) -> None:
    now = env.clock.now_us()
    kari = env.identify(
        "kari", plan="pro", email="kari@example.com", tags=["vip"], age=41,
        address={"city": "Oslo"}, signed_up_at=iso(now - 2 * DAY),
        consent={"marketing_email": True},
    )
    env.track("kari", "Order Completed", currency="EUR", total=150, items=["boots"])
    # Half the segments exist before the people act (real time), half after (backfill).
    for index, (condition, _, _) in enumerate(CASES[: len(CASES) // 2]):
        env.define(f"op-{index}", condition)
    ola = env.identify(
        "ola", plan="free", email="ola@elsewhere.net", age=30, phone="+4791234567",
        signed_up_at=iso(now - 90 * DAY), consent={"marketing_email": False},
    )
    env.track("ola", "Order Completed", currency="NOK", total=500, coupon="X")
    env.track("ola", "Order Completed", currency="NOK", total=20)
    for index, (condition, _, _) in enumerate(CASES):
        if index >= len(CASES) // 2:
            env.define(f"op-{index}", condition)
    wrong = []
    for index, (condition, in_kari, in_ola) in enumerate(CASES):
        members = env.members(f"op-{index}")
        expected = {p for p, inside in ((kari, in_kari), (ola, in_ola)) if inside}
        if members != expected:
            wrong.append((condition, sorted(members), sorted(expected)))
    assert wrong == []
