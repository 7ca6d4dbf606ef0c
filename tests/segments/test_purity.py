"""The condition language and the segment engine never read the OS clock or randomness."""

from __future__ import annotations

from pathlib import Path

import partitur

ROOT = Path(partitur.__file__).parent
FORBIDDEN = ("datetime.now(", "time.time(", "uuid4(", "random.", "date.today(")


def test_no_clock_or_randomness_in_conditions_and_segments() -> None:
    files = [*(ROOT / "conditions").glob("*.py"), *(ROOT / "segments").glob("*.py")]
    assert len(files) > 10
    offenders = [
        f"{path.name}: {word}"
        for path in files
        for word in FORBIDDEN
        if word in path.read_text()
    ]
    assert offenders == []
