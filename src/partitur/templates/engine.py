"""Jinja2 in its sandbox, strict about undefined names: how message templates are compiled,
checked and rendered.

Templates are user input, so they run in :class:`jinja2.sandbox.SandboxedEnvironment` (no
access to Python internals, ``range`` capped) with two more guards: ``*`` and ``**`` may not
build huge strings, lists or numbers, and a rendered part may not exceed ``MAX_OUTPUT``
characters. :class:`jinja2.StrictUndefined` turns a missing variable into an error instead of
an empty string, so that "Hello {{ profile.traits.frist_name }}" never goes out as "Hello ".
A template that wants a fallback says so: ``{{ profile.traits.first_name | default("there") }}``.

HTML parts are rendered with autoescaping on (a trait holding ``<script>`` arrives as text);
text, subject and SMS parts are not escaped.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment

MAX_OUTPUT = 1_000_000  # characters per rendered part
_MAX_REPEAT = 100_000  # longest string or list ``*`` may build
_MAX_POWER = 10_000  # largest exponent ``**`` may use


class RenderError(Exception):
    """A template could not be compiled or rendered; ``message`` says why, for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _sized(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            if isinstance(right, int | float) and abs(right) > _MAX_POWER:
                raise RenderError(f"exponent {right} is too large")
            return operator.pow(left, right)
        if operator_ == "*":
            for seq, times in ((left, right), (right, left)):
                if _sized(seq) and isinstance(times, int) and len(seq) * times > _MAX_REPEAT:
                    raise RenderError("repetition would build a value that is too large")
            return operator.mul(left, right)
        return super().call_binop(context, operator_, left, right)


def _environment(*, html: bool) -> _Sandbox:
    return _Sandbox(
        undefined=StrictUndefined,
        autoescape=html,
        keep_trailing_newline=True,
        auto_reload=False,
        cache_size=0,  # compiled templates are cached by source below
    )


TEXT_ENV = _environment(html=False)
HTML_ENV = _environment(html=True)
GLOBALS = frozenset(TEXT_ENV.globals)


@functools.lru_cache(maxsize=2048)
def _compiled(source: str, html: bool) -> Any:
    env = HTML_ENV if html else TEXT_ENV
    try:
        return env.from_string(source)
    except TemplateError as exc:
        raise RenderError(_describe(exc)) from None


def _describe(exc: BaseException) -> str:
    line = getattr(exc, "lineno", None)
    text = getattr(exc, "message", None) or str(exc)
    return f"line {line}: {text}" if line else str(text)


def render(source: str, variables: Mapping[str, Any], *, html: bool = False) -> str:
    """Render one part; :class:`RenderError` with the reason if it cannot be."""
    template = _compiled(source, html)
    try:
        out = str(template.render(dict(variables)))
    except RenderError:
        raise
    except TemplateError as exc:
        raise RenderError(_describe(exc)) from None
    except RecursionError:
        raise RenderError("the template nests too deeply") from None
    except Exception as exc:  # a template can divide by zero or call a method wrongly
        raise RenderError(f"{type(exc).__name__}: {exc}") from None
    if len(out) > MAX_OUTPUT:
        raise RenderError(f"the rendered text is longer than {MAX_OUTPUT} characters")
    return out


def parse(source: str, *, html: bool = False) -> nodes.Template:
    """The syntax tree of ``source``; :class:`RenderError` on a syntax error."""
    env = HTML_ENV if html else TEXT_ENV
    try:
        return env.parse(source)
    except TemplateError as exc:
        raise RenderError(_describe(exc)) from None


def variables_used(tree: nodes.Template) -> set[str]:
    """Top-level names the template reads that it does not define itself."""
    from jinja2 import meta

    return set(meta.find_undeclared_variables(tree)) - GLOBALS


def attribute_paths(tree: nodes.Template) -> list[tuple[str, str, int]]:
    """``(root, first attribute, line)`` for every ``root.attr`` / ``root["attr"]`` read."""
    found: list[tuple[str, str, int]] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        base = getattr(node, "node", None)
        if not isinstance(base, nodes.Name):
            continue
        if isinstance(node, nodes.Getattr):
            attr = str(node.attr)
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            attr = node.arg.value
        else:
            continue
        found.append((base.name, attr, node.lineno))
    return found
