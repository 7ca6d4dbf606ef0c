"""Queries run apart: a long query is cancelled at its time limit, and while one runs,
ingestion and processing go on."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from partitur.analytics.duck import QueryTimeout
from tests.analytics.conftest import Env, at

SLOW = "SELECT count(*) FROM range(100000000000) a WHERE a.range % 7 = 3"


def test_a_query_past_its_time_limit_is_cancelled(env: Env) -> None:
    engine = env.analytics.engine
    with pytest.raises(QueryTimeout) as caught, engine.cursor(timeout=0.3) as cur:
        cur.sql(SLOW).fetchall()
    assert caught.value.code == "query_timeout"
    # The engine still answers afterwards.
    with engine.cursor() as cur:
        assert cur.sql("SELECT 42").fetchall() == [(42,)]


def test_the_api_answers_503_when_a_query_runs_too_long(make_services: Any) -> None:
    from starlette.testclient import TestClient

    from partitur.app import create_app

    services = make_services(worker_enabled=False, analytics_query_timeout=0.3)
    token = services.keys.create_admin_key("tests")
    service = services.extra["analytics"]

    def slow(doc: Any) -> Any:
        with service.engine.cursor() as cur:
            return cur.sql(SLOW).fetchall()

    service.funnel = slow  # a funnel that takes forever
    with TestClient(create_app(services=services)) as client:
        r = client.post("/api/v1/analytics/funnel", json={"steps": ["A"]},
                        headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "query_timeout"


def test_ingestion_and_processing_go_on_while_a_query_runs(env: Env) -> None:
    started = threading.Event()
    engine = env.analytics.engine
    cursors: list[Any] = []

    def long_query() -> Any:
        with engine.cursor(timeout=60) as cur:
            cursors.append(cur)
            started.set()
            return cur.sql(SLOW).fetchall()

    async def run() -> Any:
        return await env.analytics.run(long_query)

    outcome: list[Any] = []
    runner = threading.Thread(target=lambda: outcome.append(_catch(lambda: asyncio.run(run()))))
    runner.start()
    assert started.wait(10)
    env.send(*(env.track(f"u{i}", "Viewed", at(i)) for i in range(50)))
    assert env.process() == 50
    assert env.flush() == 50
    assert runner.is_alive()  # the query is still running: nothing waited for it
    cursors[0].interrupt()  # stop it (the test's own cleanup)
    runner.join(30)
    assert outcome and isinstance(outcome[0], Exception)


def _catch(fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:
        return exc
