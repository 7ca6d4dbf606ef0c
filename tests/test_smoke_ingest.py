from __future__ import annotations

import base64

from starlette.testclient import TestClient

from partitur.services import Services


def test_track_is_stored(client: TestClient, services: Services, write_key: str) -> None:
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    r = client.post(
        "/v1/track",
        json={"userId": "u1", "event": "Signed Up", "messageId": "m1"},
        headers={"Authorization": f"Basic {auth}"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True}
    with services.db.read() as tx:
        assert services.events.count(tx) == 1
