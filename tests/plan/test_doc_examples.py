"""docs/tracking-plan.md: its example plan is valid and behaves as the page says."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from partitur.cli import main
from partitur.plan.enforce import compile_plan, inspect
from partitur.plan.parse import load_yaml
from partitur.plan.policy import effective_policy
from partitur.plan.routes import plan_json_schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "tracking-plan.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def blocks(lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(DOC.read_text()) if kind == lang]


def test_the_example_plan_is_valid(tmp_path: Path) -> None:
    [example] = blocks("yaml")
    plan = load_yaml(example)
    assert plan.events["Product Viewed"].declared() == {"product_id", "price"}
    assert plan.events["Consent Updated"].declared() is None
    path = tmp_path / "plan.yaml"
    path.write_text(example)
    result = CliRunner().invoke(main, ["plan", "validate", str(path)])
    assert result.exit_code == 0
    assert result.output.replace(str(path), "plan.yaml") in DOC.read_text()


def test_the_stamped_event_is_what_the_check_stamps() -> None:
    from partitur.ingest.message import Message

    [example] = blocks("yaml")
    stamped = next(json.loads(b) for b in blocks("json") if '"_partitur"' in b)
    msg = Message(type="track", event=stamped["event"], properties=stamped["properties"],
                  message_id="m1", partitur={"source": stamped["_partitur"]["source"]})
    keep, record, changed = inspect(compile_plan(1, load_yaml(example)),
                                    effective_policy({}), "src", msg)
    assert keep and changed and record is not None
    assert msg.partitur == stamped["_partitur"]


def test_every_documented_key_is_in_the_schema() -> None:
    schema = plan_json_schema()
    planned = schema["$defs"]["Planned"]["properties"]
    for key in ("description", "produced_by", "consumed_by", "required", "properties"):
        assert f"| `{key}` |" in DOC.read_text() and key in planned
    for key in ("name", "description", "policy", "events", "traits", "page", "screen", "group"):
        assert key in schema["properties"]
