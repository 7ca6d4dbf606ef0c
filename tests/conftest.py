"""Shared fixtures: a real store (SQLite, and PostgreSQL when PARTITUR_TEST_DATABASE_URL is
set), the real app driven in-process, keys to talk to it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.clock import ManualClock
from partitur.services import Services, build_services
from partitur.settings import load_settings

PG_URL = os.environ.get("PARTITUR_TEST_DATABASE_URL")
PG_SKIP_REASON = "PostgreSQL suite skipped: set PARTITUR_TEST_DATABASE_URL to run it"


def pg_schema_url() -> Iterator[str]:
    """A fresh schema on the test server, dropped afterwards."""
    import psycopg

    assert PG_URL
    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    return str(request.param)


@pytest.fixture
def database_url(store_kind: str) -> Iterator[str | None]:
    if store_kind == "postgres":
        yield from pg_schema_url()
    else:
        yield None


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_services(tmp_path: Path, database_url: str | None, clock: ManualClock) -> Iterator[Any]:
    made: list[Services] = []

    def make(**overrides: Any) -> Services:
        settings = load_settings(
            tmp_path / "data", environ={}, database_url=database_url,
            sqlite_synchronous="NORMAL", **overrides,
        )
        services = build_services(settings, clock=clock)
        made.append(services)
        return services

    yield make
    for services in made:
        services.close()


@pytest.fixture
def services(make_services: Any) -> Services:
    return make_services()  # type: ignore[no-any-return]


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    app = create_app(services=services)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def write_key(services: Services) -> str:
    key, _ = services.keys.create_write_key("web")
    return key


@pytest.fixture
def admin_token(services: Services) -> str:
    return services.keys.create_admin_key("tests")


@pytest.fixture
def admin(admin_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token}"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("PARTITUR_REQUIRE_POSTGRES") and not PG_URL:
        raise pytest.UsageError("PARTITUR_REQUIRE_POSTGRES is set but no PostgreSQL URL is")
    # ``@pytest.mark.store("sqlite")``: a behaviour only one store has. The other store's case
    # is deselected rather than skipped, so a skipped PostgreSQL test always means the
    # PostgreSQL suite could not run.
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("store")
        kind = getattr(item, "callspec", None) and item.callspec.params.get("store_kind")
        if marker is not None and kind is not None and kind not in marker.args:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


_pg_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "postgres" in report.keywords:
        _pg_skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI (PARTITUR_REQUIRE_POSTGRES) a skipped PostgreSQL test fails the run."""
    if os.environ.get("PARTITUR_REQUIRE_POSTGRES") and _pg_skipped:
        print(f"\n{len(_pg_skipped)} PostgreSQL tests were skipped, e.g. {_pg_skipped[0]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def wait_processed(services: Services, timeout: float = 20.0) -> None:
    """Wait (bounded) until the profile worker has processed everything queued."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with services.db.read() as tx:
            if services.events.backlog(tx) == 0:
                return
        time.sleep(0.02)
    raise AssertionError(f"events still queued after {timeout}s")


@pytest.fixture
def settle(services: Services) -> Any:
    return lambda: wait_processed(services)
