"""``partitur segments`` through click's runner, on both stores: segments kept in files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from partitur.cli import main
from tests.segments.conftest import Env

FILE = """\
key: pro-buyers
name: Pro buyers
condition:
  all:
    - {segment: pro}
    - {event: Order Completed, where: {total: {gte: 100}}}
---
key: pro
name: Pro plan
condition: {trait: plan, equals: pro}
"""


@pytest.fixture
def store_args(tmp_path: Path, database_url: str | None) -> list[str]:
    args = ["--data", str(tmp_path / "data")]
    return [*args, "--database-url", database_url] if database_url else args


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["segments", *args],
                              env={"PARTITUR_DATABASE_URL": None, "PARTITUR_DATA_DIR": None})


def test_apply_list_show_delete(env: Env, tmp_path: Path, store_args: list[str]) -> None:
    kari = env.identify("kari", plan="pro")
    env.track("kari", "Order Completed", total=120)
    path = tmp_path / "segments.yaml"
    path.write_text(FILE)
    result = run("validate", str(path))
    assert result.exit_code == 0, result.output
    assert "pro-buyers valid (dynamic)" in result.output
    result = run("apply", str(path), "--backfill", *store_args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "pro: created (version 1, backfill pending)"  # referred to: first
    assert lines[1] == "pro-buyers: created (version 1, backfill pending)"
    assert "pro-buyers: 1 members" in lines
    assert env.members("pro-buyers") == {kari}
    result = run("list", *store_args)
    assert result.exit_code == 0
    assert result.output.splitlines()[0].startswith("pro\tdynamic\t1 members  backfill done 1/1")
    result = run("list", "--json", *store_args)
    assert [s["key"] for s in json.loads(result.output)] == ["pro", "pro-buyers"]
    result = run("show", "pro", *store_args)
    assert json.loads(result.output)["condition"] == {"trait": "plan", "equals": "pro"}
    result = run("delete", "pro", *store_args)
    assert result.exit_code == 1
    assert "used by segment pro-buyers" in result.output
    result = run("apply", str(path), *store_args)
    assert "pro: updated (version 2, backfill done)" in result.output
    result = run("delete", "pro-buyers", *store_args)
    assert result.exit_code == 0, result.output
    assert result.output == "pro-buyers: deleted, 1 member(s) exited\n"


def test_bad_files_exit_2_naming_the_problem(tmp_path: Path, store_args: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("key: x\ncondition: {trait: plan, equal: pro}\n")
    result = run("validate", str(path))
    assert result.exit_code == 2
    assert "condition.equal: unknown operator" in result.output
    result = run("apply", str(path), *store_args)
    assert result.exit_code == 2
    assert "condition.equal" in result.output
    path.write_text("key: [unclosed\n")
    assert run("validate", str(path)).exit_code == 2
