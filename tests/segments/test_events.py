"""Segment entries and exits are events in the log: in the person's timeline, once each, from
the partitur-segments source; an event-triggered segment can use them; they can be turned
off."""

from __future__ import annotations

from typing import Any

from tests.segments.conftest import Env


def timeline(env: Env, profile: str) -> list[dict[str, Any]]:
    r = env.client.get(f"/api/v1/profiles/{profile}/events?limit=100", headers=env.admin)
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["events"]))  # oldest first


def segment_events(env: Env, profile: str) -> list[tuple[str, str, str]]:
    return [(e["event"], e["properties"]["segment"], e["properties"]["cause"])
            for e in timeline(env, profile)
            if e.get("event") in ("Segment Entered", "Segment Exited")]


def test_entries_and_exits_are_in_the_timeline(env: Env) -> None:
    env.define("pro", {"trait": "plan", "equals": "pro"})
    kari = env.identify("kari", plan="free")
    env.identify("kari", plan="pro")
    env.identify("kari", plan="free")
    assert segment_events(env, kari) == [("Segment Entered", "pro", "event"),
                                         ("Segment Exited", "pro", "event")]
    entered = next(e for e in timeline(env, kari) if e.get("event") == "Segment Entered")
    assert entered["userId"] == "kari"
    assert entered["properties"]["segment_name"] == "pro"
    with env.services.db.read() as tx:
        source = tx.one("SELECT s.name FROM events e JOIN sources s ON s.id = e.source_id "
                        "WHERE e.event = 'Segment Entered'")
        assert source is not None and source[0] == "partitur-segments"
        assert tx.one("SELECT COUNT(*) FROM events WHERE event LIKE 'Segment %'")[0] == 2
    with env.services.db.read() as tx:  # processed too: nothing left in the queue
        assert env.services.events.backlog(tx) == 0


def test_static_lists_backfill_and_time_write_events_too(env: Env) -> None:
    kari = env.identify("kari", plan="pro")
    ola = env.identify("ola", plan="free")
    env.define("pro", {"trait": "plan", "equals": "pro"})  # backfill
    env.put({"key": "vip", "name": "VIPs", "type": "static"})
    r = env.client.post("/api/v1/segments/vip/members", json={"profile_ids": [ola]},
                        headers=env.admin)
    assert r.status_code == 200, r.text
    env.process()
    assert segment_events(env, kari) == [("Segment Entered", "pro", "backfill")]
    assert segment_events(env, ola) == [("Segment Entered", "vip", "static")]
    vip = next(e for e in timeline(env, ola) if e.get("event") == "Segment Entered")
    assert vip["properties"]["segment_name"] == "VIPs"

    env.define("quiet", {"not": {"event": "Order Completed", "within": "1d"}})
    env.track("ola", "Order Completed")
    assert ("Segment Exited", "quiet", "event") in segment_events(env, ola)
    env.advance(days=2)
    env.process()
    assert segment_events(env, ola)[-1] == ("Segment Entered", "quiet", "time")


def test_a_segment_can_be_built_on_entries_of_another(env: Env) -> None:
    env.define("pro", {"trait": "plan", "equals": "pro"})
    env.define("ever-pro", {"event": "Segment Entered", "where": {"segment": "pro"}})
    kari = env.identify("kari", plan="pro")
    assert env.members("ever-pro") == {kari}
    env.identify("kari", plan="free")
    assert env.members("pro") == set() and env.members("ever-pro") == {kari}


def test_turned_off(make_services: Any) -> None:
    from starlette.testclient import TestClient

    from partitur.app import create_app
    from partitur.segments import run_backfills
    from partitur.worker import ProfileWorker

    services = make_services(worker_enabled=False, segment_events=False)
    services.extra["segments"].put({"key": "pro", "name": "Pro",
                                    "condition": {"trait": "plan", "equals": "pro"}})
    run_backfills(services)
    key, _ = services.keys.create_write_key("web")
    with TestClient(create_app(services=services)) as client:
        r = client.post("/v1/identify", json={"writeKey": key, "userId": "k",
                                              "traits": {"plan": "pro"}})
        assert r.status_code == 200
        ProfileWorker(services).drain()
    with services.db.read() as tx:
        assert tx.one("SELECT COUNT(*) FROM segment_members")[0] == 1
        assert tx.one("SELECT COUNT(*) FROM events WHERE event LIKE 'Segment %'")[0] == 0
