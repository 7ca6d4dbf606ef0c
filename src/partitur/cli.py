"""The ``partitur`` command. Thin: it parses options and calls into the packages."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from partitur.cli_options import open_services, store_options
from partitur.errors import PartiturError
from partitur.settings import load_settings, settings_markdown


class Group(click.Group):
    """Turns Partitur's own errors into one clean line and exit code 1 (2 for bad input)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PartiturError as exc:
            click.echo(f"error: {exc.message}", err=True)
            from partitur.errors import InvalidInput

            ctx.exit(2 if isinstance(exc, InvalidInput) else 1)


@click.group(cls=Group)
@click.version_option(package_name="partitur")
def main() -> None:
    """Partitur: customer journey orchestration you can self-host, read and trust."""


@main.command()
@store_options
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8910).")
@click.option("--demo", is_flag=True, help="The same as `partitur demo` with its defaults.")
@click.option("--no-worker", is_flag=True, help="Do not run the profile worker in this process.")
def serve(
    data_dir: Path | None, database_url: str | None, host: str | None, port: int | None,
    demo: bool, no_worker: bool,
) -> None:
    """Run the API and its workers (by default the profile worker and the analytics projector
    in processes it starts and watches; threads of this process with `worker_processes = 0`
    and `analytics_process = false`)."""
    if demo:
        from partitur.demo.cli import run_demo
        from partitur.demo.run import Options

        return run_demo(data_dir, database_url, host, port, Options())
    import uvicorn

    from partitur.app import create_app
    from partitur.services import build_services

    settings = load_settings(data_dir, database_url=database_url, host=host, port=port)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    services = build_services(settings)
    app = create_app(services=services, start_workers=False if no_worker else None,
                     serving=True)
    where = services.db.dialect
    click.echo(f"Partitur listening on http://{settings.host}:{settings.port} ({where})")
    sys.stdout.flush()
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level=settings.log_level,
        access_log=False, loop="auto", http="auto", timeout_graceful_shutdown=10,
    )


@main.command()
@store_options
@click.option(
    "--parts", default=None, metavar="LO:HI",
    help="Only this range of partitions (PostgreSQL; default: all).",
)
@click.option(
    "--role", type=click.Choice(["all", "events", "analytics"]), default="all",
    show_default=True,
    help="events: profiles, segments, journeys and deliveries; analytics: the Parquet "
    "projector (one per analytics directory); all: both.",
)
@click.option("--parent-pid", type=int, default=None, hidden=True)
@click.option("--poll", type=float, default=None, hidden=True)
@click.option("--nudge-stdin", is_flag=True, hidden=True)
def worker(data_dir: Path | None, database_url: str | None, parts: str | None, role: str,
           parent_pid: int | None, poll: float | None, nudge_stdin: bool) -> None:
    """Run the profile worker and the outbox dispatcher on their own (no HTTP server)."""
    import signal
    import threading

    from partitur.errors import InvalidInput
    from partitur.worker import standalone

    services = open_services(data_dir, database_url)
    logging.basicConfig(
        level=services.settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    span: tuple[int, int] | None = None
    if parts:
        lo, sep, hi = parts.partition(":")
        if not (sep and lo.isdigit() and hi.isdigit() and int(lo) < int(hi)):
            raise InvalidInput("--parts expects LO:HI with LO < HI, e.g. 0:128")
        span = (int(lo), int(hi))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def started() -> None:
        click.echo(f"worker running on {services.db.dialect}; role {role}; "
                   f"partitions {parts or 'all'}")
        sys.stdout.flush()

    try:
        standalone.run(services, parts=span, role=role, stop=stop,  # type: ignore[arg-type]
                       parent_pid=parent_pid, poll=poll, started=started,
                       nudges=sys.stdin.fileno() if nudge_stdin else None)
    finally:
        services.close()


@main.command()
@store_options
def migrate(data_dir: Path | None, database_url: str | None) -> None:
    """Create or upgrade the database schema."""
    services = open_services(data_dir, database_url)
    click.echo(f"schema up to date ({services.db.dialect})")
    services.close()


@main.group()
def keys() -> None:
    """Write keys for sources, admin tokens for the management API."""


@keys.group("create")
def keys_create() -> None:
    """Create a key; it is printed once, on the last line."""


@keys_create.command("write")
@store_options
@click.option("--source", required=True, help="Source name (created if new).")
def keys_create_write(data_dir: Path | None, database_url: str | None, source: str) -> None:
    """A write key for SOURCE (HTTP Basic user, or the body's writeKey)."""
    services = open_services(data_dir, database_url)
    key, src = services.keys.create_write_key(source)
    click.echo(f"write key for source '{src.name}' ({src.id}); it is shown only once:")
    click.echo(key)
    services.close()


@keys_create.command("admin")
@store_options
@click.option("--label", default=None, help="What the token is for.")
def keys_create_admin(data_dir: Path | None, database_url: str | None, label: str | None) -> None:
    """An admin token for the management API (Authorization: Bearer ...)."""
    services = open_services(data_dir, database_url)
    key = services.keys.create_admin_key(label)
    click.echo("admin token; it is shown only once:")
    click.echo(key)
    services.close()


@keys.command("list")
@store_options
def keys_list(data_dir: Path | None, database_url: str | None) -> None:
    """Keys by prefix, kind and source (never the keys themselves)."""
    services = open_services(data_dir, database_url)
    for k in services.keys.list_keys():
        state = "revoked" if k["revoked"] else "active"
        click.echo(f"{k['prefix']}…  {k['kind']:<5}  {k['source'] or '-':<20}  {state}")
    services.close()


@keys.command("revoke")
@store_options
@click.argument("key")
def keys_revoke(data_dir: Path | None, database_url: str | None, key: str) -> None:
    """Revoke KEY (takes effect within seconds on every server)."""
    services = open_services(data_dir, database_url)
    services.keys.revoke(key)
    click.echo("revoked")
    services.close()


@main.group()
def sources() -> None:
    """Sources (touchpoints) and their settings."""


@sources.command("list")
@store_options
def sources_list(data_dir: Path | None, database_url: str | None) -> None:
    """Sources with their rate limit and tracking-plan policy."""
    services = open_services(data_dir, database_url)
    for s in services.keys.list_sources():
        limit = f"{s.rate_limit:g}/s" if s.rate_limit else "unlimited"
        click.echo(f"{s.name:<20} {s.id}  rate {limit}  policy {s.plan_policy or 'default'}")
    services.close()


@sources.command("set")
@store_options
@click.argument("name")
@click.option("--rate-limit", type=float, default=None, help="Events per second (0: unlimited).")
@click.option(
    "--policy", multiple=True, metavar="RULE=ACTION",
    help="Tracking-plan policy, e.g. unplanned_events=block, violations=flag.",
)
def sources_set(
    data_dir: Path | None, database_url: str | None, name: str, rate_limit: float | None,
    policy: tuple[str, ...],
) -> None:
    """Change a source's rate limit or tracking-plan policy."""
    from partitur.errors import InvalidInput
    from partitur.plan.policy import check_policy

    services = open_services(data_dir, database_url)
    current = services.keys.get_source(name)
    new_policy = None
    if policy:
        merged = dict(current.plan_policy)
        for item in policy:
            rule, sep, action = item.partition("=")
            if not sep:
                raise InvalidInput(f"--policy expects RULE=ACTION, got '{item}'")
            merged[rule.strip()] = action.strip()
        new_policy = check_policy(merged)
    src = services.keys.update_source(name, rate_limit=rate_limit, plan_policy=new_policy)
    click.echo(f"{src.name}: rate limit {src.rate_limit or 'unlimited'}, policy {src.plan_policy}")
    services.close()


@main.command("settings")
@click.option("--markdown", is_flag=True, help="Print the documented settings table.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None)
def settings_cmd(markdown: bool, data_dir: Path | None) -> None:
    """Show the effective settings (or the table of all settings)."""
    if markdown:
        click.echo(settings_markdown(), nl=False)
        return
    settings = load_settings(data_dir)
    for name, value in settings.model_dump().items():
        if name == "database_url" and value:
            from partitur.store.db import _redact

            value = _redact(value)
        click.echo(f"{name} = {value!r}")


def _register_extensions() -> None:
    from partitur.analytics.cli import analytics
    from partitur.channels.cli import deliveries
    from partitur.demo.cli import demo
    from partitur.journeys.cli import journeys
    from partitur.plan.cli import plan
    from partitur.privacy.cli import privacy
    from partitur.segments.cli import segments
    from partitur.templates.cli import templates

    main.add_command(plan)
    main.add_command(privacy)
    main.add_command(segments)
    main.add_command(templates)
    main.add_command(deliveries)
    main.add_command(journeys)
    main.add_command(analytics)
    main.add_command(demo)


_register_extensions()
