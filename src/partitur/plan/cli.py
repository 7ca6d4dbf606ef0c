"""``partitur plan``: tracking plans kept in YAML files."""

from __future__ import annotations

import click


@click.group()
def plan() -> None:
    """Tracking plans: validate and apply YAML files."""
