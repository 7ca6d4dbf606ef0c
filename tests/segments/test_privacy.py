"""A person's segments are in their export, and erasure removes them everywhere segments keep
them (memberships, due times, the history with the values conditions saw, event totals)."""

from __future__ import annotations

from tests.segments.conftest import Env


def test_export_and_erase(env: Env) -> None:
    env.define("example-mail", {"trait": "email", "contains": "@example.com"})
    env.define("buyers", {"event": "Order Completed", "within": "30d"})
    env.define("ever-bought", {"event": "Order Completed"})
    kari = env.identify("kari", email="kari@example.com")
    env.track("kari", "Order Completed")
    env.track("kari", "Order Completed")
    env.identify("ola", email="ola@example.com")
    r = env.client.get("/api/v1/privacy/export", params={"type": "user_id", "value": "kari"},
                       headers=env.admin)
    assert r.status_code == 200, r.text
    exported = r.json()["segments"]
    assert {s["key"] for s in exported["segments"]} == {"example-mail", "buyers", "ever-bought"}
    assert {"trait:email": "kari@example.com"} in [h["seen"] for h in exported["history"]]

    with env.services.db.read() as tx:
        assert tx.one("SELECT n FROM segment_event_counts WHERE profile_id = ?", (kari,)) == (2,)
    r = env.client.post("/api/v1/privacy/erase", json={"type": "user_id", "value": "kari"},
                        headers=env.admin)
    assert r.status_code == 200, r.text
    with env.services.db.read() as tx:
        for table in ("segment_members", "segment_due", "segment_history",
                      "segment_event_counts"):
            left = tx.execute(f"SELECT profile_id FROM {table} WHERE profile_id = ?", (kari,))
            assert left == [], table
        history = tx.execute("SELECT seen FROM segment_history")
    assert history and not any("kari" in (row[0] or "") for row in history)
    assert env.members("example-mail") == {env.profile_of("ola")}
