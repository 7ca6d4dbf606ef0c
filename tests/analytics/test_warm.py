"""At start the server reads the profile ids of the analytics files there are (the funnel's
id check) in the background, so the first query after a start does not wait for that."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from partitur.app import create_app
from tests.analytics.conftest import Env, at


def test_ids_of_existing_files_are_read_at_start(env: Env, make_services: Any) -> None:
    env.send(*[env.track(f"u{n}", "Signed Up", at(n)) for n in range(30)])
    env.settle()
    files = env.analytics.projector.store.manifest().files
    assert files
    # A second start on the same store, as after a restart.
    services = make_services(worker_enabled=False)
    analytics = services.extra["analytics"]
    with TestClient(create_app(services=services)):
        warm = analytics._warm
        assert warm is not None
        warm.join(timeout=60)
        ids = analytics.engine.ids
        assert {f.name for f in files} <= {p.rsplit("/", 1)[-1] for p in ids._seen}
        assert len(ids._first) == 30  # one hash per person, read without any query
