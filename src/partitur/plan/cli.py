"""``partitur plan``: tracking plans kept in YAML files."""

from __future__ import annotations

from pathlib import Path

import click


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        from partitur.errors import InvalidInput

        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None


@click.group()
def plan() -> None:
    """Tracking plans: validate and apply YAML files."""


@plan.command("validate")
@click.argument("file", type=click.Path(path_type=Path))
def validate(file: Path) -> None:
    """Check FILE without applying it (exit 2 with the problem if it is invalid)."""
    from partitur.plan.model import load_yaml

    doc = load_yaml(_read(file))
    click.echo(f"{file}: valid ({len(doc.events)} events)")


@plan.command("apply")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              envvar="PARTITUR_DATA_DIR", help="Data directory (default ./partitur-data).")
@click.option("--database-url", envvar="PARTITUR_DATABASE_URL", default=None,
              help="PostgreSQL URL; unset means embedded SQLite in the data directory.")
def apply(file: Path, data_dir: Path | None, database_url: str | None) -> None:
    """Store FILE as the current tracking plan (a new version if it changed)."""
    from partitur.services import build_services
    from partitur.settings import load_settings

    text = _read(file)
    services = build_services(load_settings(data_dir, database_url=database_url))
    try:
        applied = services.plan.apply_yaml(text)
    finally:
        services.close()
    state = "applied" if applied.changed else "unchanged"
    click.echo(f"tracking plan version {applied.version} ({state})")
