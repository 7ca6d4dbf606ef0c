"""``partitur privacy``: erase or export a person, read the audit trail.

The commands work on the store directly, so they also serve when the server is down; a
running worker is kept out by the same lock as the API takes. The audit records them with
the actor ``cli``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from partitur.cli_options import open_services, store_options
from partitur.errors import InvalidInput

F = TypeVar("F", bound=Callable[..., Any])
ACTOR = "cli"


def _subject_options(fn: F) -> F:
    fn = click.option("--value", required=True, help="The identifier, e.g. kari@example.com.")(fn)
    fn = click.option(
        "--type", "kind", required=True, metavar="TYPE",
        help="Identifier type: user_id, email, phone, device_id, anonymous_id or a custom type.",
    )(fn)
    return fn


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


@click.group()
def privacy() -> None:
    """Erase or export a person; the privacy audit trail."""


@privacy.command("erase")
@store_options
@_subject_options
def erase_cmd(data_dir: Path | None, database_url: str | None, kind: str, value: str) -> None:
    """Erase the person an identifier belongs to, everywhere, and suppress their identifiers.

    Prints what was erased as JSON. Nothing held about them: exit code 1.
    """
    from partitur.privacy.service import erase_person

    services = open_services(data_dir, database_url)
    try:
        click.echo(_dump(erase_person(services, kind, value, ACTOR)))
    finally:
        services.close()


@privacy.command("export")
@store_options
@_subject_options
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the JSON document to this file instead of standard output.")
def export_cmd(
    data_dir: Path | None, database_url: str | None, kind: str, value: str,
    output: Path | None,
) -> None:
    """Everything held about the person an identifier belongs to, as JSON.

    Nothing held about them: exit code 1.
    """
    from partitur.privacy.service import export_person

    file = None
    if output is not None:
        try:  # opened first, so that nothing is exported (and audited) that cannot be saved
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner only
        except OSError as exc:
            raise InvalidInput(f"cannot write {output}: {exc.strerror}") from None
        file = os.fdopen(fd, "w", encoding="utf-8")
    try:
        services = open_services(data_dir, database_url)
        try:
            text = _dump(export_person(services, kind, value, ACTOR))
        finally:
            services.close()
    except BaseException:
        if file is not None and output is not None:
            file.close()
            output.unlink(missing_ok=True)
        raise
    if file is None:
        click.echo(text)
        return
    with file:
        file.write(text + "\n")
    click.echo(f"exported to {output}", err=True)


@privacy.command("audit")
@store_options
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True,
              help="How many records, newest first.")
@click.option("--action", type=click.Choice(["erase", "export"]), default=None,
              help="Only this action.")
def audit_cmd(
    data_dir: Path | None, database_url: str | None, limit: int, action: str | None
) -> None:
    """The privacy audit trail, one JSON record a line, newest first."""
    from partitur.privacy.service import audit_trail

    services = open_services(data_dir, database_url)
    try:
        page, _ = audit_trail(services, limit=limit, action=action, cursor=None)
    finally:
        services.close()
    for entry in page:
        click.echo(json.dumps(entry, ensure_ascii=False, sort_keys=True))
