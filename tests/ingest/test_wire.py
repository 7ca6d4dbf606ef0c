"""What only a real server shows: bodies that lie about their length, hang-ups, chunked bodies.

Raw sockets against ``partitur serve``; each case must end in a clean 4xx (or a closed
connection), store nothing it should not, and leave no stack trace in the server's log.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable

import pytest

from tests.helpers import PartiturServer, http

pytestmark = pytest.mark.serial

EVENT = json.dumps({"userId": "u", "event": "Wire", "messageId": "wire-1"}).encode()


def raw(server: PartiturServer, key: str, head: str, body: bytes, *, half_close: bool = False,
        wait: float = 0.0, timeout: float = 10.0, hang_up: bool = False) -> bytes:
    """Send ``head`` (request line and extra headers) and ``body`` as they are; return all
    that comes back before the server closes or goes quiet."""
    auth = base64.b64encode(f"{key}:".encode()).decode()
    request = (
        f"{head}\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(request)
        if wait:
            time.sleep(wait)
        if hang_up:
            return b""
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    return b"".join(chunks)


def status(response: bytes) -> int | None:
    if not response.startswith(b"HTTP/1.1 "):
        return None
    return int(response[9:12])


@pytest.fixture
def server(serve: Callable[..., PartiturServer]) -> PartiturServer:
    return serve(worker=False)


def stored_ids(server: PartiturServer) -> list[str]:
    with server.services() as services, services.db.read() as tx:
        return [r[0] for r in tx.execute("SELECT message_id FROM events ORDER BY seq")]


def test_content_length_larger_than_the_body(server: PartiturServer) -> None:
    key = server.create_write_key()
    head = f"POST /v1/track HTTP/1.1\r\nContent-Length: {len(EVENT) + 100}"
    # The client says it is done sending (half-close) long before the promised length: the
    # server waits for the rest (up to the body timeout, tested in-process), storing nothing.
    answer = raw(server, key, head, EVENT, half_close=True, timeout=1.0)
    assert status(answer) in (None, 400), answer
    # The client waits, then hangs up.
    raw(server, key, head, EVENT, wait=0.3, hang_up=True)
    time.sleep(0.3)
    assert stored_ids(server) == []
    assert http("GET", f"{server.url}/health").status == 200
    server.assert_clean_log()


def test_content_length_smaller_than_the_body(server: PartiturServer) -> None:
    key = server.create_write_key()
    head = f"POST /v1/track HTTP/1.1\r\nContent-Length: {len(EVENT) - 10}"
    answer = raw(server, key, head, EVENT)
    assert status(answer) == 400, answer
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert json.loads(body[: body.index(b"}}") + 2])["error"]["code"] == "invalid_input"
    assert stored_ids(server) == []
    server.assert_clean_log()


def test_content_length_beyond_the_limit_is_refused_before_the_body(
    server: PartiturServer,
) -> None:
    key = server.create_write_key()
    head = "POST /v1/batch HTTP/1.1\r\nContent-Length: 10485760"
    started = time.monotonic()
    answer = raw(server, key, head, b'{"batch": [')  # the rest never comes
    assert status(answer) == 413, answer
    assert time.monotonic() - started < 5
    server.assert_clean_log()


def test_malformed_content_length(server: PartiturServer) -> None:
    key = server.create_write_key()
    for value in ("abc", "-5", "12, 13"):
        answer = raw(server, key, f"POST /v1/track HTTP/1.1\r\nContent-Length: {value}", EVENT)
        assert status(answer) in (None, 400), (value, answer)
    assert stored_ids(server) == []
    server.assert_clean_log()


def test_chunked_body(server: PartiturServer) -> None:
    key = server.create_write_key()
    half = len(EVENT) // 2
    body = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (EVENT[:half], EVENT[half:])
    ) + b"0\r\n\r\n"
    answer = raw(server, key, "POST /v1/track HTTP/1.1\r\nTransfer-Encoding: chunked", body)
    assert status(answer) == 200, answer
    assert stored_ids(server) == ["wire-1"]
    server.assert_clean_log()
