"""Web/in-app messages: stored for the person, fetched by the site with its write key."""

from __future__ import annotations

from typing import Any

from partitur.channels import OutboundMessage
from tests.channels.conftest import Env


def test_site_polls_messages_and_they_are_marked_delivered(env_factory: Any) -> None:
    env: Env = env_factory()
    env.send({"type": "identify", "anonymousId": "anon-9", "userId": "u9",
              "traits": {"first_name": "Kari"}})
    env.process()
    who = env.profile_of("u9")
    template = {"title": "Hi {{ profile.traits.first_name }}", "body": "20% off",
                "url": "https://shop.example/sale"}
    env.enqueue(OutboundMessage(key="web-1", profile_id=who, channel="web", template=template),
                OutboundMessage(key="web-2", profile_id=who, channel="web",
                                template={"title": "Second"}, category="transactional"))
    env.dispatcher().drain()
    assert env.status("web-1")["web-1"]["delivered_at"] is None
    r = env.client.get("/v1/messages?anonymousId=anon-9", auth=(env.key, ""),
                       headers={"Origin": "https://shop.example"})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    messages = r.json()["messages"]
    assert [(m["id"], m["title"]) for m in messages] == [("web-1", "Hi Kari"),
                                                         ("web-2", "Second")]
    assert messages[0]["url"] == "https://shop.example/sale" and messages[0]["body"] == "20% off"
    again = env.client.get(f"/v1/messages?userId=u9&writeKey={env.key}")
    assert again.json() == {"messages": []}
    status = env.status("web-1")["web-1"]
    assert status["status"] == "sent" and status["delivered_at"] is not None
    assert len(env.logged("Web Message Sent")) == 2


def test_messages_need_a_write_key_and_an_id(env_factory: Any) -> None:
    env: Env = env_factory()
    assert env.client.get("/v1/messages?anonymousId=a").status_code == 401
    assert env.client.get("/v1/messages?anonymousId=a", auth=("wk_nope", "")).status_code == 401
    r = env.client.get("/v1/messages", auth=(env.key, ""))
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("'anonymousId'")
    unknown = env.client.get("/v1/messages?anonymousId=never-seen", auth=(env.key, ""))
    assert unknown.json() == {"messages": []}
    pre = env.client.options("/v1/messages", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-headers"] == "authorization"
