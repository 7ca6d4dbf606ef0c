"""docs/tracking-api.md is executed: every ``sh`` example runs against a real server, and the
``text`` block that follows it is what it must print."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import PartiturServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "tracking-api.md"
DEFAULT_BASE = "http://127.0.0.1:8910"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def examples() -> list[tuple[str, str | None]]:
    """(command, expected output or None), in the order of the page."""
    blocks = FENCE.findall(DOC.read_text())
    out: list[tuple[str, str | None]] = []
    for i, (lang, body) in enumerate(blocks):
        if lang == "sh":
            follows = blocks[i + 1] if i + 1 < len(blocks) else ("", "")
            out.append((body, follows[1] if follows[0] == "text" else None))
    return out


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]


def test_the_page_has_examples_with_answers() -> None:
    found = examples()
    assert len(found) >= 8
    assert sum(expected is not None for _, expected in found) == len(found)


@pytest.mark.serial
def test_the_examples_print_what_the_page_says(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    server = PartiturServer(tmp_path / "data")
    with server.services() as services:  # the demo's published keys
        services.keys.store_known_key("demo-web-write-key", "write", "web")
        services.keys.store_known_key("demo-admin-token", "admin")
    with server:
        for command, expected in examples():
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", command.replace(DEFAULT_BASE, server.url)],
                capture_output=True, text=True, timeout=60,
            )
            assert done.returncode == 0, (command, done.stderr)
            if expected is not None:
                assert lines(done.stdout) == lines(expected), command
        server.assert_clean_log()
