"""Per-source rate limits: 429 with Retry-After, nothing stored, the bucket refills."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from partitur.app import create_app
from partitur.errors import RateLimited
from partitur.ingest.ratelimit import RateLimiter
from partitur.services import Services
from tests.ingest.conftest import Stored, basic


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket() -> None:
    time = FakeMonotonic()
    limiter = RateLimiter(time)
    limiter.take("s", 10, 10.0)  # a full bucket holds one second's worth
    with pytest.raises(RateLimited) as caught:
        limiter.take("s", 2, 10.0)
    assert caught.value.retry_after == pytest.approx(0.2)
    time.now += 0.2
    limiter.take("s", 2, 10.0)
    limiter.take("other", 10, 10.0)  # sources do not share a bucket
    limiter.take("s", 1000, None)  # no limit set
    limiter.take("s", 1000, 0)


def test_a_request_larger_than_one_second_passes_alone() -> None:
    time = FakeMonotonic()
    limiter = RateLimiter(time)
    limiter.take("s", 50, 10.0)  # one batch of 50 at 10/s: allowed when the bucket is full...
    with pytest.raises(RateLimited) as caught:
        limiter.take("s", 50, 10.0)  # ...and the next waits until it has refilled
    assert caught.value.retry_after == pytest.approx(5.0)
    time.now += 5.0
    limiter.take("s", 50, 10.0)


def test_429_with_retry_after_and_nothing_stored(
    client: TestClient, services: Services, stored: Callable[[], list[Stored]]
) -> None:
    key, _ = services.keys.create_write_key("limited")
    services.keys.update_source("limited", rate_limit=5)
    events = [{"type": "track", "userId": "u", "event": "E"}] * 5
    assert client.post("/v1/batch", json={"batch": events}, headers=basic(key)).status_code == 200
    r = client.post("/v1/batch", json={"batch": events}, headers=basic(key))
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "rate_limited"
    assert len(stored()) == 5
    # Another source is not affected.
    other, _ = services.keys.create_write_key("unlimited")
    assert client.post("/v1/batch", json={"batch": events}, headers=basic(other)).status_code == 200


def test_the_default_limit_and_a_sources_own(make_services: Any) -> None:
    services = make_services(rate_limit=2)
    default_key, _ = services.keys.create_write_key("default")
    free_key, _ = services.keys.create_write_key("free")
    services.keys.update_source("free", rate_limit=0)  # 0: unlimited, whatever the default
    event = {"userId": "u", "event": "E"}
    with TestClient(create_app(services=services, start_workers=False)) as client:
        codes = [client.post("/v1/track", json=event, headers=basic(default_key)).status_code
                 for _ in range(4)]
        assert codes[:2] == [200, 200] and 429 in codes[2:]
        codes = [client.post("/v1/track", json=event, headers=basic(free_key)).status_code
                 for _ in range(20)]
        assert codes == [200] * 20
