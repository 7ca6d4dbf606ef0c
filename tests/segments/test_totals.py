"""All-time event conditions ("ordered at least 3 times", no window, no filter) read a stored
per-person total, not the person's whole history: the totals stay equal to the timeline
through new events, merges, unmerges, late definitions and events dated in the future."""

from __future__ import annotations

from datetime import timedelta

from partitur.clock import iso
from tests.segments.conftest import Env


def _totals(env: Env) -> dict[tuple[str, str], int]:
    with env.services.db.read() as tx:
        return {(p, e): int(n) for p, e, n in tx.execute(
            "SELECT profile_id, event, n FROM segment_event_counts")}


def _timeline(env: Env, pid: str, event: str) -> int:
    with env.services.db.read() as tx:
        row = tx.one("SELECT COUNT(*) FROM profile_events pe JOIN events e ON e.seq = pe.seq "
                     "WHERE pe.profile_id = ? AND e.event = ?", (pid, event))
    assert row is not None
    return int(row[0])


def _hook_rows(env: Env) -> int:
    rows: int = env.services.extra["segments"].hook.event_rows
    return rows


def test_a_long_history_is_not_read_again(env: Env) -> None:
    env.define("frequent", {"event": "Order Completed", "at_least": 3})
    for i in range(2):
        env.track("kari", "Order Completed", n=i)
    kari = env.profile_of("kari")
    assert env.members("frequent") == set()
    env.send(*[{"type": "track", "userId": "kari", "event": "Order Completed"}] * 40)
    env.process()
    assert env.members("frequent") == {kari}
    assert _totals(env)[(kari, "Order Completed")] == 42 == _timeline(env, kari,
                                                                      "Order Completed")
    before = _hook_rows(env)
    env.track("kari", "Order Completed")
    assert _hook_rows(env) == before  # the total, not 43 rows
    assert _totals(env)[(kari, "Order Completed")] == 43
    # Events of other names do not touch it; page names count like track events.
    env.define("readers", {"event": "Docs", "at_least": 2})
    env.send({"type": "page", "userId": "kari", "name": "Docs"},
             {"type": "page", "userId": "kari", "name": "Docs"},
             {"type": "track", "userId": "kari", "event": "Signed Up"})
    env.process()
    assert env.members("readers") == {kari}
    assert _totals(env)[(kari, "Docs")] == 2


def test_a_segment_defined_after_the_events_counts_them(env: Env) -> None:
    for _ in range(3):
        env.track("ola", "Order Completed")
    ola = env.profile_of("ola")
    env.define("frequent", {"event": "Order Completed", "at_least": 3})
    assert env.members("frequent") == {ola}  # the backfill counted the timeline
    assert _totals(env) == {}  # and stored nothing: only the worker keeps totals
    env.define("quad", {"event": "Order Completed", "at_least": 4})
    env.track("ola", "Order Completed")
    assert _totals(env) == {(ola, "Order Completed"): 4}
    assert env.members("quad") == {ola}
    # A not-performed all-time test and at_most use the same total.
    env.define("few", {"event": "Order Completed", "at_most": 4})
    env.define("never", {"event": "Order Completed", "performed": False})
    assert env.members("few") == {ola}
    env.track("ola", "Order Completed")
    assert env.members("few") == set()
    assert env.members("never") == set()


def test_events_dated_in_the_future_count_from_their_time(env: Env) -> None:
    later = iso(env.clock.now_us() + 86_400_000_000)
    env.define("four", {"all": [{"event": "Order Completed", "at_least": 4},
                                {"event": "Signed Up", "within": "365d"}]})
    env.track("kari", "Signed Up")
    for _ in range(3):
        env.track("kari", "Order Completed")
    kari = env.profile_of("kari")
    env.send({"type": "track", "userId": "kari", "event": "Order Completed",
              "timestamp": later, "sentAt": iso(env.clock.now_us())})
    env.process()
    assert _totals(env)[(kari, "Order Completed")] == 4  # stored, but one is not yet due
    assert env.members("four") == set()
    env.advance(hours=23)
    assert env.members("four") == set()
    env.advance(hours=2)
    assert env.members("four") == {kari}


def test_merges_and_unmerges_rebuild_the_totals(env: Env) -> None:
    env.define("four", {"event": "Order Completed", "at_least": 4})
    for _ in range(2):
        env.send({"type": "track", "anonymousId": "kiosk", "event": "Order Completed"})
    env.process()
    for _ in range(2):
        env.track("liv", "Order Completed")
    env.send({"type": "identify", "anonymousId": "kiosk", "userId": "liv"})
    env.process()
    merged = env.profile_of("liv")
    assert env.members("four") == {merged}
    assert _totals(env)[(merged, "Order Completed")] == 4
    env.clock.advance(timedelta(seconds=1))
    r = env.client.post(f"/api/v1/profiles/{merged}/unmerge", json={}, headers=env.admin)
    assert r.status_code == 200, r.text
    liv = env.profile_of("liv")
    assert env.members("four") == set()
    env.track("liv", "Order Completed")
    env.send({"type": "track", "anonymousId": "kiosk", "event": "Order Completed"})
    env.process()
    for pid in (merged, liv):
        assert _totals(env)[(pid, "Order Completed")] == _timeline(env, pid, "Order Completed")
    assert _totals(env)[(merged, "Order Completed")] == 3


def test_totals_follow_the_timeline_over_many_batches(env: Env) -> None:
    env.define("three", {"event": "A", "at_least": 3})
    env.define("b-once", {"any": [{"event": "B", "at_most": 1}, {"trait": "x", "exists": True}]})
    names = ["A", "B", "C"]
    for round_ in range(6):
        batch = [{"type": "track", "userId": f"u{(round_ * 7 + i) % 5}",
                  "event": names[(round_ + i) % 3]} for i in range(round_ + 3)]
        env.send(*batch)
        env.process()
    stored = _totals(env)
    assert stored
    for (pid, name), n in stored.items():
        assert n == _timeline(env, pid, name), (pid, name)
    three = {pid for (pid, name), n in stored.items() if name == "A" and n >= 3}
    assert env.members("three") == three


def test_an_all_time_test_alone_follows_an_event_dated_in_the_future(env: Env) -> None:
    env.define("bought", {"event": "Order Completed"})
    env.track("kari", "Signed Up")
    kari = env.profile_of("kari")
    env.send({"type": "track", "userId": "kari", "event": "Order Completed",
              "timestamp": iso(env.clock.now_us() + 3_600_000_000),
              "sentAt": iso(env.clock.now_us())})
    env.process()
    assert env.members("bought") == set()
    env.advance(minutes=59)
    assert env.members("bought") == set()
    env.advance(minutes=2)
    assert env.members("bought") == {kari}
