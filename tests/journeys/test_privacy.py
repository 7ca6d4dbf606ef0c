"""Erasure takes a person's journeys with them: instances, paths and their timers."""

from __future__ import annotations

from tests.journeys.conftest import Env, example


def test_erasure_removes_instances_and_paths(env: Env) -> None:
    env.templates()
    env.live(example("welcome"))
    kari = env.identify("kari", plan="free")
    ola = env.identify("ola", plan="free")
    env.track("kari", "User Registered")
    env.track("ola", "User Registered")
    r = env.client.post("/api/v1/privacy/erase", json={"type": "user_id", "value": "kari"},
                        headers=env.admin)
    assert r.status_code == 200, r.text
    with env.services.db.read() as tx:
        left = tx.execute("SELECT DISTINCT profile_id FROM journey_instances")
        paths = tx.execute("SELECT DISTINCT profile_id FROM journey_path")
    assert [p for (p,) in left] == [ola] and [p for (p,) in paths] == [ola]
    assert env.advance(24 * 3600)["fired"] == 1  # only ola's timer is left
    assert kari != ola
