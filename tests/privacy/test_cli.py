"""``partitur privacy erase | export | audit`` through click's runner, on both stores, while
the server (and its worker) has the same store open."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from partitur.cli import Group
from partitur.privacy.cli import privacy
from tests.privacy.people import erin, traces


@pytest.fixture
def store_args(tmp_path: Path, database_url: str | None) -> list[str]:
    """The store the ``services`` fixture opens too."""
    args = ["--data", str(tmp_path / "data")]
    return [*args, "--database-url", database_url] if database_url else args


def run(*args: str) -> Any:
    root = Group("partitur")  # errors become one line and an exit code, as under `partitur`
    root.add_command(privacy)
    return CliRunner().invoke(root, ["privacy", *args],
                              env={"PARTITUR_DATABASE_URL": None, "PARTITUR_DATA_DIR": None})


def test_privacy_is_a_click_group_named_privacy() -> None:
    assert isinstance(privacy, click.Group) and privacy.name == "privacy"
    assert set(privacy.commands) == {"erase", "export", "audit"}


def test_export_erase_and_audit_from_the_command_line(
    client: TestClient, services: Any, write_key: str, settle: Any, store_args: list[str],
    tmp_path: Path,
) -> None:
    erin(client, write_key)
    settle()
    subject = ["--type", "email", "--value", "erin@example.com"]

    r = run("export", *store_args, *subject)
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["events"]) == 4
    out = tmp_path / "erin.json"
    r = run("export", *store_args, *subject, "--output", str(out))
    assert r.exit_code == 0 and r.stderr == f"exported to {out}\n"
    assert json.loads(out.read_text())["subject"] == {"type": "email",
                                                      "value": "erin@example.com"}
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    r = run("export", *store_args, *subject, "--output", str(tmp_path / "no" / "such.json"))
    assert r.exit_code == 2 and r.stderr.startswith("error: cannot write")

    r = run("erase", *store_args, "--type", "user_id", "--value", "erin-42")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["profiles_erased"] == 2
    assert traces(services) == []

    r = run("erase", *store_args, *subject)
    assert r.exit_code == 1
    assert r.stderr == "error: nothing is held for that email\n"
    r = run("export", *store_args, "--type", "shoe", "--value", "44")
    assert r.exit_code == 2 and r.stderr.startswith("error: 'type' must be one of user_id")
    r = run("export", *store_args, *subject, "--output", str(out))
    assert r.exit_code == 1 and not out.exists()  # nothing held any more

    r = run("audit", *store_args, "--limit", "10")
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["action"], x["actor"], x["detail"]["found"]) for x in records] == [
        ("export", "cli", False), ("erase", "cli", False), ("erase", "cli", True),
        ("export", "cli", True), ("export", "cli", True)]
    r = run("audit", *store_args, "--action", "erase")
    assert [json.loads(line)["action"] for line in r.stdout.splitlines()] == ["erase", "erase"]
