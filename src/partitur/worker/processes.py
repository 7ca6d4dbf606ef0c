"""Worker processes started and watched by ``partitur serve`` (``worker_processes``,
``analytics_process``).

One Python process runs Python code on one core at a time. By default (with the system clock)
``partitur serve`` keeps the HTTP API and the ingest path in its own process and starts
``partitur worker`` children for the rest: ``worker_processes`` (unset: 1) of role ``events``
(on PostgreSQL each takes an equal range of the partitions; SQLite has one writer, so one)
and, when analytics is on, one of role ``analytics`` for the Parquet projector (also with
``worker_processes = 0``, unless ``analytics_process`` is off). A child that exits is started
again (after 1 s, doubling up to 30 s while it keeps failing); the children stop with the
server, and stop on their own if the server is killed.

After each group commit the server writes a byte to the ``events`` children's standard input
(:meth:`WorkerProcesses.nudge`), so a child starts on new events at once instead of at its
next look (every ``POLL_SECONDS``); the end of that pipe also tells a child that the server
has gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from partitur.errors import InvalidInput
from partitur.settings import Settings

log = logging.getLogger("partitur.worker")

POLL_SECONDS = 0.05  # how often an idle child looks for new events without a nudge
RESTART_MAX = 30.0
HEALTHY_AFTER = 60.0  # a child up this long counts as healthy again (backoff resets)


@dataclass
class Child:
    name: str
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff: float = 1.0
    restart_at: float | None = None
    restarts: int = 0
    exits: list[int] = field(default_factory=list)

    @property
    def role(self) -> str:
        """``events`` or ``analytics`` (its ``--role``)."""
        return self.args[self.args.index("--role") + 1]


def processes_for(settings: Settings, *, serving: bool) -> int:
    """``worker_processes`` as it applies: unset means 1 for ``partitur serve`` (``serving``)
    with the system clock, 0 otherwise."""
    if settings.worker_processes is not None:
        return settings.worker_processes
    return 1 if serving and settings.clock == "system" else 0


def plan(settings: Settings, *, serving: bool = False) -> list[Child]:
    """The children for these settings (names and ``partitur worker`` arguments).
    ``serving``: for ``partitur serve``, whose defaults start processes (an unset
    ``worker_processes`` and ``analytics_process``); code that builds an app in-process
    (tests, the demo) starts only what the settings ask for explicitly."""
    count = processes_for(settings, serving=serving)
    postgres = settings.database_url is not None
    if count > 1 and not postgres:
        raise InvalidInput("worker_processes above 1 needs PostgreSQL: SQLite has one writer")
    if count and settings.clock != "system":
        raise InvalidInput("worker_processes needs the system clock: a manual clock is one "
                           "process's own (set worker_processes = 0 with clock = manual)")
    children = []
    parts = settings.partitions
    for n in range(count):
        args = ["--role", "events"]
        if postgres and count > 1:
            lo, hi = parts * n // count, parts * (n + 1) // count
            args += ["--parts", f"{lo}:{hi}"]
        children.append(Child(f"events-{n}", args))
    own = serving and settings.analytics_process and settings.clock == "system"
    if settings.analytics_enabled and (count or own):
        children.append(Child("analytics", ["--role", "analytics"]))
    return children


class WorkerProcesses:
    def __init__(self, settings: Settings, children: list[Child]) -> None:
        """``children``: as :func:`plan` lays them out (it checks the settings)."""
        self.settings = settings
        self.children = children
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def command(self, child: Child) -> list[str]:
        return [
            sys.executable, "-m", "partitur", "worker", "--data", str(self.settings.data_dir),
            *child.args, "--parent-pid", str(os.getpid()), "--poll", str(POLL_SECONDS),
        ]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.settings.database_url:  # in the environment, not on a command line
            env["PARTITUR_DATABASE_URL"] = self.settings.database_url
        return env

    def _spawn(self, child: Child) -> None:
        nudged = child.role == "events"
        child.proc = subprocess.Popen(
            [*self.command(child), *(["--nudge-stdin"] if nudged else [])], env=self._env(),
            stdin=subprocess.PIPE if nudged else subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        )
        if child.proc.stdin is not None:
            os.set_blocking(child.proc.stdin.fileno(), False)  # a busy child never holds us
        child.started_at = time.monotonic()
        child.restart_at = None
        log.info("worker process %s started (pid %d)", child.name, child.proc.pid)

    def start(self) -> None:
        with self._lock:
            for child in self.children:
                self._spawn(child)
        self._thread = threading.Thread(target=self._watch, name="partitur-processes",
                                        daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.25):
            with self._lock:
                if self._stop.is_set():
                    return
                now = time.monotonic()
                for child in self.children:
                    self._check(child, now)

    def _check(self, child: Child, now: float) -> None:
        proc = child.proc
        if proc is not None and proc.poll() is not None:
            code = proc.returncode
            child.exits.append(code)
            child.proc = None
            if now - child.started_at >= HEALTHY_AFTER:
                child.backoff = 1.0
            child.restart_at = now + child.backoff
            log.error("worker process %s (pid %d) exited with %d; starting it again in %.0f s",
                      child.name, proc.pid, code, child.backoff)
            child.backoff = min(child.backoff * 2, RESTART_MAX)
        if child.proc is None and child.restart_at is not None and now >= child.restart_at:
            child.restarts += 1
            self._spawn(child)

    def nudge(self) -> None:
        """Tell the ``events`` children that new events are committed (called by the group
        commit; a full pipe means the child has nudges waiting already)."""
        for child in self.children:
            proc = child.proc
            if proc is None or proc.stdin is None:
                continue
            with contextlib.suppress(OSError, ValueError):  # full, or the child has gone
                os.write(proc.stdin.fileno(), b"\n")

    def status(self) -> list[dict[str, Any]]:
        """Each child: name, pid (None while waiting to start again), restarts, running."""
        with self._lock:
            return [{"name": c.name, "pid": c.proc.pid if c.proc else None,
                     "running": c.proc is not None and c.proc.poll() is None,
                     "restarts": c.restarts} for c in self.children]

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        with self._lock:
            running = [c.proc for c in self.children if c.proc is not None]
            for proc in running:
                proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for proc in running:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.error("worker process %d did not stop; killing it", proc.pid)
                    proc.kill()
                    proc.wait()
                # Closed once the child has stopped: closed earlier, the end of the pipe
                # would tell it the server had gone (a warning on every ordinary stop).
                if proc.stdin is not None:
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
