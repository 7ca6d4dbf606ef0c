"""``partitur deliveries``: the delivery log, the dead-letter list and replay."""

from __future__ import annotations

import json
from pathlib import Path

import click

from partitur.cli_options import open_services, store_options


@click.group()
def deliveries() -> None:
    """Messages sent, suppressed, failed or dead; replay."""


@deliveries.command("list")
@store_options
@click.option("--status", default=None, help="Comma-separated, e.g. failed,dead.")
@click.option("--journey", default=None, help="Only this journey's messages.")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_cmd(
    data_dir: Path | None, database_url: str | None, status: str | None, journey: str | None,
    limit: int, as_json: bool,
) -> None:
    """Newest first: key, status, channel, attempts, reason."""
    from partitur.channels.deliveries import list_deliveries

    statuses = [s.strip() for s in (status or "").split(",") if s.strip()]
    services = open_services(data_dir, database_url)
    try:
        with services.db.read() as tx:
            found = list_deliveries(tx, statuses=statuses, journey=journey, limit=limit)
    finally:
        services.close()
    for d in found["deliveries"]:
        if as_json:
            click.echo(json.dumps(d, sort_keys=True))
        else:
            click.echo(f"{d['key']}  {d['status']:<10} {d['channel']:<7} "
                       f"attempts {d['attempts']}  {d['reason'] or ''}".rstrip())


@deliveries.command("replay")
@store_options
@click.argument("keys", nargs=-1, required=True)
def replay_cmd(data_dir: Path | None, database_url: str | None, keys: tuple[str, ...]) -> None:
    """Queue failed, dead or suppressed messages KEYS again (same keys, fresh attempts)."""
    from partitur.channels.deliveries import replay

    services = open_services(data_dir, database_url)
    try:
        with services.db.transaction() as tx:
            for key in keys:
                replay(tx, key, services.clock.now_us())
    finally:
        services.close()
    click.echo(f"{len(keys)} queued again")
