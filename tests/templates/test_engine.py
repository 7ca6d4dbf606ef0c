"""The sandbox: templates are user input, so they cannot reach Python's internals, cannot
build huge values, and a missing variable is an error rather than an empty string."""

from __future__ import annotations

import pytest

from partitur.templates import RenderError, render, render_parts

PROFILE = {"id": "p1", "traits": {"first_name": "Kari", "plan": "pro"}}


def test_variables_render() -> None:
    out = render("Hi {{ profile.traits.first_name }} ({{ profile.id }})", {"profile": PROFILE})
    assert out == "Hi Kari (p1)"


def test_missing_variable_is_an_error_naming_it() -> None:
    with pytest.raises(RenderError, match="last_name"):
        render("Hi {{ profile.traits.last_name }}", {"profile": PROFILE})


def test_default_filter_gives_a_fallback() -> None:
    out = render("Hi {{ profile.traits.last_name | default('there') }}", {"profile": PROFILE})
    assert out == "Hi there"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ profile.__class__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ ''.format.__globals__ }}",
    ],
)
def test_sandbox_refuses_python_internals(source: str) -> None:
    with pytest.raises(RenderError):
        render(source, {"profile": PROFILE})


@pytest.mark.parametrize(
    "source",
    ["{{ 'x' * 10000000 }}", "{{ [1] * 10000000 }}", "{{ 10 ** 100000 }}",
     "{% for i in range(1000000000) %}x{% endfor %}"],
)
def test_sandbox_refuses_huge_values(source: str) -> None:
    with pytest.raises(RenderError):
        render(source, {})


def test_small_repetition_is_fine() -> None:
    assert render("{{ '-' * 3 }}{{ 2 ** 10 }}", {}) == "---1024"


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(RenderError, match="line 2"):
        render("ok\n{{ profile.traits.name ", {"profile": PROFILE})


def test_html_parts_are_escaped_text_parts_are_not() -> None:
    variables = {"profile": {"id": "p", "traits": {"name": "<script>x</script>"}}}
    parts = {"subject": "{{ profile.traits.name }}", "html": "<p>{{ profile.traits.name }}</p>",
             "text": "{{ profile.traits.name }}"}
    out = render_parts("email", parts, variables)
    assert out["html"] == "<p>&lt;script&gt;x&lt;/script&gt;</p>"
    assert out["subject"] == out["text"] == "<script>x</script>"


def test_webhook_body_strings_are_templates_other_values_stay() -> None:
    parts = {"url": "https://crm.example/{{ profile.id }}", "method": "POST",
             "headers": {"X-Plan": "{{ profile.traits.plan }}"},
             "body": {"id": "{{ profile.id }}", "n": 3,
                      "tags": ["{{ profile.traits.plan }}", True]}}
    out = render_parts("webhook", parts, {"profile": PROFILE})
    assert out == {"url": "https://crm.example/p1", "method": "POST",
                   "headers": {"X-Plan": "pro"},
                   "body": {"id": "p1", "n": 3, "tags": ["pro", True]}}


def test_a_failing_part_is_named() -> None:
    with pytest.raises(RenderError, match=r"^body\.items\[1\]: "):
        render_parts("webhook", {"url": "https://x", "body": {"items": ["ok", "{{ nope.x }}"]}},
                     {})
