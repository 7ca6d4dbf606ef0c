"""The demo: a workspace with fixed keys and a tracking plan, and a simulated population that
sends events to the running server (``partitur serve --demo``, ``make demo``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import click
from starlette.applications import Starlette

from partitur.demo.population import Outgoing, Population
from partitur.demo.sender import Simulator, loopback_url
from partitur.demo.workspace import (
    ADMIN_TOKEN,
    PLAN_POLICY,
    WRITE_KEYS,
    Workspace,
    ensure_workspace,
)

__all__ = [
    "ADMIN_TOKEN",
    "PLAN_POLICY",
    "WRITE_KEYS",
    "Outgoing",
    "Population",
    "Simulator",
    "Workspace",
    "banner",
    "ensure_workspace",
    "setup_demo",
]


def setup_demo(
    app: Starlette,
    services: Any,
    *,
    seed: int = 7,
    people: int = 300,
    rate: float = 4.0,
    echo: Callable[[str], None] = click.echo,
) -> Simulator:
    """Set up the workspace, print how to use it, and run the simulator while the app runs."""
    workspace = ensure_workspace(services)
    settings = services.settings
    base_url = loopback_url(settings.host, settings.port)
    run = f"{services.clock.now_us() // 1_000_000:x}"
    population = Population(seed=seed, size=people, run=run)
    simulator = Simulator(base_url, workspace.write_keys, population, services.clock, rate=rate)
    _run_with(app, simulator)
    echo(banner(workspace, base_url, str(settings.data_dir), people=people, rate=rate, seed=seed))
    return simulator


def _run_with(app: Starlette, simulator: Simulator) -> None:
    """Start the simulator after the app's own startup and stop it before its shutdown."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with inner(app) as state:
            simulator.start()
            try:
                yield state
            finally:
                await asyncio.to_thread(simulator.stop)

    app.router.lifespan_context = lifespan


def banner(
    workspace: Workspace, base_url: str, data_dir: str, *, people: int, rate: float, seed: int
) -> str:
    keys = "\n".join(
        f"  {'write key' if i == 0 else '':<15}{source:<9}{key}"
        for i, (source, key) in enumerate(workspace.write_keys.items())
    )
    web, admin = workspace.write_keys["web"], workspace.admin_token
    return f"""
Partitur demo workspace (data in {data_dir})
{keys}
  {"admin token":<15}{admin}
  {"tracking plan":<15}{workspace.plan}
  {"simulation":<15}{people} people, about {rate:g} events/s (seed {seed})

Try it:
  curl -u {web}: {base_url}/v1/identify \\
    -d '{{"userId": "me", "traits": {{"email": "me@example.com", "name": "Me"}}}}'
  curl -H 'Authorization: Bearer {admin}' \\
    '{base_url}/api/v1/profiles/lookup?type=email&value=me@example.com'
  curl -H 'Authorization: Bearer {admin}' '{base_url}/api/v1/profiles?trait=plan&value=free'
  curl -H 'Authorization: Bearer {admin}' {base_url}/api/v1/tracking-plan/violations
Health: {base_url}/health    Guide: docs/quickstart.md    Stop: Ctrl+C
"""
