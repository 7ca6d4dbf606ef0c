"""The Parquet store: projection exactly once (also across crashes), identity after merges
and unmerges, compaction, erasure — on SQLite and PostgreSQL, through the real app."""

from __future__ import annotations

import json
from typing import Any

import pyarrow.parquet as pq
import pytest

from partitur.analytics.projector import Projector
from tests.analytics.conftest import Env, at


def _outbox(env: Env) -> int:
    with env.services.db.read() as tx:
        row = tx.one("SELECT COUNT(*) FROM analytics_outbox")
    assert row is not None
    return int(row[0])


def test_events_land_in_parquet_once_with_their_columns(env: Env) -> None:
    env.send(
        env.track("u1", "Signed Up", at(0), plan="pro",
                  context={"campaign": {"source": "newsletter", "medium": "email"},
                           "page": {"url": "https://shop.example/welcome", "path": "/welcome"},
                           "locale": "nb-NO"}),
        env.page("u1", "Pricing", at(1), url="https://shop.example/pricing", path="/pricing"),
        env.track("u2", "Order Completed", at(2), revenue=42.5),
    )
    assert env.process() == 3
    assert _outbox(env) == 3  # recorded by the worker's hook, in its transaction
    assert env.flush() == 3
    assert _outbox(env) == 0
    rows = env.rows("SELECT seq, epoch_us(ts), profile_id, type, event, properties, "
                    "campaign_source, campaign_medium, page_url, page_path, locale "
                    "FROM {ev} ORDER BY seq")
    p1, p2 = env.profile_of("u1"), env.profile_of("u2")
    assert [(r[2], r[3], r[4]) for r in rows] == [
        (p1, "track", "Signed Up"), (p1, "page", "Pricing"), (p2, "track", "Order Completed"),
    ]
    assert rows[0][1] == 1_767_571_200_000_000  # 2026-01-05T00:00:00Z
    assert json.loads(rows[0][5]) == {"plan": "pro"}
    assert rows[0][6:] == ("newsletter", "email", "https://shop.example/welcome", "/welcome",
                           "nb-NO")
    assert rows[1][8:10] == ("https://shop.example/pricing", "/pricing")  # a page call's own
    assert json.loads(rows[2][5]) == {"revenue": 42.5}
    # Nothing new: nothing written, no duplicate.
    assert env.flush() == 0
    assert len(env.rows()) == 3
    # The files are plain Parquet a warehouse can read: the manifest lists them.
    manifest = json.loads((env.analytics.engine.store.manifest_path).read_text())
    files = [env.analytics.engine.store.events_dir / f["name"] for f in manifest["files"]]
    assert sum(pq.read_table(f).num_rows for f in files) == 3


def test_a_crash_between_claim_and_release_writes_each_event_once(env: Env) -> None:
    env.send(*(env.track(f"u{i}", "Viewed", at(i)) for i in range(5)))
    env.process()
    projector = Projector(env.services)

    # Crash after the file is in the manifest, before the claimed rows are deleted.
    def crash(name: str) -> None:
        raise RuntimeError("killed")

    projector._release = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        projector.cycle(compact=False)
    assert _outbox(env) == 5
    assert len(env.rows()) == 5
    # A fresh projector (the restarted process) finds the claim and only releases it.
    assert Projector(env.services).flush() == 0
    assert _outbox(env) == 0
    assert len(env.rows()) == 5

    # Crash after the claim is committed, before the file is written.
    env.send(*(env.track(f"v{i}", "Viewed", at(10 + i)) for i in range(4)))
    env.process()
    broken = Projector(env.services)

    def no_disk(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk full")

    broken.store.write_events = no_disk  # type: ignore[method-assign]
    with pytest.raises(OSError):
        broken.cycle(compact=False)
    with env.services.db.read() as tx:
        claimed = tx.one("SELECT COUNT(*) FROM analytics_outbox WHERE file IS NOT NULL")
    assert claimed is not None and claimed[0] == 4
    # Meanwhile more events are processed; they are not part of the earlier claim.
    env.send(env.track("w", "Viewed", at(30)))
    env.process()
    assert Projector(env.services).flush() == 5
    seqs = [r[0] for r in env.rows("SELECT seq FROM {ev} ORDER BY seq")]
    assert len(seqs) == 10 == len(set(seqs))


def test_merged_people_count_as_one_also_retroactively(env: Env) -> None:
    # Anonymous browsing on two devices, then sign-up links both to the user.
    env.send(env.track("anon-phone", "Product Viewed", at(0), anonymous=True),
             env.track("anon-laptop", "Product Viewed", at(1), anonymous=True))
    env.settle()
    before = {r[0] for r in env.rows("SELECT DISTINCT profile_id FROM {ev}")}
    assert len(before) == 2
    env.send({"type": "identify", "userId": "kari", "anonymousId": "anon-phone",
              "timestamp": at(2)},
             {"type": "identify", "userId": "kari", "anonymousId": "anon-laptop",
              "timestamp": at(3)},
             env.track("kari", "Order Completed", at(4)))
    env.settle()
    kari = env.profile_of("kari")
    people = env.rows("SELECT profile_id, count(*) FROM {ev} GROUP BY 1")
    assert people == [(kari, 5)]  # the early anonymous rows too, through the alias table
    # Compaction writes the resolved id into the files themselves.
    env.analytics.projector.cycle(compact=True)
    manifest = env.analytics.engine.store.manifest()
    assert len(manifest.files) == 1
    raw = pq.read_table(env.analytics.engine.store.events_dir / manifest.files[0].name)
    assert set(raw.column("profile_id").to_pylist()) == {kari}


def test_compaction_keeps_every_row_and_drops_old_files_after_the_grace(env: Env) -> None:
    for i in range(6):
        env.send(env.track(f"u{i}", "Viewed", at(i)), env.track(f"u{i}", "Liked", at(i, seconds=1)))
        env.settle()
    projector = env.analytics.projector
    store = projector.store
    assert len(store.manifest().files) == 6
    expected = env.rows("SELECT seq, profile_id, event, epoch_us(ts) FROM {ev} ORDER BY seq")
    projector.cycle(compact=True)
    manifest = store.manifest()
    assert len(manifest.files) == 1 and manifest.files[0].rows == 12
    assert env.rows("SELECT seq, profile_id, event, epoch_us(ts) FROM {ev} ORDER BY seq") == (
        expected)
    # The six small files are retired, still on disk for queries that started before.
    assert len(manifest.retired) == 6
    assert all((store.root / p).exists() for p, _ in manifest.retired)
    after = store.collect(manifest, now=max(t for _, t in manifest.retired) + 3600, grace=60)
    assert after.retired == ()
    assert sorted(p.name for p in store.events_dir.glob("*.parquet")) == [manifest.files[0].name]


def test_erasure_removes_the_person_from_every_file(env: Env) -> None:
    env.send(env.track("anon-1", "Viewed", at(0), anonymous=True),
             env.track("ola", "Viewed", at(1)))
    env.settle()
    env.send({"type": "identify", "userId": "kari", "anonymousId": "anon-1",
              "timestamp": at(2), "traits": {"email": "kari@example.com"}},
             env.track("kari", "Order Completed", at(3)))
    env.settle()
    kari, ola = env.profile_of("kari"), env.profile_of("ola")
    store = env.analytics.engine.store
    before = list(store.events_dir.glob("*.parquet"))
    assert len(before) == 2
    r = env.client.post("/api/v1/privacy/erase", json={"type": "user_id", "value": "kari"},
                        headers=env.admin)
    assert r.status_code == 200, r.text
    assert env.rows("SELECT profile_id, event FROM {ev} ORDER BY seq") == [(ola, "Viewed")]
    # No file on disk holds her rows any more, not even a retired one.
    for path in store.events_dir.glob("*.parquet"):
        ids = set(pq.read_table(path).column("profile_id").to_pylist())
        assert kari not in ids and not any(i != ola for i in ids), path
    for path in store.alias_dir.glob("*.parquet"):
        assert kari not in str(pq.read_table(path).to_pylist())
    with env.services.db.read() as tx:
        assert tx.one("SELECT COUNT(*) FROM analytics_erasures") == (0,)


def test_unmerge_gives_events_back_to_the_restored_profile(env: Env) -> None:
    env.send(env.track("anon-9", "Viewed", at(0), anonymous=True),
             env.track("per", "Signed Up", at(0, seconds=30)))
    env.settle()
    anon = env.profile_of("anon-9", "anonymous_id")
    assert anon != env.profile_of("per")
    env.send({"type": "identify", "userId": "per", "anonymousId": "anon-9",
              "timestamp": at(1)})
    env.send({"type": "track", "anonymousId": "anon-9", "event": "Clicked",
              "timestamp": at(2)})
    env.settle()
    per = env.profile_of("per")
    assert {r[0] for r in env.rows("SELECT profile_id FROM {ev}")} == {per}
    restored = anon if per != anon else env.profile_of("per")
    r = env.client.post(f"/api/v1/profiles/{per}/unmerge", json={}, headers=env.admin)
    assert r.status_code == 200, r.text
    env.flush()
    with env.services.db.read() as tx:
        truth = dict(tx.execute("SELECT seq, profile_id FROM profile_events"))
    got = dict(env.rows("SELECT seq, profile_id FROM {ev}"))
    assert got == truth
    assert len(set(got.values())) == 2 and restored in set(got.values())


def test_the_running_app_projects_in_the_background(make_services: Any) -> None:
    """serve's own threads (worker, projector) make an event queryable without any help."""
    import time

    from starlette.testclient import TestClient

    from partitur.app import create_app

    services = make_services(analytics_flush_seconds=0.05)
    key, _ = services.keys.create_write_key("web")
    with TestClient(create_app(services=services)) as client:
        r = client.post("/v1/track", json={"writeKey": key, "userId": "live", "event": "Ping"})
        assert r.status_code == 200
        engine = services.extra["analytics"].engine
        deadline = time.monotonic() + 20
        found = 0
        while time.monotonic() < deadline and not found:
            with engine.cursor() as cur:
                found = cur.sql(f"SELECT count(*) FROM {engine.source().sql} "
                                "WHERE event = 'Ping'").fetchall()[0][0]
            time.sleep(0.02)
        assert found == 1
        assert services.extra["analytics"].running
    assert not services.extra["analytics"].running  # stopped with the app


def test_an_erasure_interrupted_before_the_rewrite_is_finished_by_the_next_cycle(
        env: Env) -> None:
    from partitur.analytics import record_erasure

    env.send(env.track("kari", "Viewed", at(0)), env.track("ola", "Viewed", at(1)))
    env.settle()
    kari = env.profile_of("kari")
    # The erasing transaction committed, then the process died before rewriting the files.
    with env.services.db.transaction() as tx:
        record_erasure(tx, [kari], [], env.services.clock.now_us())
    assert {r[1] for r in env.rows()} == {kari, env.profile_of("ola")}
    env.analytics.projector.cycle(compact=False)
    assert {r[1] for r in env.rows()} == {env.profile_of("ola")}
    with env.services.db.read() as tx:
        assert tx.one("SELECT COUNT(*) FROM analytics_erasures") == (0,)
