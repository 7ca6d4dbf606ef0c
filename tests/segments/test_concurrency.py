"""Two processes' worth of segment runners on one store: every due change is applied once."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from partitur.segments import fire_due
from tests.segments.conftest import Env


def test_two_schedulers_share_the_due_rows(env: Env, make_services: Any) -> None:
    env.define("lapsed", {"all": [{"event": "Order Completed"},
                                  {"event": "Order Completed", "performed": False,
                                   "within": "30d"}]})
    env.send(*[{"type": "track", "userId": f"u{i}", "event": "Order Completed"}
               for i in range(120)])
    env.process()
    other = make_services(worker_enabled=False, segments_batch=7)
    env.clock.advance(timedelta(days=31))
    now = env.clock.now_us()
    fired: list[int] = []
    errors: list[BaseException] = []

    def run(services: Any) -> None:
        try:
            fired.append(fire_due(services, now, batch=5))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in (env.services, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sum(fired) == 120
    with env.services.db.read() as tx:
        assert tx.one("SELECT COUNT(*) FROM segment_members WHERE segment = 'lapsed'") == (120,)
        assert tx.one("SELECT COUNT(*) FROM segment_history WHERE cause = 'time'") == (120,)
        assert tx.one("SELECT COUNT(*) FROM segment_due") == (0,)
