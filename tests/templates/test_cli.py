"""partitur templates validate|apply|list on files kept in git."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from partitur.cli import main

FILE = """\
templates:
  - key: welcome-email
    channel: email
    subject: "Welcome {{ profile.traits.first_name | default('there') }}"
    text: |
      Hello!
  - key: discount-sms
    channel: sms
    text: "Your code: {{ event.properties.code }}"
"""


def test_validate_apply_list(tmp_path: Path) -> None:
    path = tmp_path / "templates.yaml"
    path.write_text(FILE)
    runner = CliRunner()
    ok = runner.invoke(main, ["templates", "validate", str(path)])
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip().endswith("valid (welcome-email, discount-sms)")
    data = ["--data", str(tmp_path / "data")]
    applied = runner.invoke(main, ["templates", "apply", *data, str(path)])
    assert applied.exit_code == 0, applied.output
    assert applied.output.splitlines() == ["welcome-email: version 1", "discount-sms: version 1"]
    again = runner.invoke(main, ["templates", "apply", *data, str(path)])
    assert "welcome-email: unchanged (version 1)" in again.output
    listed = runner.invoke(main, ["templates", "list", *data])
    assert [line.split()[:3] for line in listed.output.splitlines()] == [
        ["discount-sms", "sms", "v1"], ["welcome-email", "email", "v1"]]


def test_validate_reports_problems_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("key: x\nchannel: email\nsubject: '{{ oops'\n")
    result = CliRunner().invoke(main, ["templates", "validate", str(path)])
    assert result.exit_code == 2
    assert "invalid: template 'x' is invalid" in result.output
    assert "email needs a 'text' or an 'html' body" in result.output
    nothing = CliRunner().invoke(main, ["templates", "apply", "--data", str(tmp_path / "d"),
                                        str(path)])
    assert nothing.exit_code == 2
    assert not (tmp_path / "d").exists()
