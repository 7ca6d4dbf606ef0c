"""What a message template is made of, per channel, and how it is checked before use.

A template is a JSON object of parts, each part a Jinja2 template:

* ``email``: ``subject`` (required), ``text`` and/or ``html`` (at least one);
* ``sms``: ``text``;
* ``web`` (in-app/web message): ``title`` (required), ``body``, ``url``;
* ``webhook``: ``url`` (required), ``method``, ``headers`` (object of templates), ``body`` (any
  JSON; its string values are templates).

:func:`check_template` is pure: the journey validator calls it at publish time, and the
template API calls it on every ``PUT``. It reports syntax errors, missing or unknown parts,
variables a template reads that it will never be given, and attributes of ``profile`` and
``journey`` that do not exist — everything that can be known before a person is at hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Set
from typing import Any

from partitur.templates.engine import RenderError, attribute_paths, parse, variables_used

CHANNELS = ("email", "sms", "webhook", "web")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")

# channel -> (required parts, optional parts)
PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "email": (("subject",), ("text", "html")),
    "sms": (("text",), ()),
    "web": (("title",), ("body", "url")),
    "webhook": (("url",), ("method", "headers", "body")),
}
HTML_PARTS = frozenset({"html"})
WEBHOOK_METHODS = ("POST", "PUT", "PATCH")

# What templates see. ``event`` is the triggering event as stored (any shape).
ROOTS: dict[str, frozenset[str] | None] = {
    "profile": frozenset({"id", "traits", "consent", "identifiers"}),
    "event": None,
    "journey": frozenset({"key", "version", "step", "arm", "decision"}),
}
DEFAULT_ROOTS = frozenset(ROOTS)
CHANNEL_ROOTS: dict[str, frozenset[str]] = {"email": frozenset({"unsubscribe_url"})}


def _leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside a JSON value, with its path (``body.items[0].name``)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")


def template_sources(channel: str, parts: Mapping[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """``(where, source, html)`` of every template string in ``parts``."""
    for name, value in parts.items():
        if channel == "webhook" and name in ("headers", "body"):
            for where, source in _leaves(value, name):
                yield where, source, False
        elif isinstance(value, str):
            yield name, value, name in HTML_PARTS


def _shape_problems(channel: str, parts: Mapping[str, Any]) -> list[str]:
    required, optional = PARTS[channel]
    allowed = set(required) | set(optional)
    problems = []
    for name in parts:
        if name not in allowed:
            expected = ", ".join(sorted(allowed))
            problems.append(f"unknown part '{name}' for {channel} (expected {expected})")
    for name in required:
        value = parts.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{channel} needs a non-empty '{name}'")
    if channel == "email" and not any(
        isinstance(parts.get(p), str) and parts[p].strip() for p in ("text", "html")
    ):
        problems.append("email needs a 'text' or an 'html' body (or both)")
    for name in set(optional) - {"headers", "body"}:
        if name in parts and not isinstance(parts[name], str):
            problems.append(f"'{name}' must be a string")
    if channel == "webhook":
        method = parts.get("method", "POST")
        if not isinstance(method, str) or method.upper() not in WEBHOOK_METHODS:
            problems.append(f"'method' must be one of {', '.join(WEBHOOK_METHODS)}")
        headers = parts.get("headers", {})
        if not isinstance(headers, Mapping) or not all(
            isinstance(v, str) for v in headers.values()
        ):
            problems.append("'headers' must be an object of strings")
    return problems


def check_template(
    template: str | Mapping[str, Any] | None,
    channel: str,
    known: Set[str] | None = None,
) -> list[str]:
    """Problems with a template for ``channel``, as sentences; empty when it is fine.

    ``template`` is a stored template's key (only its form is checked here; see
    :func:`partitur.templates.template_exists`), an inline template, or None (allowed for
    ``webhook``, whose request is then given in full by the caller). ``known`` are the
    variable roots the template will be given (default: ``profile``, ``event``, ``journey``).
    """
    if channel not in CHANNELS:
        return [f"unknown channel '{channel}' (expected {', '.join(CHANNELS)})"]
    if template is None:
        return [] if channel == "webhook" else [f"a {channel} message needs a template"]
    if isinstance(template, str):
        if not KEY_PATTERN.match(template):
            return [f"'{template}' is not a template key (letters, digits, _ . -; 1-128)"]
        return []
    if not isinstance(template, Mapping):
        return ["a template is a key or an object of parts"]
    problems = _shape_problems(channel, template)
    roots = set(DEFAULT_ROOTS if known is None else known) | CHANNEL_ROOTS.get(channel, set())
    for where, source, html in template_sources(channel, template):
        try:
            tree = parse(source, html=html)
        except RenderError as exc:
            problems.append(f"{where}: {exc.message}")
            continue
        for name in sorted(variables_used(tree) - roots):
            problems.append(
                f"{where}: unknown variable '{name}' (templates see {', '.join(sorted(roots))})"
            )
        for root, attr, line in attribute_paths(tree):
            allowed = ROOTS.get(root)
            if root in roots and allowed is not None and attr not in allowed:
                problems.append(
                    f"{where}: line {line}: {root} has no '{attr}' "
                    f"(it has {', '.join(sorted(allowed))})"
                )
    return problems
