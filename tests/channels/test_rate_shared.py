"""Per-channel send rate limits hold for all dispatchers together: on PostgreSQL the token
bucket is a row that every claim takes its tokens from; on SQLite (one sending process) it
lives in the dispatcher."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from partitur.channels import Dispatcher, OutboundMessage
from partitur.services import Services
from tests.channels.conftest import Env, email_settings
from tests.channels.sinks import SmtpSink

MAIL = {"subject": "News", "text": "Hello"}


def _mails(profile: str, count: int) -> list[OutboundMessage]:
    return [OutboundMessage(key=f"r{n}", profile_id=profile, channel="email", template=MAIL,
                            category="transactional", journey="news", step_id="send")
            for n in range(count)]


def _two(env_factory: Any, make_services: Any, smtp: SmtpSink, now: list[float]
         ) -> tuple[Env, Dispatcher, Dispatcher]:
    settings = {**email_settings(smtp), "channel_rate_limits": {"email": 3}}
    env: Env = env_factory(**settings)
    other: Services = make_services(**settings)  # a second process's services, same store
    first = env.dispatcher(monotonic=lambda: now[0])
    second = Dispatcher(other, monotonic=lambda: now[0])
    env.dispatchers.append(second)
    return env, first, second


@pytest.mark.store("postgres")
def test_two_dispatchers_share_the_limit_on_postgres(
        env_factory: Any, make_services: Any, smtp: SmtpSink, store_kind: str) -> None:
    if store_kind != "postgres":
        pytest.skip("SQLite: one process sends, its dispatcher keeps the bucket")
    now = [1000.0]
    env, first, second = _two(env_factory, make_services, smtp, now)
    who = env.person("r", email="r@example.com")
    env.enqueue(*_mails(who, 10))
    assert first.drain() == 3  # the burst
    assert second.drain() == 0  # the same bucket, empty at this instant
    now[0] += 1.0
    assert second.drain() == 3
    assert first.drain() == 0
    now[0] += 1.0
    counts: list[int] = []
    threads = [threading.Thread(target=lambda d=d: counts.append(d.drain()))
               for d in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(counts) in ([0, 3], [1, 2])  # together, never more than the limit
    assert sum(counts) == 3
    with env.services.db.read() as tx:
        row = tx.one("SELECT tokens FROM channel_rate_buckets WHERE channel = 'email'")
    assert row is not None and 0 <= float(row[0]) < 1
    assert len(smtp.wait(9)) == 9


@pytest.mark.store("sqlite")
def test_rate_limit_in_process_on_sqlite(
        env_factory: Any, make_services: Any, smtp: SmtpSink, store_kind: str) -> None:
    if store_kind != "sqlite":
        pytest.skip("PostgreSQL shares the bucket (the test above)")
    now = [1000.0]
    env, first, _ = _two(env_factory, make_services, smtp, now)
    who = env.person("r", email="r@example.com")
    env.enqueue(*_mails(who, 5))
    assert first.drain() == 3
    now[0] += 0.34
    assert first.drain() == 1
    with env.services.db.read() as tx:  # no table: nothing to share
        assert tx.one("SELECT COUNT(*) FROM sqlite_master WHERE name = "
                      "'channel_rate_buckets'") == (0,)
