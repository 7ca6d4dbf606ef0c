"""The segment benchmark's harness runs (tiny numbers; the figures are in docs/benchmarks.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))


def test_bench_segments_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import segments as bench  # bench/segments.py

    assert bench.main(["--events", "400", "--people", "40", "--segments", "20"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["without_segments"]["events"] == 400
    run = report["with_segments"]
    assert run["events"] == 400
    assert run["evaluations"] > 0
    assert run["memberships"] > 0
    assert run["due_fired"] > 0
