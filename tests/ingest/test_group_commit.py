"""The group committer: one transaction for every request waiting, each told its own result."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from partitur.services import Services
from tests.ingest.conftest import stored_events


def row(message_id: str, ts: int) -> tuple[Any, ...]:
    body = json.dumps({"type": "track", "event": "E", "messageId": message_id})
    return (message_id, "src", "track", "E", "u", None, ts, ts, 0, body)


def test_requests_in_one_commit_each_get_their_own_count(services: Services) -> None:
    now = services.clock.now_us()
    committer = services.committer
    requests = [
        [row("a", now), row("b", now)],
        [row("b", now), row("c", now)],  # "b" is the first request's
        [row("a", now)],
        [row("d", now), row("d", now)],
    ]

    async def run() -> list[int]:
        # Queued before the writer starts, so that all of them go into one transaction.
        waiting = [asyncio.ensure_future(committer.submit(rows)) for rows in requests]
        await asyncio.sleep(0)
        committer.start()
        return list(await asyncio.wait_for(asyncio.gather(*waiting), timeout=30))

    try:
        counts = asyncio.run(run())
    finally:
        committer.stop()
    assert counts == [2, 1, 0, 1]
    assert committer.commits == 1
    assert committer.events == 4
    assert [e.message_id for e in stored_events(services)] == ["a", "b", "c", "d"]


def test_a_failed_commit_fails_every_request_in_it(services: Services) -> None:
    committer = services.committer
    now = services.clock.now_us()
    bad = ("x", "src", "track", "E", "u", None, now, now, 0, None)  # body may not be NULL

    async def run() -> list[Any]:
        waiting = [
            asyncio.ensure_future(committer.submit([row("ok", now)])),
            asyncio.ensure_future(committer.submit([bad])),
        ]
        await asyncio.sleep(0)
        committer.start()
        return list(await asyncio.gather(*waiting, return_exceptions=True))

    try:
        results = asyncio.run(run())
    finally:
        committer.stop()
    assert all(type(r).__name__ == "StorageError" for r in results), results
    assert stored_events(services) == []


def test_the_switch_interval_is_shortened_while_running_and_restored(
    services: Services,
) -> None:
    before = sys.getswitchinterval()
    committer = services.committer
    committer.start()
    try:
        assert sys.getswitchinterval() == min(before, 0.0005)
    finally:
        committer.stop()
    assert sys.getswitchinterval() == before


def test_several_writers_share_the_queue(services: Services) -> None:
    """PostgreSQL runs two writers by default; any number must store everything once."""
    from partitur.ingest.commit import GroupCommitter

    now = services.clock.now_us()
    committer = GroupCommitter(services.db, services.events, writers=3, max_events=50)
    requests = [[row(f"m{i}-{j}", now) for j in range(10)] + [row("shared", now)]
                for i in range(60)]

    async def run() -> list[int]:
        committer.start()
        return list(await asyncio.wait_for(
            asyncio.gather(*(committer.submit(rows) for rows in requests)), timeout=60
        ))

    try:
        counts = asyncio.run(run())
    finally:
        committer.stop()
    assert sum(counts) == 60 * 10 + 1
    assert sorted(counts)[-1] == 11 and counts.count(11) == 1
    assert len(stored_events(services)) == 601
    assert committer.commits > 1
