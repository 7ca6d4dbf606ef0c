"""The segment benchmark's harness runs (tiny numbers; the figures are in docs/benchmarks.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))


def test_bench_segments_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import segments as bench  # bench/segments.py

    assert bench.main(["--events", "400", "--people", "40", "--segments", "20",
                       "--history-people", "5", "--history", "30", "--per-round", "4",
                       "--rounds", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["without_segments"]["events"] == 400
    run = report["with_segments"]
    assert run["events"] == 400
    assert run["evaluations"] > 0
    assert run["memberships"] > 0
    assert run["due_fired"] > 0
    history = report["history"]
    for variant in ("all_time", "long_window"):
        assert history[variant]["members"] == 5
        assert [r["events"] for r in history[variant]["rounds"]] == [20, 20]
    # Steady state: all time reads no stored event; the long window reads every past one.
    assert history["all_time"]["rounds"][1]["rows_read_per_event"] == 0
    assert history["long_window"]["rounds"][1]["rows_read_per_event"] > 30 / 4  # per batch
