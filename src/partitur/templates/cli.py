"""``partitur templates``: message templates kept in files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from partitur.cli_options import open_services, store_options
from partitur.errors import InvalidInput


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"cannot read {path}: it is not UTF-8 text") from None


def _report(file: str, exc: InvalidInput) -> None:
    click.echo(f"{file}: invalid: {exc.message}", err=True)
    for detail in exc.details:
        if "message" in detail:
            click.echo(f"  {detail['message']}", err=True)


@click.group()
def templates() -> None:
    """Message templates: validate and apply files, list what is stored."""


@templates.command("validate")
@click.argument("files", nargs=-1, required=True)
def validate(files: tuple[str, ...]) -> None:
    """Check FILES (YAML or JSON; - for stdin) without storing anything: exit 0 when every
    template is valid, 2 with the problems otherwise."""
    from partitur.templates.files import check_file

    bad = False
    for file in files:
        try:
            found = check_file(_read(file), file)
        except InvalidInput as exc:
            _report(file, exc)
            bad = True
            continue
        click.echo(f"{file}: valid ({', '.join(key for key, _ in found)})")
    if bad:
        click.get_current_context().exit(2)


@templates.command("apply")
@store_options
@click.argument("files", nargs=-1, required=True)
def apply(data_dir: Path | None, database_url: str | None, files: tuple[str, ...]) -> None:
    """Store the templates in FILES (all or nothing): a new version of each one that
    changed."""
    from partitur.templates import store
    from partitur.templates.files import check_file

    loaded = []
    for file in files:
        try:
            loaded.extend(check_file(_read(file), file))
        except InvalidInput as exc:
            _report(file, exc)
            click.get_current_context().exit(2)
    services = open_services(data_dir, database_url)
    try:
        with services.db.transaction() as tx:
            results = [store.put(tx, key, doc, services.clock.now_us()) for key, doc in loaded]
    finally:
        services.close()
    for template, changed in results:
        state = (
            f"version {template.version}" if changed else f"unchanged (version {template.version})"
        )
        click.echo(f"{template.key}: {state}")


@templates.command("list")
@store_options
def list_cmd(data_dir: Path | None, database_url: str | None) -> None:
    """Stored templates: key, channel, current version."""
    from partitur.templates import store

    services = open_services(data_dir, database_url)
    try:
        with services.db.read() as tx:
            found, _ = store.listing(tx, channel=None, limit=10_000, after=None)
    finally:
        services.close()
    for t in found:
        click.echo(f"{t.key:<32} {t.channel:<8} v{t.version}")
