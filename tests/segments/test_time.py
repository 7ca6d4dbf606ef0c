"""Time passing: memberships that change without a new event, through the due index."""

from __future__ import annotations

import time
from typing import Any

from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.clock import iso
from partitur.segments import next_due_us
from tests.segments.conftest import Env

DAY = 86_400_000_000
LAPSED = {"all": [{"event": "Order Completed"},
                  {"event": "Order Completed", "performed": False, "within": "30d"}]}


def due_rows(env: Env) -> list[tuple[Any, ...]]:
    with env.services.db.read() as tx:
        return tx.execute("SELECT profile_id, segment, due_at FROM segment_due ORDER BY 1, 2")


def test_no_order_in_30_days_becomes_true_by_time_passing(env: Env) -> None:
    env.define("lapsed", LAPSED)
    kari = env.identify("kari")
    ordered_at = env.clock.now_us()
    env.track("kari", "Order Completed")
    assert env.members("lapsed") == set()
    assert due_rows(env) == [(kari, "lapsed", ordered_at + 30 * DAY + 1)]
    env.changes()

    assert env.advance(days=29) == 0  # nothing due yet
    assert env.members("lapsed") == set()
    assert env.advance(days=1, seconds=1) == 1
    assert env.members("lapsed") == {kari}
    assert env.changes() == [("other", f"{kari}:lapsed", True)]
    assert due_rows(env) == []  # nothing more can change by time alone

    env.track("kari", "Order Completed")  # buys again: out, and due again in 30 days
    assert env.members("lapsed") == set()
    assert due_rows(env) == [(kari, "lapsed", env.clock.now_us() + 30 * DAY + 1)]


def test_ordering_again_moves_the_due_time(env: Env) -> None:
    env.define("lapsed", LAPSED)
    kari = env.identify("kari")
    env.track("kari", "Order Completed")
    env.advance(days=20)
    env.track("kari", "Order Completed")
    env.advance(days=15)  # 35 days after the first order, 15 after the second
    assert env.members("lapsed") == set()
    env.advance(days=15, seconds=1)
    assert env.members("lapsed") == {kari}


def test_trait_date_leaves_a_window(env: Env) -> None:
    env.define("new-signups", {"trait": "signed_up_at", "within_last": "7d"})
    kari = env.identify("kari", signed_up_at=iso(env.clock.now_us() - 2 * DAY))
    assert env.members("new-signups") == {kari}
    env.advance(days=4)
    assert env.members("new-signups") == {kari}
    env.advance(days=1, seconds=1)
    assert env.members("new-signups") == set()
    with env.services.db.read() as tx:
        history = tx.execute("SELECT entered, cause FROM segment_history ORDER BY id")
    assert [(bool(e), c) for e, c in history] == [(True, "event"), (False, "time")]


def test_due_changes_follow_segments_that_refer_to_them(env: Env) -> None:
    env.define("lapsed", LAPSED)
    env.define("lapsed-pro", {"all": [{"segment": "lapsed"}, {"trait": "plan",
                                                               "equals": "pro"}]})
    kari = env.identify("kari", plan="pro")
    env.track("kari", "Order Completed")
    env.advance(days=31)
    assert env.members("lapsed-pro") == {kari}


def test_the_runner_fires_due_changes_on_its_own(make_services: Any, clock: Any) -> None:
    services = make_services(segments_tick_seconds=0.05)
    key, _ = services.keys.create_write_key("web")
    services.extra["segments"].put({"key": "lapsed", "condition": LAPSED})
    with TestClient(create_app(services=services, start_workers=True)) as client:
        r = client.post("/v1/track", json={"writeKey": key, "userId": "kari",
                                           "event": "Order Completed"})
        assert r.status_code == 200
        deadline = time.monotonic() + 20
        while next_due_us(services) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert next_due_us(services) is not None
        from datetime import timedelta

        clock.advance(timedelta(days=31))
        while time.monotonic() < deadline:
            with services.db.read() as tx:
                if tx.one("SELECT 1 FROM segment_members WHERE segment = 'lapsed'"):
                    break
            time.sleep(0.02)
        with services.db.read() as tx:
            assert tx.one("SELECT COUNT(*) FROM segment_members WHERE segment = 'lapsed'") == (1,)
