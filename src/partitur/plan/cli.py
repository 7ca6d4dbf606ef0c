"""``partitur plan``: tracking plans kept in YAML files."""

from __future__ import annotations

import json
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


def _fail(file: str, exc: InvalidInput) -> None:
    """Every problem on its own line, then exit 2."""
    click.echo(f"{file}: invalid", err=True)
    problems = [d for d in exc.details if "message" in d]
    if not problems:
        click.echo(f"  {exc.message}", err=True)
    for p in problems:
        path = f"{p['path']}: " if p.get("path") else ""
        click.echo(f"  {p['where']}: {path}{p['message']}", err=True)
    click.get_current_context().exit(2)


@click.group()
def plan() -> None:
    """Tracking plans: validate, apply and show YAML files."""


@plan.command("validate")
@click.argument("file")
def validate(file: str) -> None:
    """Check FILE (YAML or JSON; - for stdin) without applying it: exit 0 when it is valid,
    2 with every problem, each naming its event."""
    from partitur.plan.parse import load_yaml

    try:
        doc = load_yaml(_read(file))
    except InvalidInput as exc:
        _fail(file, exc)
        return
    count = len(doc.events)
    parts = [f"{count} event{'' if count == 1 else 's'}"]
    parts += ["traits" if call == "identify" else call
              for call, name, _ in doc.sections() if name is None]
    click.echo(f"{file}: valid ({', '.join(parts)})")


@plan.command("apply")
@click.argument("file")
@store_options
@click.option("--expect-version", type=int, default=None, metavar="N",
              help="Refuse if the current version is not N (0: no plan yet).")
def apply(file: str, data_dir: Path | None, database_url: str | None,
          expect_version: int | None) -> None:
    """Store FILE as the current tracking plan (a new version if it changed)."""
    from partitur.plan.parse import load_yaml

    try:
        doc = load_yaml(_read(file))
    except InvalidInput as exc:
        _fail(file, exc)
        return
    services = open_services(data_dir, database_url)
    try:
        applied = services.plan.apply(doc, expected=expect_version)
    finally:
        services.close()
    state = "applied" if applied.changed else "unchanged"
    click.echo(f"tracking plan version {applied.version} ({state})")


@plan.command("show")
@store_options
@click.option("--version", "version", type=int, default=None, help="An earlier version.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of YAML.")
def show(data_dir: Path | None, database_url: str | None, version: int | None,
         as_json: bool) -> None:
    """Print the current tracking plan (a file that `plan apply` takes back)."""
    import yaml

    from partitur.clock import iso

    services = open_services(data_dir, database_url)
    try:
        found = services.plan.get(version)
    finally:
        services.close()
    if as_json:
        click.echo(json.dumps({"version": found.version, "created_at": iso(found.created_at),
                               "plan": found.doc}, indent=2, ensure_ascii=False))
        return
    click.echo(f"# tracking plan version {found.version}, applied {iso(found.created_at)}")
    click.echo(yaml.safe_dump(found.doc, sort_keys=False, allow_unicode=True), nl=False)
