"""The segment API: documents and their errors, the schema, sizes, members, CSV, static lists,
a person's segments."""

from __future__ import annotations

import csv
import io
from typing import Any

import jsonschema_rs
import pytest

from partitur.segments import run_backfills
from tests.segments.conftest import Env


def test_schema_is_published_and_accepts_its_examples(env: Env) -> None:
    r = env.client.get("/api/v1/schemas/segment.json")
    assert r.status_code == 200
    schema = r.json()
    validator = jsonschema_rs.validator_for(schema)
    for example in schema["examples"]:
        validator.validate(example)
        env.put(example)
    assert not validator.is_valid({"key": "x", "type": "static", "condition": {"segment": "y"}})
    assert not validator.is_valid({"key": "x"})  # dynamic without a condition
    assert not validator.is_valid({"key": "x", "condition": {"trait": "a", "equal": 1}})


@pytest.mark.parametrize(
    ("doc", "path", "words"),
    [
        ({"key": "x", "condition": {"all": [{"event": "E", "within": "1 month"}]}},
         "condition.all[0].within", "duration"),
        ({"key": "x", "condition": {"trait": "plan", "equals": "pro", "in": ["a"]}},
         "condition", "exactly one operator"),
        ({"key": "x", "condition": {"any": [{"trait": "a", "exists": 1}]}},
         "condition.any[0].exists", "true or false"),
        ({"key": "x", "condition": {"event": "E", "where": {"price": {"gte": "lots"}}}},
         "condition.where.price.gte", "number"),
        ({"key": "x"}, "condition", "needs a condition"),
        ({"key": "x", "conditon": {}}, "conditon", "unexpected field"),
        ({"key": "y", "condition": {"trait": "a", "exists": True}}, "key", "differs"),
        ({"key": "x", "type": "list"}, "type", "dynamic or static"),
        ({"key": "x", "type": "static", "condition": {"segment": "a"}}, "condition",
         "static segment has no condition"),
        ({"key": "x", "condition": {"event_property": "a", "exists": True}}, "condition",
         "current event"),
        ({"key": "x", "condition": {"segment": "x"}}, "condition", "itself"),
        ({"key": "x", "condition": {"segment": "nope"}}, "condition", "does not exist"),
    ],
)
def test_bad_documents_are_400_naming_the_path(
    env: Env, doc: dict[str, Any], path: str, words: str
) -> None:
    r = env.client.put("/api/v1/segments/x", json=doc, headers=env.admin)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"][0]["path"] == path
    assert words in error["message"]


def test_bad_key_and_json(env: Env) -> None:
    r = env.client.put("/api/v1/segments/bad key!", json={"condition": {"segment": "a"}},
                       headers=env.admin)
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["path"] == "key"
    r = env.client.put("/api/v1/segments/x", content=b"{not json", headers=env.admin)
    assert r.status_code == 400


def test_cycles_are_rejected(env: Env) -> None:
    env.put({"key": "a", "condition": {"trait": "t", "exists": True}})
    env.put({"key": "b", "condition": {"segment": "a"}})
    env.put({"key": "c", "condition": {"any": [{"segment": "b"}]}})
    r = env.client.put("/api/v1/segments/a", json={"key": "a", "condition": {"segment": "c"}},
                       headers=env.admin)
    assert r.status_code == 400
    assert "a -> c -> b -> a" in r.json()["error"]["message"]


def test_admin_token_is_required(env: Env) -> None:
    assert env.client.get("/api/v1/segments").status_code == 401
    assert env.client.put("/api/v1/segments/a", json={}).status_code == 401


def test_lifecycle_sizes_and_delete(env: Env) -> None:
    created = env.put({"key": "pro", "name": "Pro plan", "description": "Paying",
                       "condition": {"trait": "plan", "equals": "pro"}}, status=201)
    assert created["version"] == 1
    for i, plan in enumerate(["pro", "pro", "free"]):
        env.identify(f"u{i}", plan=plan)
    run_backfills(env.services)
    env.put({"key": "users", "condition": {"segment": "pro", "member": False}}, status=201)
    run_backfills(env.services)
    listed = env.client.get("/api/v1/segments", headers=env.admin).json()["segments"]
    assert [(s["key"], s["size"]) for s in listed] == [("pro", 2), ("users", 1)]
    replaced = env.put({"key": "pro", "name": "Pro", "condition": {"trait": "plan",
                                                                  "equals": "pro"}}, status=200)
    assert replaced["version"] == 2
    assert replaced["name"] == "Pro"
    r = env.client.delete("/api/v1/segments/pro", headers=env.admin)
    assert r.status_code == 409
    assert "users" in r.json()["error"]["message"]
    assert env.client.delete("/api/v1/segments/users", headers=env.admin).status_code == 204
    assert env.client.delete("/api/v1/segments/pro", headers=env.admin).status_code == 204
    assert env.client.get("/api/v1/segments/pro", headers=env.admin).status_code == 404
    assert env.client.delete("/api/v1/segments/pro", headers=env.admin).status_code == 404
    r = env.client.put("/api/v1/segments/pro", json={"key": "pro", "type": "static"},
                       headers=env.admin)
    assert r.status_code == 201  # the key is free again, as another type


def test_type_cannot_change(env: Env) -> None:
    env.put({"key": "s", "type": "static"})
    r = env.client.put("/api/v1/segments/s", json={"key": "s", "condition": {"segment": "s2"}},
                       headers=env.admin)
    assert r.status_code == 400  # unknown segment s2 first
    env.put({"key": "s2", "type": "static"})
    r = env.client.put("/api/v1/segments/s", json={"key": "s", "condition": {"segment": "s2"}},
                       headers=env.admin)
    assert r.status_code == 409


def test_members_pages_and_csv(env: Env) -> None:
    env.send(*[{"type": "identify", "userId": f"u{i:02d}",
                "traits": {"email": f"u{i:02d}@example.com", "vip": i % 2 == 0}}
               for i in range(9)])
    env.process()
    env.define("vip", {"trait": "vip", "equals": True})
    expected = sorted(env.profile_of(f"u{i:02d}") for i in range(0, 9, 2))
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        r = env.client.get(f"/api/v1/segments/vip/members?limit=2&cursor={cursor}",
                           headers=env.admin)
        page = r.json()
        seen += [m["profile_id"] for m in page["members"]]
        if page["next"] is None:
            break
        cursor = page["next"]
    assert seen == expected
    r = env.client.get("/api/v1/segments/vip/members?format=csv", headers=env.admin)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["profile_id"] for row in rows] == expected
    by_id = {env.profile_of(f"u{i:02d}"): i for i in range(9)}
    for row in rows:
        i = by_id[row["profile_id"]]
        assert row["user_id"] == f"u{i:02d}"
        assert row["email"] == f"u{i:02d}@example.com"
        assert row["since"].endswith("Z")
    assert env.client.get("/api/v1/segments/nope/members?format=csv",
                          headers=env.admin).status_code == 404
    assert env.client.get("/api/v1/segments/vip/members?format=xml",
                          headers=env.admin).status_code == 400


def test_empty_csv_has_a_header(env: Env) -> None:
    env.put({"key": "empty", "type": "static"})
    r = env.client.get("/api/v1/segments/empty/members?format=csv", headers=env.admin)
    assert r.text == "profile_id,since,user_id,email\n"


def test_static_segments_and_their_dependents(env: Env) -> None:
    kari = env.identify("kari", plan="pro")
    ola = env.identify("ola", plan="free")
    env.put({"key": "webinar", "name": "Webinar attendees", "type": "static"}, status=201)
    env.define("pro-attendees", {"all": [{"segment": "webinar"},
                                         {"trait": "plan", "equals": "pro"}]})
    env.changes()
    r = env.client.post("/api/v1/segments/webinar/members",
                        json={"profile_ids": [kari, ola, "nobody", kari]}, headers=env.admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"segment": "webinar", "added": 2, "unchanged": 0, "unknown": ["nobody"]}
    assert env.members("webinar") == {kari, ola}
    assert env.members("pro-attendees") == {kari}
    assert sorted(env.changes()) == sorted([
        ("other", f"{kari}:webinar", True), ("other", f"{ola}:webinar", True),
        ("other", f"{kari}:pro-attendees", True)])
    r = env.client.post("/api/v1/segments/webinar/members/remove",
                        json={"profile_ids": [kari]}, headers=env.admin)
    assert r.json()["removed"] == 1
    assert env.members("pro-attendees") == set()
    got = env.client.get("/api/v1/segments/webinar", headers=env.admin).json()
    assert got["size"] == 1
    assert "backfill" not in got
    r = env.client.post("/api/v1/segments/pro-attendees/members", json={"profile_ids": [ola]},
                        headers=env.admin)
    assert r.status_code == 409
    r = env.client.post("/api/v1/segments/webinar/members", json={"profile_ids": "x"},
                        headers=env.admin)
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["path"] == "profile_ids"


def test_a_persons_segments_and_history(env: Env) -> None:
    env.define("pro", {"trait": "plan", "equals": "pro"})
    env.define("buyers", {"event": "Order Completed", "within": "30d"})
    kari = env.identify("kari", plan="pro")
    env.track("kari", "Order Completed", total=10)
    env.identify("kari", plan="free")
    r = env.client.get(f"/api/v1/profiles/{kari}/segments", headers=env.admin)
    assert r.status_code == 200
    body = r.json()
    assert [s["key"] for s in body["segments"]] == ["buyers"]
    assert [(h["segment"], h["entered"], h["cause"]) for h in body["history"]] == [
        ("pro", False, "event"), ("buyers", True, "event"), ("pro", True, "event")]
    assert body["history"][0]["seen"] == {"trait:plan": "free"}
    assert body["history"][1]["seen"] == {"event:Order Completed within 30d": 1}
    assert env.client.get("/api/v1/profiles/nobody/segments",
                          headers=env.admin).status_code == 404


def test_the_api_checks_documents_against_the_published_schema() -> None:
    from partitur.errors import InvalidInput
    from partitur.segments.schema import check_schema

    check_schema({"key": "ok", "condition": {"event": "E", "within": "30d"}})
    with pytest.raises(InvalidInput) as caught:
        check_schema({"key": "x", "condition": {"all": [{"event": "E", "within": "1 month"}]}})
    assert caught.value.details[0]["path"].startswith("condition")
    with pytest.raises(InvalidInput) as caught:
        check_schema({"key": "x", "type": "static", "condition": {"segment": "y"}})
    assert caught.value.details[0]["path"] == "$"
