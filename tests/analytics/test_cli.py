"""``partitur analytics`` through click's runner, on both stores, over the files the app's
projector wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from partitur.cli import main
from tests.analytics.conftest import Env, at


@pytest.fixture
def store_args(tmp_path: Path, database_url: str | None) -> list[str]:
    args = ["--data", str(tmp_path / "data")]
    return [*args, "--database-url", database_url] if database_url else args


def run(*args: str) -> Any:
    result = CliRunner().invoke(main, ["analytics", *args],
                                env={"PARTITUR_DATABASE_URL": None, "PARTITUR_DATA_DIR": None})
    return result


def test_flush_status_and_funnel(env: Env, tmp_path: Path, store_args: list[str]) -> None:
    env.send(env.track("u1", "Signed Up", at(0)), env.track("u1", "Order Completed", at(5)),
             env.track("u2", "Signed Up", at(1)))
    env.process()  # processed, not yet in Parquet: the CLI's flush writes it
    out = run("flush", *store_args)
    assert out.exit_code == 0, out.output
    assert "wrote 3 events" in out.output
    status = run("status", *store_args)
    assert "rows: 3" in status.output and "waiting_events: 0" in status.output
    window = ["--from", at(days=-1), "--to", at(days=1)]
    table = run("funnel", *store_args, "--step", "Signed Up", "--step", "Order Completed",
                *window)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert "Signed Up" in lines[0] and " 2 " in lines[0] and "100.0%" in lines[0]
    assert "Order Completed" in lines[1] and "50.0%" in lines[1] and "median 300s" in lines[1]
    request = tmp_path / "funnel.yaml"
    request.write_text("steps: [Signed Up, Order Completed]\nwindow: 1m\n")
    as_json = run("funnel", *store_args, "--request", str(request), *window, "--format", "json")
    assert [s["count"] for s in json.loads(as_json.output)["steps"]] == [2, 0]  # 5 min > 1m
    csv_out = run("funnel", *store_args, "--request", str(request), *window, "--format", "csv")
    assert csv_out.output.splitlines()[0].startswith("breakdown_value,index,name,count")
    target = tmp_path / "funnel.parquet"
    run("funnel", *store_args, "--request", str(request), *window, "--format", "parquet",
        "-o", str(target))
    assert pq.read_table(target).column("count").to_pylist() == [2, 0]
    bad = run("funnel", *store_args, "--step", "A", "--window", "soon")
    assert bad.exit_code == 2 and "window" in bad.output


def test_paths_kpi_retention_and_people(env: Env, tmp_path: Path,
                                        store_args: list[str]) -> None:
    env.send(env.track("u1", "Signed Up", at(0)), env.track("u1", "Order Completed", at(5)),
             env.track("u2", "Signed Up", at(1)), env.track("u2", "Search", at(2)))
    env.settle()
    window = ["--from", at(days=-1), "--to", at(days=1)]
    out = run("paths", *store_args, "--start", "Signed Up", *window)
    assert out.exit_code == 0, out.output
    assert "0:Signed Up" in out.output and "1:Order Completed" in out.output
    out = run("kpi", *store_args, "--event", "Signed Up", "--interval", "hour",
              "--from", at(0), "--to", at(120), "--format", "json")
    assert [p["value"] for p in json.loads(out.output)["series"][0]["points"]] == [2, 0]
    out = run("retention", *store_args, "--start-event", "Signed Up", "--return-event",
              "Order Completed", "--periods", "1", "--from", at(0), "--to", at(days=1))
    assert out.exit_code == 0 and "2026-01-05" in out.output
    selection = tmp_path / "dropped.json"
    selection.write_text(json.dumps({
        "source": "funnel", "step": 0, "status": "dropped",
        "query": {"steps": ["Signed Up", "Order Completed"], "from": at(days=-1),
                  "to": at(days=1)}}))
    out = run("people", *store_args, "--request", str(selection))
    assert out.output.split() == [env.profile_of("u2")]
    out = run("people", *store_args, "--request", str(selection), "--save", "no-order")
    assert json.loads(out.output)["added"] == 1
