"""What every store-touching command shares: the store options and opening the services.

Kept apart from ``partitur.cli`` so that the packages' own command groups (``plan``,
``privacy``), which ``partitur.cli`` imports, can use them too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from partitur.settings import load_settings

F = TypeVar("F", bound=Callable[..., Any])


def store_options(fn: F) -> F:
    """``--data`` and ``--database-url``, with their environment variables."""
    fn = click.option(
        "--database-url", envvar="PARTITUR_DATABASE_URL", default=None,
        help="PostgreSQL URL; unset means embedded SQLite in the data directory.",
    )(fn)
    fn = click.option(
        "--data", "data_dir", type=click.Path(path_type=Path), default=None,
        envvar="PARTITUR_DATA_DIR", help="Data directory (default ./partitur-data).",
    )(fn)
    return fn


def open_services(data_dir: Path | None, database_url: str | None) -> Any:
    """The store (migrated) and services those options point at."""
    from partitur.services import build_services

    return build_services(load_settings(data_dir, database_url=database_url))


def read_documents(file: str, what: str) -> list[Any]:
    """The documents in FILE (``-``: standard input): one object, a list, or several YAML
    documents; ``what`` names them in errors ("journey", "segment")."""
    import sys

    import yaml

    from partitur.errors import InvalidInput

    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{file}: cannot read it: {exc}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{file}: not YAML or JSON: {exc}") from None
    out: list[Any] = []
    for doc in docs:
        out.extend(doc if isinstance(doc, list) else [doc])
    if not out:
        raise InvalidInput(f"{file}: no {what} in it")
    return out
