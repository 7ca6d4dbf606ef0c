"""``partitur segments``: segments kept in YAML or JSON files, applied from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from partitur.cli_options import open_services, read_documents, store_options
from partitur.errors import InvalidInput


def _documents(file: str) -> list[Any]:
    return read_documents(file, "segment")


def _in_dependency_order(docs: list[tuple[str, int, Any]]) -> list[tuple[str, int, Any]]:
    """Segments that others in the same files refer to come first."""
    from partitur.segments.model import parse_segment

    parsed = {}
    for file, index, doc in docs:
        try:
            parsed[parse_segment(doc).key] = (file, index, doc)
        except InvalidInput as exc:
            raise InvalidInput(f"{file}[{index}]: {exc.message}", details=exc.details) from None
    order: list[str] = []

    def visit(key: str, active: set[str]) -> None:
        if key in order or key in active or key not in parsed:
            return
        active.add(key)
        seg = parse_segment(parsed[key][2])
        for ref in sorted(seg.refs.segments if seg.refs else ()):
            visit(ref, active)
        order.append(key)

    for key in parsed:
        visit(key, set())
    return [parsed[k] for k in order]


@click.group()
def segments() -> None:
    """Segments: apply definitions from files, list them, run backfills."""


@segments.command("validate")
@click.argument("files", nargs=-1, required=True)
def validate(files: tuple[str, ...]) -> None:
    """Check segment FILES (YAML or JSON; - for stdin) without applying them."""
    from partitur.segments.model import parse_segment

    bad = 0
    for file in files:
        try:
            for doc in _documents(file):
                seg = parse_segment(doc)
                click.echo(f"{file}: {seg.key} valid ({seg.kind})")
        except InvalidInput as exc:
            click.echo(f"{file}: {exc.message}", err=True)
            bad += 1
    if bad:
        click.get_current_context().exit(2)


@segments.command("apply")
@click.argument("files", nargs=-1, required=True)
@store_options
@click.option("--backfill", is_flag=True,
              help="Evaluate everyone now, in this process, instead of in the background.")
def apply(files: tuple[str, ...], data_dir: Path | None, database_url: str | None,
          backfill: bool) -> None:
    """Create or replace the segments in FILES (YAML or JSON: one segment, a list, or
    several YAML documents)."""
    docs = [(f, i, d) for f in files for i, d in enumerate(_documents(f))]
    ordered = _in_dependency_order(docs)
    services = open_services(data_dir, database_url)
    try:
        service = services.extra["segments"]
        for file, index, doc in ordered:
            try:
                body, created = service.put(doc)
            except InvalidInput as exc:
                raise InvalidInput(f"{file}[{index}]: {exc.message}",
                                   details=exc.details) from None
            state = body.get("backfill", {}).get("status", "-")
            click.echo(f"{body['key']}: {'created' if created else 'updated'} "
                       f"(version {body['version']}, backfill {state})")
        if backfill:
            from partitur.segments.backfill import run_backfills

            run_backfills(services)
            for _, _, doc in ordered:
                body = service.get(doc["key"])
                click.echo(f"{body['key']}: {body['size']} members")
    finally:
        services.close()


@segments.command("list")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_segments(data_dir: Path | None, database_url: str | None, as_json: bool) -> None:
    """List segments with their sizes and backfill state."""
    services = open_services(data_dir, database_url)
    try:
        rows = services.extra["segments"].all()
    finally:
        services.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        backfill = row.get("backfill")
        state = "" if backfill is None else (
            f"  backfill {backfill['status']} {backfill['done']}/{backfill['total']}"
        )
        click.echo(f"{row['key']}\t{row['type']}\t{row['size']} members{state}\t{row['name']}")


@segments.command("show")
@click.argument("key")
@store_options
def show(key: str, data_dir: Path | None, database_url: str | None) -> None:
    """Print one segment: definition, size and backfill state, as JSON."""
    services = open_services(data_dir, database_url)
    try:
        click.echo(json.dumps(services.extra["segments"].get(key), indent=2))
    finally:
        services.close()


@segments.command("delete")
@click.argument("key")
@store_options
def delete(key: str, data_dir: Path | None, database_url: str | None) -> None:
    """Delete a segment: its members exit (recorded in their history), its due times go.
    Refused while another segment or a published journey uses it."""
    services = open_services(data_dir, database_url)
    try:
        exited = services.extra["segments"].delete(key)
    finally:
        services.close()
    click.echo(f"{key}: deleted, {exited} member(s) exited")


@segments.command("backfill")
@store_options
def backfill_cmd(data_dir: Path | None, database_url: str | None) -> None:
    """Run pending backfills to the end in this process."""
    from partitur.segments.backfill import run_backfills

    services = open_services(data_dir, database_url)
    try:
        steps = run_backfills(services)
    finally:
        services.close()
    click.echo(f"{steps} backfill batch{'' if steps == 1 else 'es'} run")
