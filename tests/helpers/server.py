"""``partitur serve`` as a subprocess: its own data directory, a free loopback port.

Use it directly::

    with PartiturServer(tmp_path / "data") as server:     # started, /health answered
        key = server.create_write_key("web")
        reply = http("POST", f"{server.url}/v1/track", {"userId": "u", "event": "E"}, key=key)
        server.kill()                                     # SIGKILL, as a crash
        server.start()                                    # the same data, a fresh port

or, in a conftest, as a fixture that cleans up whatever was started::

    @pytest.fixture
    def serve(tmp_path: Path) -> Iterator[Callable[..., PartiturServer]]:
        with servers(tmp_path) as start:
            yield start

Settings go in as ``PARTITUR_*`` variables (``settings={"rate_limit": "10"}``); the parent's own
``PARTITUR_*`` variables are not passed on, so a test sees only what it sets.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from partitur.services import Services, build_services
from partitur.settings import load_settings

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str,
    url: str,
    body: Any = None,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
    conn: HTTPConnection | None = None,
) -> Reply:
    """One request; ``body`` is bytes as they are, or anything else as JSON. ``key`` goes into
    HTTP Basic. Pass ``conn`` to reuse a keep-alive connection (it must point at ``url``'s host).
    Connection errors propagate (a crash test counts them as "not acknowledged")."""
    parts = urlsplit(url)
    own = conn is None
    connection = conn or HTTPConnection(
        parts.hostname or HOST, parts.port, timeout=timeout
    )
    sent = dict(headers or {})
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    if data is not None:
        sent.setdefault("Content-Type", "application/json")
    if key is not None:
        sent["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, path or "/", body=data, headers=sent)
        response = connection.getresponse()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        if own:
            connection.close()


@dataclass
class PartiturServer:
    data_dir: Path
    database_url: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    worker: bool = True
    args: list[str] = field(default_factory=list)  # more `partitur serve` options, e.g. --demo
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> PartiturServer:
        """Start on a free port (a new one each time) and wait until /health answers."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        for _ in range(3):  # another process may take the free port before we bind it
            self.port = free_port()
            self.runs += 1
            self._spawn()
            if self._wait_ready(timeout):
                return self
            if "address already in use" not in self.log().lower():
                break
        raise AssertionError(f"partitur serve did not become ready:\n{self.log()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGINT (Ctrl-C), then a graceful exit (SIGKILL after ``timeout``); the exit code."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else 0
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
            raise AssertionError(f"server ignored SIGINT for {timeout}s:\n{self.log()}") from None

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to flush or clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def close(self) -> None:
        """Stop if running; never raises (for fixture teardown)."""
        with contextlib.suppress(Exception):
            self.stop()
        self.kill()

    def __enter__(self) -> PartiturServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.run{self.runs}.log"

    def log(self) -> str:
        """Everything the current (or last) run printed."""
        path = self.log_path
        return path.read_text(errors="replace") if path.exists() else ""

    def assert_clean_log(self) -> None:
        text = self.log()
        assert "Traceback" not in text, text

    # -- the same store, in-process ----------------------------------------------------------
    @contextlib.contextmanager
    def services(self) -> Iterator[Services]:
        """The server's store opened in this process (for keys, and to check what it holds)."""
        settings = load_settings(self.data_dir, environ={}, database_url=self.database_url)
        services = build_services(settings)
        try:
            yield services
        finally:
            services.close()

    def create_write_key(self, source: str = "web", *, rate_limit: float | None = None) -> str:
        with self.services() as services:
            key, _ = services.keys.create_write_key(source)
            if rate_limit is not None:
                services.keys.update_source(source, rate_limit=rate_limit)
        return key

    # -- internals ---------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARTITUR_")}
        for name, value in self.settings.items():
            env[f"PARTITUR_{name.upper()}"] = str(value)
        if self.database_url:
            env["PARTITUR_DATABASE_URL"] = self.database_url
        return env

    def _spawn(self) -> None:
        command = [
            sys.executable, "-m", "partitur", "serve",
            "--data", str(self.data_dir), "--host", HOST, "--port", str(self.port),
        ]
        if not self.worker:
            command.append("--no-worker")
        command += self.args
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=self._env(),
                stdin=subprocess.DEVNULL,
            )

    def _wait_ready(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if http("GET", f"{self.url}/health", timeout=2).status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        return False


@contextlib.contextmanager
def servers(base: Path, **defaults: Any) -> Iterator[Callable[..., PartiturServer]]:
    """A factory of started servers, each with its own data directory under ``base``; all of
    them are stopped (or killed) on exit."""
    started: list[PartiturServer] = []

    def start(**options: Any) -> PartiturServer:
        server = PartiturServer(base / f"server{len(started)}", **{**defaults, **options})
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.close()
