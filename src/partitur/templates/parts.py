"""A template's parts rendered for one person: the variables templates see, and every part
(for webhooks, every string inside the headers and body) through the sandbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from partitur.templates.document import HTML_PARTS
from partitur.templates.engine import RenderError, render


def profile_variable(
    profile_id: str,
    traits: Mapping[str, Any],
    consent: Mapping[str, Mapping[str, Any]],
    identifiers: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """``profile`` as templates see it: ``id``, ``traits``, ``consent`` (purpose → granted)
    and ``identifiers`` (type → the first value of that type)."""
    first: dict[str, str] = {}
    for kind, value in identifiers:
        first.setdefault(kind, value)
    return {
        "id": profile_id,
        "traits": dict(traits),
        "consent": {p: bool(entry.get("granted")) for p, entry in consent.items()},
        "identifiers": first,
    }


def _render_json(value: Any, variables: Mapping[str, Any], where: str) -> Any:
    if isinstance(value, str):
        try:
            return render(value, variables)
        except RenderError as exc:
            raise RenderError(f"{where}: {exc.message}") from None
    if isinstance(value, Mapping):
        return {k: _render_json(v, variables, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_render_json(v, variables, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def render_parts(
    channel: str, parts: Mapping[str, Any], variables: Mapping[str, Any]
) -> dict[str, Any]:
    """Every part rendered; :class:`RenderError` naming the part that failed."""
    out: dict[str, Any] = {}
    for name, value in parts.items():
        if channel == "webhook" and name in ("headers", "body"):
            out[name] = _render_json(value, variables, name)
        elif isinstance(value, str):
            try:
                out[name] = render(value, variables, html=name in HTML_PARTS)
            except RenderError as exc:
                raise RenderError(f"{name}: {exc.message}") from None
        else:
            out[name] = value
    return out
