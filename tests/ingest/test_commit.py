"""A request is answered only after its events are committed; many requests share a commit."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from partitur.app import create_app
from partitur.services import Services
from tests.ingest.conftest import basic, stored_events


def _client(services: Services) -> httpx.AsyncClient:
    app = create_app(services=services, start_workers=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def test_the_answer_waits_for_the_commit(services: Services, write_key: str) -> None:
    async def run() -> None:
        async with _client(services) as client:
            # The committer is not running yet: the request must not be answered.
            request = asyncio.ensure_future(client.post(
                "/v1/track", json={"userId": "u", "event": "E"}, headers=basic(write_key)
            ))
            done, _ = await asyncio.wait({request}, timeout=0.3)
            assert not done
            assert stored_events(services) == []
            services.committer.start()
            response = await asyncio.wait_for(request, timeout=30)
            assert response.status_code == 200
            assert [e.event for e in stored_events(services)] == ["E"]

    try:
        asyncio.run(run())
    finally:
        services.committer.stop()


def test_concurrent_requests_share_commits(services: Services, write_key: str) -> None:
    requests = 200

    async def run() -> list[int]:
        async with _client(services) as client:
            async def one(i: int) -> int:
                body = {"batch": [{"type": "track", "userId": f"u{i}", "event": "E",
                                   "messageId": f"g{i}-{j}"} for j in range(5)]}
                r = await client.post("/v1/batch", json=body, headers=basic(write_key))
                return r.status_code

            return await asyncio.gather(*(one(i) for i in range(requests)))

    services.committer.start()
    try:
        statuses: Any = asyncio.run(run())
    finally:
        services.committer.stop()
    assert statuses == [200] * requests
    assert services.committer.events == requests * 5
    assert len(stored_events(services)) == requests * 5
    # Group commit: far fewer transactions than requests.
    assert services.committer.commits < requests / 2, services.committer.commits
