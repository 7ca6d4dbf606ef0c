"""A journey can be published only when every segment it names exists: the trigger, the
audience, a branch condition, an exit rule; the error names the step or rule and the key."""

from __future__ import annotations

from typing import Any

from tests.journeys.conftest import Env

SEND = {"id": "hello", "type": "send", "channel": "email",
        "template": {"subject": "Hi", "text": "Hello"}}


def publish(env: Env, key: str) -> Any:
    return env.client.post(f"/api/v1/journeys/{key}/publish", json={}, headers=env.admin)


def test_unknown_segments_are_named_where_they_are_used(env: Env) -> None:
    doc = {"key": "j", "trigger": {"segment_entered": "ghosts"},
           "entry": {"audience": {"segment": "nobody"}},
           "exit_when": [{"segment_exited": "ghosts"}],
           "steps": [{"id": "check", "type": "branch",
                      "branches": [{"when": {"segment": "phantoms"}, "next": "hello"}],
                      "default": "hello"}, SEND]}
    saved = env.put(doc)  # a draft may name segments still to come: a warning, not an error
    assert any("unknown segment 'phantoms'" in w for w in saved.get("warnings", [])), saved
    r = publish(env, "j")
    assert r.status_code == 400, r.text
    details = r.json()["error"]["details"]
    found = {(d["path"], d.get("step")) for d in details}
    assert ("trigger", None) in found
    assert ("entry.audience", None) in found
    assert ("steps[0]", "check") in found
    assert ("exit_when[0]", None) in found
    assert "unknown segment 'ghosts'" in r.json()["error"]["message"]

    for key in ("ghosts", "nobody", "phantoms"):
        r = env.client.put(f"/api/v1/segments/{key}", headers=env.admin,
                           json={"key": key, "name": key, "type": "static"})
        assert r.status_code in (200, 201), r.text
    r = publish(env, "j")
    assert r.status_code in (200, 201), r.text
