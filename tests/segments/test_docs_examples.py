"""Every JSON and YAML example in docs/segments.md parses as what it claims to be."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from partitur.conditions import parse_condition
from partitur.segments import parse_segment

DOC = Path(__file__).parents[2] / "docs" / "segments.md"


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), re.S)


def test_json_examples_parse() -> None:
    found = blocks("json")
    assert len(found) > 25
    for text in found:
        doc = json.loads(text)
        if doc.get("type") == "track":  # an entry event as the log holds it
            assert doc["event"] in ("Segment Entered", "Segment Exited")
            assert set(doc["properties"]) == {"segment", "segment_name", "cause"}
        elif "key" in doc:
            parse_segment(doc)
        else:
            parse_condition(doc)


def test_yaml_examples_parse() -> None:
    (text,) = blocks("yaml")
    docs = list(yaml.safe_load_all(text))
    assert [parse_segment(d).key for d in docs] == ["pro", "pro-lapsed"]


def test_every_operator_and_condition_type_is_documented() -> None:
    from partitur.conditions import OPERATORS
    from partitur.conditions.parse import KINDS

    text = DOC.read_text()
    for op in OPERATORS:
        assert f"`{op}`" in text, op
    for kind in KINDS:
        assert f'{{"{kind}":' in text, kind
