"""docs/analytics.md: every request example runs against the real API, and every analytics
route is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

from partitur.analytics.routes import routes
from tests.analytics.conftest import Env, at

DOC = Path(__file__).resolve().parents[2] / "docs" / "analytics.md"
EXAMPLE = re.compile(r"<!-- request: (POST|GET) (\S+) -->\n```json\n(.*?)\n```", re.S)


def test_every_request_example_runs(env: Env) -> None:
    env.send(env.track("d1", "Signed Up", at(0)), env.track("d1", "Order Completed", at(5),
                                                              revenue=10),
             env.page("d1", "Page Viewed", at(1), url="/pricing"),
             env.track("d2", "Signed Up", at(0)), env.track("d2", "App Opened", at(days=8)))
    env.settle()
    examples = EXAMPLE.findall(DOC.read_text())
    assert len(examples) >= 7
    for method, path, body in examples:
        doc = json.loads(body)
        r = env.client.request(method, path, json=doc, headers=env.admin)
        assert r.status_code == 200, (path, r.text)


def test_every_route_is_documented() -> None:
    text = DOC.read_text()
    for route in routes():
        path = getattr(route, "path", "")
        assert path in text, path
