"""``partitur journeys`` through click's runner: journeys kept in files, checked and applied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from partitur.cli import main
from tests.journeys.conftest import ROOT, Env

WELCOME = str(ROOT / "examples/journeys/welcome.yaml")
CART = str(ROOT / "examples/journeys/abandoned-cart.yaml")
SEGMENT = str(ROOT / "examples/segments/support-escalations.yaml")


@pytest.fixture
def store_args(tmp_path: Path, database_url: str | None) -> list[str]:
    args = ["--data", str(tmp_path / "data")]
    return [*args, "--database-url", database_url] if database_url else args


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["journeys", *args],
                              env={"PARTITUR_DATABASE_URL": None, "PARTITUR_DATA_DIR": None})


def test_validate_ok_and_bad(tmp_path: Path) -> None:
    ok = run("validate", WELCOME, CART)
    assert ok.exit_code == 0, ok.output
    assert "ok (welcome)" in ok.output and "ok (abandoned-cart)" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(WELCOME).read_text().replace("on_timeout: branch-plan",
                                                     "on_timeout: nowhere"))
    result = run("validate", str(bad))
    assert result.exit_code == 2
    assert "step 'wait-order': steps[1].on_timeout: unknown next step 'nowhere'" in \
        result.output


def test_validate_with_store_finds_missing_templates(env: Env, store_args: list[str]) -> None:
    result = run("validate", "--store", *store_args, WELCOME)
    assert result.exit_code == 2
    assert "step 'welcome'" in result.output and "missing template 'welcome-email'" in \
        result.output


def test_publishing_needs_the_segments_it_names(store_args: list[str]) -> None:
    result = run("apply", "--publish", *store_args, CART)
    assert result.exit_code == 2, result.output
    assert "exit_when[1]: unknown segment 'support-escalations': no segment has this key" in \
        result.output
    segments = CliRunner().invoke(main, ["segments", "apply", *store_args, SEGMENT], env={
        "PARTITUR_DATABASE_URL": None, "PARTITUR_DATA_DIR": None})
    assert segments.exit_code == 0, segments.output
    result = run("apply", "--publish", *store_args, CART)
    assert result.exit_code == 0, result.output
    assert "version 1" in result.output


def test_apply_publish_list_stats_status(env: Env, store_args: list[str]) -> None:
    result = run("apply", *store_args, CART)
    assert result.exit_code == 0, result.output
    assert "created draft abandoned-cart" in result.output
    result = run("publish", *store_args, "abandoned-cart")
    assert result.exit_code == 0, result.output
    assert "published abandoned-cart version 1" in result.output
    result = run("apply", "--publish", *store_args, CART)
    assert "updated draft abandoned-cart" in result.output
    assert "version 2" in result.output
    listed = run("list", "--json", *store_args)
    [item] = json.loads(listed.output)
    assert item["status"] == "live" and item["live_version"] == 2
    stats = json.loads(run("stats", *store_args, "abandoned-cart").output)
    assert stats["entered"] == 0 and stats["steps"][0]["step"] == "wait-purchase"
    paused = run("status", *store_args, "abandoned-cart", "pause")
    assert paused.exit_code == 0 and "paused" in paused.output
    missing = run("publish", *store_args, "nope")
    assert missing.exit_code == 1 and "no journey 'nope'" in missing.output
