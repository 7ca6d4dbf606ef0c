"""The demo talks to Partitur the way a company's systems would: over HTTP, to the tracking API
with the touchpoints' write keys and to the management API with the admin token.

It only ever talks to a loopback address (its keys are published).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import time
from collections.abc import Mapping, Sequence
from http.client import HTTPConnection, HTTPException
from typing import Any
from urllib.parse import urlsplit

from partitur.demo.population import Outgoing
from partitur.errors import PartiturError

# Under the tracking API's default limits (500 KiB a request, 2,500 events a batch).
BATCH_EVENTS = 500
BATCH_BYTES = 400_000


def loopback_url(host: str, port: int) -> str:
    """The URL that reaches a server bound to ``host``; loopback or an error."""
    if host == "localhost":
        return f"http://127.0.0.1:{port}"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ValueError(f"'{host}' is not a loopback address") from None
    if not address.is_loopback:
        raise ValueError(f"'{host}' is not a loopback address")
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{shown}:{port}"


class Api:
    """One keep-alive connection to the server; not shared between threads."""

    def __init__(
        self, base_url: str, keys: Mapping[str, str], admin_token: str, timeout: float = 120.0
    ) -> None:
        parts = urlsplit(base_url)
        try:
            loopback = ipaddress.ip_address(parts.hostname or "").is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"the demo only talks to a loopback address, not '{parts.hostname}'")
        self.base_url = base_url.rstrip("/")
        self.keys = dict(keys)
        self.admin_token = admin_token
        self._host, self._port, self._timeout = parts.hostname or "", parts.port, timeout
        self._conn: HTTPConnection | None = None
        self.accepted = 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """One request; a dropped keep-alive connection is reopened once."""
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = HTTPConnection(self._host, self._port, timeout=self._timeout)
            try:
                self._conn.request(method, path, body=body, headers=headers or {})
                response = self._conn.getresponse()
                return response.status, response.read()
            except (OSError, HTTPException) as exc:
                self.close()
                if attempt == 2:
                    raise PartiturError(f"could not reach {self.base_url}: {exc}") from None
        raise AssertionError("unreachable")

    # -- the management API --------------------------------------------------------------------
    def admin(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        """Call the management API; its JSON answer, or a clean error naming the call."""
        data = None
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        status, raw = self.request(method, path, data, headers)
        if status == 404 and method == "GET":
            return None
        if status >= 300:
            text = raw[:500].decode(errors="replace")
            raise PartiturError(f"{method} {path} answered {status}: {text}")
        return json.loads(raw) if raw else None

    def wait_healthy(self, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                status, raw = self.request("GET", "/health")
                if status == 200:
                    health: dict[str, Any] = json.loads(raw)
                    return health
            except PartiturError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)

    # -- the tracking API ----------------------------------------------------------------------
    def send(self, items: Sequence[Outgoing], sent_at: str | None = None) -> int:
        """Post ``items`` as ``/v1/batch`` calls, one touchpoint's write key each, in order
        within a touchpoint. Without ``sent_at`` the events' own timestamps are kept (a
        historical import); with it, clock skew is corrected as for any live client."""
        by_source: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            by_source.setdefault(item.source, []).append(item.message)
        sent = 0
        for source, messages in by_source.items():
            for body, count in _batches(messages, sent_at):
                self._post_batch(self.keys[source], body)
                sent += count
        self.accepted += sent
        return sent

    def _post_batch(self, key: str, body: bytes) -> None:
        auth = base64.b64encode(f"{key}:".encode()).decode()
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Basic {auth}",
            "User-Agent": "partitur-demo",
        }
        for attempt in range(20):  # the server may shed load for a moment (503/429)
            status, raw = self.request("POST", "/v1/batch", body, headers)
            if status == 200:
                return
            if status not in (429, 503):
                break
            time.sleep(min(0.1 * 2**attempt, 2.0))
        raise PartiturError(
            f"the tracking API answered {status}: {raw[:300].decode(errors='replace')}"
        )


def _batches(messages: list[dict[str, Any]], sent_at: str | None) -> list[tuple[bytes, int]]:
    """Encoded batch bodies within the size limits, with how many events each holds."""
    out: list[tuple[bytes, int]] = []
    encoded = [json.dumps(m, separators=(",", ":")) for m in messages]
    tail = f'],"sentAt":"{sent_at}"}}' if sent_at else "]}"
    current: list[str] = []
    size = 0
    for text in encoded:
        if current and (len(current) >= BATCH_EVENTS or size + len(text) > BATCH_BYTES):
            out.append((('{"batch":[' + ",".join(current) + tail).encode(), len(current)))
            current, size = [], 0
        current.append(text)
        size += len(text) + 1
    if current:
        out.append((('{"batch":[' + ",".join(current) + tail).encode(), len(current)))
    return out
