"""``partitur plan validate | apply | show`` through click's runner, on both stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from partitur.cli import main
from tests.plan.plans import SHOP


@pytest.fixture
def store_args(tmp_path: Path, database_url: str | None) -> list[str]:
    """The store the ``services`` fixture opens too."""
    if database_url:
        return ["--database-url", database_url]
    return ["--data", str(tmp_path / "data")]


def run(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, ["plan", *args], input=stdin,
                              env={"PARTITUR_DATABASE_URL": None, "PARTITUR_DATA_DIR": None})


def test_validate(tmp_path: Path) -> None:
    good = tmp_path / "plan.yaml"
    good.write_text(SHOP)
    r = run("validate", str(good))
    assert r.exit_code == 0 and r.output == f"{good}: valid (2 events, traits, page)\n"
    assert run("validate", "-", stdin=json.dumps(yaml.safe_load(SHOP))).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "events:\n"
        "  Broken:\n    properties: {price: {type: nonsense}}\n"
        "  Typo:\n    descripton: x\n"
    )
    r = run("validate", str(bad))
    assert r.exit_code == 2
    assert r.stderr.splitlines() == [
        f"{bad}: invalid",
        "  event 'Typo': descripton: unknown key",
        "  event 'Broken': properties.price.type: invalid JSON Schema: \"nonsense\" is not "
        "valid under any of the schemas listed in the 'anyOf' keyword",
    ]
    r = run("validate", str(tmp_path / "missing.yaml"))
    assert r.exit_code == 2 and "cannot read" in r.stderr
    (tmp_path / "dup.yaml").write_text("events:\n  A: {}\n  A: {}\n")
    r = run("validate", str(tmp_path / "dup.yaml"))
    assert r.exit_code == 2 and "'A' appears twice (line 3)" in r.stderr


def test_apply_and_show(tmp_path: Path, store_args: list[str], services: Any) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(SHOP)
    r = run("show", *store_args)
    assert r.exit_code == 1 and "no tracking plan has been applied" in r.stderr
    r = run("apply", str(plan), *store_args)
    assert r.exit_code == 0, r.output
    assert r.output == "tracking plan version 1 (applied)\n"
    assert run("apply", str(plan), *store_args).output == "tracking plan version 1 (unchanged)\n"
    assert services.plan.get().doc == yaml.safe_load(SHOP)

    # What `show` prints is a plan file: applied back, it changes nothing.
    shown = run("show", *store_args)
    assert shown.exit_code == 0
    assert shown.output.startswith("# tracking plan version 1, applied 20")
    again = tmp_path / "shown.yaml"
    again.write_text(shown.output)
    assert run("apply", str(again), *store_args).output == (
        "tracking plan version 1 (unchanged)\n")

    plan.write_text(SHOP.replace("An order was paid.", "Payment confirmed."))
    r = run("apply", str(plan), "--expect-version", "0", *store_args)
    assert r.exit_code == 1 and "at version 1, not 0" in r.stderr
    r = run("apply", str(plan), "--expect-version", "1", *store_args)
    assert r.output == "tracking plan version 2 (applied)\n"
    as_json = json.loads(run("show", "--json", "--version", "1", *store_args).output)
    assert as_json["version"] == 1 and as_json["plan"] == yaml.safe_load(SHOP)
    assert services.plan.get().version == 2


def test_apply_refuses_an_invalid_file(
    tmp_path: Path, store_args: list[str], services: Any
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("events:\n  Signed Up:\n    required: [method]\n")
    r = run("apply", str(bad), *store_args)
    assert r.exit_code == 2
    assert "event 'Signed Up': required: 'method' required but not among the properties" in (
        r.stderr)
    assert services.plan.versions() == []
