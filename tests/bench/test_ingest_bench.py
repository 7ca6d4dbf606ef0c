"""``bench/ingest.py`` keeps working: each mode, briefly, against real servers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG_SKIP_REASON, PG_URL

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ingest.py"
QUICK = ["--quiet-wait", "0", "--connections", "4", "--population", "500"]


def bench(tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    """Run the benchmark; the records it appended to its (fresh) results file."""
    out = tmp_path / f"results{len(list(tmp_path.glob('results*')))}.jsonl"
    done = subprocess.run(
        [sys.executable, str(BENCH), *QUICK, *args, "--json", str(out)],
        capture_output=True, timeout=240, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.serial
@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_ack_mode_measures_acknowledged_events(tmp_path: Path, store: str) -> None:
    if store == "postgres" and not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    extra = ["--database-url", PG_URL] if store == "postgres" and PG_URL else []
    [run] = bench(tmp_path, "--mode", "ack", "--store", store, "--seconds", "2",
                  "--warmup", "0.5", *extra)
    result = run["result"]
    assert result["errors"] == 0
    assert result["events"] > 0 and result["events"] % 100 == 0
    assert result["backlog_after"] >= result["events"]  # no worker: all of it still queued
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["peak_rss_mib"] > 0
    assert run["machine"]["cpus"] and run["command"].startswith("python bench/ingest.py")


@pytest.mark.serial
def test_processing_mode_drains_what_was_preloaded(tmp_path: Path) -> None:
    [run] = bench(tmp_path, "--mode", "processing", "--events", "3000")
    result = run["result"]
    assert result["queued"] == 3000
    assert result["drained"] is True and result["backlog_after"] == 0
    assert result["processed"] + result["processed_before_first_poll"] == 3000


@pytest.mark.serial
def test_sustained_mode_paces_the_load(tmp_path: Path) -> None:
    [run] = bench(tmp_path, "--mode", "sustained", "--rate", "2000", "--seconds", "3",
                  "--every", "1")
    result = run["result"]
    assert result["errors"] == 0
    assert result["events"] == 6000
    assert result["samples"] and result["drain_after_s"] is not None
    assert result["backlog_after"] == 0


@pytest.mark.serial
def test_bare_ceilings(tmp_path: Path) -> None:
    runs = bench(tmp_path, "--mode", "ack", "--bare", "--seconds", "1", "--warmup", "0")
    runs += bench(tmp_path, "--mode", "ack", "--bare-rows", "--seconds", "1", "--warmup", "0")
    assert [r["setup"]["store"] for r in runs] == ["bare", "bare-rows"]
    assert all(r["result"]["errors"] == 0 and r["result"]["events"] > 0 for r in runs)
