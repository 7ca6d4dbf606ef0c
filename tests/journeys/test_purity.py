"""The journey package never reads the OS clock or randomness: time is injected, splits hash."""

from __future__ import annotations

import re
from pathlib import Path

import partitur.journeys

PACKAGE = Path(partitur.journeys.__file__).parent
FORBIDDEN = re.compile(r"datetime\.now\(|time\.time\(|uuid4\(|\brandom\b|date\.today\(")


def test_no_clock_or_randomness_in_journeys() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) >= 4
    offenders = [
        f"{path.name}:{n}: {line.strip()}"
        for path in files
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert offenders == []
