"""The journey benchmark's harness runs (tiny numbers; the figures are in docs/benchmarks.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_SKIP_REASON, PG_URL

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))


def test_transitions_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    import journeys as bench  # bench/journeys.py

    assert bench.main(["transitions", "--people", "300", "--batch", "100"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["people"] == 300 and len(report["transitions_per_s"]) == 3
    assert report["best"] > 0 and report["bare_update_per_s"] > 0


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON)
def test_transitions_with_two_worker_processes(capsys: pytest.CaptureFixture[str]) -> None:
    import journeys as bench

    assert bench.main(["transitions", "--store", "postgres", "--workers", "2",
                       "--people", "600", "--batch", "50"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["workers"] == 2 and len(report["rounds"]) == 3
    for round_ in report["rounds"]:
        assert sum(round_["per_worker"]) == 600  # every timer fired once, by one of them
    assert report["best"] > 0
