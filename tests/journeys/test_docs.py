"""docs/journeys.md: every step type has an example, and every example is a valid journey."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from partitur.journeys import STEP_TYPES, check_journey, parse_journey

DOC = Path(__file__).resolve().parents[2] / "docs" / "journeys.md"


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)


def test_every_step_type_has_a_section_and_an_example() -> None:
    text = DOC.read_text()
    used: set[str] = set()
    journeys = 0
    for block in _yaml_blocks():
        doc = yaml.safe_load(block)
        if not isinstance(doc, dict) or "steps" not in doc:
            continue
        journey = parse_journey(doc)
        check_journey(journey)
        journeys += 1
        used |= {s.type for s in journey.steps}
    assert journeys >= len(STEP_TYPES)
    assert used == set(STEP_TYPES)
    for kind in STEP_TYPES:
        assert f"\n### {kind}\n" in text, kind


def test_issue_example_in_the_docs_is_the_example_file() -> None:
    first = yaml.safe_load(_yaml_blocks()[0])
    example = DOC.parents[1] / "examples" / "journeys" / "welcome.yaml"
    assert first == yaml.safe_load(example.read_text())


def test_every_trigger_kind_is_documented() -> None:
    from partitur.journeys.parse import TRIGGER_KINDS

    table = DOC.read_text().split("### Triggers", 1)[1].split("\n## ", 1)[0]
    for kind in TRIGGER_KINDS:
        assert f"`{{{kind}: " in table, kind
