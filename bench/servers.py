"""The server under test as a subprocess, a fresh store for it, and what /proc says about it."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
BENCH = Path(__file__).resolve().parent
_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# -- /proc ---------------------------------------------------------------------------------------
def proc_status(pid: int, name: str) -> int:
    """A ``VmHWM``/``VmRSS`` line of /proc/<pid>/status, in bytes (0 when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{name}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) * 1024 if match else 0


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far, its threads included."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread of the process, by thread name (threads of one name summed)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = "main" if task.name == str(pid) else "other threads"
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _TICK
    return out


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / _TICK, total / _TICK


def wait_quiet(most: float, timeout: float) -> float:
    """Wait (at most ``timeout`` s) until the machine's other work stays under ``most`` cores
    for two seconds; returns the last reading, so a noisy run can at least be told apart."""
    deadline = time.monotonic() + timeout
    calm = 0
    while True:
        busy0, total0 = machine_cpu()
        time.sleep(1.0)
        busy1, total1 = machine_cpu()
        cores = (total1 - total0) or 1.0
        used = (busy1 - busy0) / cores * (os.cpu_count() or 1)
        calm = calm + 1 if used <= most else 0
        if calm >= 2 or time.monotonic() >= deadline:
            return round(used, 2)


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = proc_meminfo_total()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def proc_meminfo_total() -> int:
    with contextlib.suppress(OSError):
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        if match:
            return int(match.group(1)) * 1024
    return 0


# -- HTTP ----------------------------------------------------------------------------------------
def get_json(port: int, path: str, timeout: float = 10.0) -> Any:
    conn = HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        return json.loads(body)
    finally:
        conn.close()


# -- PostgreSQL ----------------------------------------------------------------------------------
@contextlib.contextmanager
def pg_schema(base_url: str) -> Iterator[str]:
    """A fresh schema on the server at ``base_url``, dropped afterwards; yields its URL."""
    import psycopg

    schema = "bench_" + uuid.uuid4().hex[:10]
    with psycopg.connect(base_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def pg_version(base_url: str) -> str:
    import psycopg

    with psycopg.connect(base_url, connect_timeout=5) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


# -- the server ----------------------------------------------------------------------------------
@dataclass
class Server:
    """``partitur serve`` (or the bare app) in a subprocess on a free loopback port."""

    data_dir: Path
    database_url: str | None = None
    bare: bool = False
    worker: bool = False
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARTITUR_")}
        env.update(self.env)
        if self.database_url:
            env["PARTITUR_DATABASE_URL"] = self.database_url
        return env

    def create_key(self) -> str:
        """``partitur keys create write``; the key is the last line it prints."""
        command = [
            *self._partitur(),
            "keys",
            "create",
            "write",
            "--source",
            "bench",
            "--data",
            str(self.data_dir),
        ]
        done = subprocess.run(command, env=self._env(), capture_output=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"creating a key failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode().strip().splitlines()[-1]

    @staticmethod
    def _partitur() -> list[str]:
        exe = shutil.which("partitur", path=str(Path(sys.executable).parent))
        return [exe] if exe else [sys.executable, "-m", "partitur"]

    def start(self, timeout: float = 120.0) -> Server:
        self.port = free_port()
        if self.bare:
            command = [sys.executable, str(BENCH / "bare_app.py"), "--port", str(self.port)]
        else:
            command = [
                *self._partitur(),
                "serve",
                "--data",
                str(self.data_dir),
                "--host",
                HOST,
                "--port",
                str(self.port),
            ]
            if not self.worker:
                command.append("--no-worker")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-{self.port}.log"
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**self._env(), "PARTITUR_LOG_LEVEL": "warning"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited at start:\n{self.log()}")
            with contextlib.suppress(OSError, RuntimeError):
                get_json(self.port, "/health", timeout=2)
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the server did not answer /health within {timeout:g}s:\n{self.log()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def backlog(self) -> int:
        return int(get_json(self.port, "/health", timeout=60)["backlog"])

    def peak_rss(self) -> int:
        return proc_status(self.pid, "VmHWM")

    def rss(self) -> int:
        return proc_status(self.pid, "VmRSS")

    def cpu(self) -> float:
        return proc_cpu(self.pid)

    def threads(self) -> dict[str, float]:
        return thread_cpu(self.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, timeout: float = 60.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.kill()
