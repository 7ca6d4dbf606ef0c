"""A request is answered only after its events are committed; many requests share a commit."""

from __future__ import annotations

import asyncio

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


def test_requests_waiting_together_share_one_commit(services: Services, write_key: str) -> None:
    """Requests that arrive while a commit is under way are committed together in the next one:
    here 50 requests queue up while the committer is held, then go in one transaction."""
    requests = 50

    async def run() -> list[int]:
        async with _client(services) as client:
            async def one(i: int) -> int:
                body = {"batch": [{"type": "track", "userId": f"u{i}", "event": "E",
                                   "messageId": f"g{i}-{j}"} for j in range(5)]}
                r = await client.post("/v1/batch", json=body, headers=basic(write_key))
                return r.status_code

            pending = [asyncio.ensure_future(one(i)) for i in range(requests)]
            await asyncio.sleep(0.5)  # every handler is now waiting for its commit
            assert not any(task.done() for task in pending)
            services.committer.start()
            return list(await asyncio.wait_for(asyncio.gather(*pending), timeout=60))

    try:
        statuses = asyncio.run(run())
    finally:
        services.committer.stop()
    assert statuses == [200] * requests
    assert len(stored_events(services)) == requests * 5
    assert services.committer.events == requests * 5
    assert services.committer.commits == 1
