"""``partitur journeys``: journeys kept in YAML or JSON files, checked and applied from git."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from partitur.cli_options import open_services, read_documents, store_options
from partitur.errors import InvalidInput


def _documents(file: str) -> list[Any]:
    return read_documents(file, "journey")


@click.group()
def journeys() -> None:
    """Define, check, publish and list journeys."""


@journeys.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--store", "use_store", is_flag=True,
              help="Also check that stored templates exist (opens the store).")
@store_options
def validate(files: tuple[str, ...], use_store: bool, data_dir: Path | None,
             database_url: str | None) -> None:
    """Check journey files without saving them; exit code 2 and one line per problem
    (with the step id) when any is invalid."""
    from partitur.journeys.service import check_document

    services = open_services(data_dir, database_url) if use_store else None
    bad = 0
    try:
        for file in files:
            for i, doc in enumerate(_documents(file)):
                where = f"{file}[{i}]" if i else file
                if services is not None:
                    with services.db.read() as tx:
                        problems = check_document(doc, tx)
                else:
                    problems = check_document(doc)
                for problem in problems:
                    click.echo(f"{where}: {problem.message}", err=True)
                bad += len(problems)
                if not problems:
                    click.echo(f"{where}: ok ({doc.get('key')})")
    finally:
        if services is not None:
            services.close()
    if bad:
        raise InvalidInput(f"{bad} problem{'s' if bad != 1 else ''} found")


@journeys.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--publish", is_flag=True, help="Publish each journey after saving its draft.")
@click.option("--migrate", is_flag=True,
              help="With --publish: move waiting people to the same step of the new version.")
@store_options
def apply(files: tuple[str, ...], publish: bool, migrate: bool, data_dir: Path | None,
          database_url: str | None) -> None:
    """Save journey files as drafts (and publish them with --publish)."""
    services = open_services(data_dir, database_url)
    try:
        service = services.extra["journeys"]
        for file in files:
            for i, doc in enumerate(_documents(file)):
                try:
                    body, created = service.put(doc)
                except InvalidInput as exc:
                    raise InvalidInput(f"{file}[{i}]: {exc.message}",
                                       details=exc.details) from None
                click.echo(f"{'created' if created else 'updated'} draft {body['key']}")
                for warning in body.get("warnings", []):
                    click.echo(f"  warning: {warning}", err=True)
                if publish:
                    result = service.publish(body["key"], migrate=migrate)
                    _report(result)
    finally:
        services.close()


def _report(result: dict[str, Any]) -> None:
    click.echo(f"published {result['journey']} version {result['version']}"
               + (f"; moved {result['migrated']} people to it" if result["migrated"] else ""))
    for row in result["report"]:
        if row["change"] != "unchanged":
            click.echo(f"  version {row['version']} step {row['step']}: {row['waiting']} "
                       f"waiting, step {row['change']}")


@journeys.command()
@click.argument("key")
@click.option("--migrate", is_flag=True,
              help="Move waiting people to the same step id of the new version.")
@click.option("--dry-run", is_flag=True, help="Only report who waits in changed steps.")
@store_options
def publish(key: str, migrate: bool, dry_run: bool, data_dir: Path | None,
            database_url: str | None) -> None:
    """Publish a journey's draft as a new version."""
    services = open_services(data_dir, database_url)
    try:
        result = services.extra["journeys"].publish(key, migrate=migrate, dry_run=dry_run)
        if dry_run:
            click.echo(json.dumps(result, indent=2))
        else:
            _report(result)
    finally:
        services.close()


@journeys.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@store_options
def list_journeys(as_json: bool, data_dir: Path | None, database_url: str | None) -> None:
    """List journeys with their status, live version and people inside."""
    services = open_services(data_dir, database_url)
    try:
        items = services.extra["journeys"].all()
    finally:
        services.close()
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        version = item["live_version"] if item["live_version"] is not None else "-"
        click.echo(f"{item['key']}\t{item['status']}\tv{version}\t{item['active']} active"
                   f"\t{item['name']}")


@journeys.command()
@click.argument("key")
@store_options
def stats(key: str, data_dir: Path | None, database_url: str | None) -> None:
    """A journey's counters per step, split arm and goal, as JSON."""
    services = open_services(data_dir, database_url)
    try:
        click.echo(json.dumps(services.extra["journeys"].stats(key), indent=2))
    finally:
        services.close()


@journeys.command()
@click.argument("key")
@click.argument("action", type=click.Choice(["pause", "resume", "archive"]))
@store_options
def status(key: str, action: str, data_dir: Path | None, database_url: str | None) -> None:
    """Pause, resume or archive a journey."""
    services = open_services(data_dir, database_url)
    try:
        body = services.extra["journeys"].set_status(key, action)
    finally:
        services.close()
    click.echo(f"{key}: {body['status']}"
               + (f"; {body['halted']} people left it" if body.get("halted") else ""))
