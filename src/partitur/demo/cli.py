"""``partitur demo``: the server in this process, and the demo talking to it over HTTP."""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

import click

from partitur.cli_options import store_options
from partitur.demo.run import Demo, Options
from partitur.demo.sender import Api, loopback_url
from partitur.demo.workspace import Workspace, check_loopback, ensure_workspace
from partitur.errors import PartiturError
from partitur.settings import load_settings


@click.command()
@store_options
@click.option("--people", type=int, default=Options.people, show_default=True,
              help="People in the simulated shop's history.")
@click.option("--days", type=int, default=Options.days, show_default=True,
              help="Days of history, up to now.")
@click.option("--seed", type=int, default=Options.seed, show_default=True,
              help="Seed of the simulation: the same seed tells the same story.")
@click.option("--host", default=None, help="Bind address, a loopback one (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8910).")
@click.option("--live/--no-live", default=True, show_default=True,
              help="After the summary, keep sending a few events a second until Ctrl+C.")
@click.option("--rate", type=float, default=Options.rate, show_default=True,
              help="Live events a second.")
def demo(
    data_dir: Path | None, database_url: str | None, people: int, days: int, seed: int,
    host: str | None, port: int | None, live: bool, rate: float,
) -> None:
    """Run Partitur with a simulated online shop, filled through its own APIs.

    Sends a history through the tracking API, applies a tracking plan and journeys, prints
    what analytics answers, then keeps sending live traffic until Ctrl+C. Data goes to --data
    (default ./partitur-data); a second run on the same data skips the history. See
    docs/demo.md.
    """
    options = Options(people=people, days=days, seed=seed, live=live, rate=rate)
    run_demo(data_dir, database_url, host, port, options)


def run_demo(
    data_dir: Path | None, database_url: str | None, host: str | None, port: int | None,
    options: Options,
) -> None:
    """Start the server on a loopback address and run the demo against it until it is done
    (``--no-live``) or Ctrl+C."""
    import uvicorn

    from partitur.app import create_app
    from partitur.services import build_services

    options.check()
    settings = load_settings(data_dir, database_url=database_url, host=host, port=port)
    check_loopback(settings.host)
    logging.basicConfig(
        level=max(logging.WARNING, logging.getLevelName(settings.log_level.upper())),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    services = build_services(settings)
    workspace = ensure_workspace(services)
    app = create_app(services=services)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="partitur-demo-server", daemon=True)
    thread.start()
    base_url = loopback_url(settings.host, settings.port)
    while not server.started:
        if not thread.is_alive():
            raise PartiturError(f"could not listen on {base_url} (is the port in use?)")
        time.sleep(0.05)
    click.echo(banner(workspace, base_url, str(settings.data_dir), services.db.dialect))
    sys.stdout.flush()
    api = Api(base_url, workspace.write_keys, workspace.admin_token)
    email = bool(settings.smtp_url and settings.smtp_from)
    runner = Demo(api, options, services.clock, settings.data_dir, email=email, echo=_echo)
    try:
        runner.run()
    except KeyboardInterrupt:
        click.echo("\nstopping")
    finally:
        api.close()
        server.should_exit = True
        thread.join(30)
        services.close()
    click.echo(f"stopped; the data stays in {settings.data_dir} (run again to continue)")


def _echo(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


def banner(workspace: Workspace, base_url: str, data_dir: str, store: str) -> str:
    keys = "\n".join(
        f"  {'write key' if i == 0 else '':<15}{source:<9}{key}"
        for i, (source, key) in enumerate(workspace.write_keys.items())
    )
    return f"""Partitur demo: an online music shop (data in {data_dir}, {store})
  {"API":<15}{base_url}   (health: {base_url}/health)
{keys}
  {"admin token":<15}{workspace.admin_token}
  {"tracking plan":<15}{workspace.plan}
The API answers from now on; the demo fills it. Guide: docs/demo.md    Stop: Ctrl+C"""

