"""Every error, from any route, has one JSON shape: {"error": {"code", "message", ...}}."""

from __future__ import annotations

from starlette.testclient import TestClient


def _shape(body: dict[str, object]) -> None:
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]


def test_errors_share_one_shape(client: TestClient, write_key: str, admin: dict[str, str]) -> None:
    cases = [
        client.post("/v1/track", content=b"{not json", headers={"Content-Type": "text/plain"}),
        client.post("/v1/track", json={"writeKey": "nope", "userId": "u", "event": "E"}),
        client.get("/api/v1/profiles/lookup?type=email&value=x@y.z"),
        client.get("/api/v1/profiles/p_missing", headers=admin),
        client.get("/no/such/path"),
        client.delete("/v1/track"),
    ]
    statuses = [r.status_code for r in cases]
    assert statuses == [400, 401, 401, 404, 404, 405]
    for response in cases:
        assert response.headers["content-type"].startswith("application/json")
        _shape(response.json())


def test_health(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["store"] in {"sqlite", "postgres"}
    assert isinstance(body["backlog"], int)
