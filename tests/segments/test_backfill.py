"""Backfill: a new or changed segment evaluates everyone, in resumable batches."""

from __future__ import annotations

from typing import Any

from partitur.segments import backfill_step, run_backfills
from partitur.services import Services
from tests.segments.conftest import Env


def people(env: Env, count: int) -> list[str]:
    env.send(*[{"type": "identify", "userId": f"u{i}", "traits": {"n": i}}
               for i in range(count)])
    env.process()
    return [env.profile_of(f"u{i}") for i in range(count)]


def test_new_segment_is_backfilled(env: Env) -> None:
    ids = people(env, 7)
    body = env.put({"key": "odd", "condition": {"trait": "n", "in": [1, 3, 5]}})
    assert body["size"] == 0
    assert body["backfill"]["status"] == "pending"
    assert body["backfill"]["total"] == 7
    env.changes()
    run_backfills(env.services)
    got = env.client.get("/api/v1/segments/odd", headers=env.admin).json()
    assert got["size"] == 3
    assert got["backfill"]["status"] == "done"
    assert got["backfill"]["done"] == 7
    assert got["backfill"]["finished_at"] is not None
    assert env.members("odd") == {ids[1], ids[3], ids[5]}
    assert env.changes() == []  # by default backfill entries do not start journeys


def test_backfill_entries_can_trigger_journeys(env: Env) -> None:
    ids = people(env, 3)
    env.put({"key": "all", "condition": {"trait": "n", "exists": True},
             "backfill_triggers_journeys": True})
    run_backfills(env.services)
    assert sorted(env.changes()) == sorted(("other", f"{p}:all", True) for p in ids)


def test_changed_condition_reevaluates_and_exits(env: Env) -> None:
    ids = people(env, 5)
    env.define("big", {"trait": "n", "gte": 2})
    assert env.members("big") == set(ids[2:])
    env.define("big", {"trait": "n", "gte": 4})
    assert env.members("big") == {ids[4]}
    with env.services.db.read() as tx:
        exits = tx.execute("SELECT profile_id FROM segment_history WHERE entered = 0 "
                           "AND cause = 'backfill' ORDER BY profile_id")
    assert [r[0] for r in exits] == sorted(ids[2:4])
    renamed = env.put({"key": "big", "name": "Big ones", "condition": {"trait": "n", "gte": 4}})
    assert renamed["backfill"]["status"] == "done"  # same condition: no new backfill


def test_backfill_resumes_after_a_restart(env: Env, make_services: Any) -> None:
    ids = people(env, 5)
    env.put({"key": "all", "condition": {"trait": "n", "exists": True}})
    services: Services = env.services
    assert backfill_step(services, batch=2)
    state = env.client.get("/api/v1/segments/all", headers=env.admin).json()["backfill"]
    assert (state["status"], state["done"]) == ("running", 2)
    assert env.members("all") == set(sorted(ids)[:2])
    again = make_services(worker_enabled=False)  # another process on the same store
    steps = 0
    while backfill_step(again, batch=2):
        steps += 1
    assert steps == 2
    state = env.client.get("/api/v1/segments/all", headers=env.admin).json()["backfill"]
    assert (state["status"], state["done"]) == ("done", 5)
    assert env.members("all") == set(ids)
    with env.services.db.read() as tx:
        assert tx.one("SELECT COUNT(*) FROM segment_history") == (5,)
