"""A claimed row made concrete for one person: which template, to which address, rendered.

Pure: the caller has loaded the profile, its identifiers and the stored templates. A problem
is returned as a :class:`RenderFailure` — ``suppress`` when the person simply cannot receive
the message on this channel (no address), otherwise a failed delivery with the reason (a
template that does not exist, or a variable it needs that is missing).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from partitur.channels.config import ChannelConfig
from partitur.channels.unsubscribe import Unsubscribe, make_token, unsubscribe_url
from partitur.identity.extract import normalise_email, normalise_phone
from partitur.profiles.state import ProfileState
from partitur.templates.engine import RenderError
from partitur.templates.parts import profile_variable, render_parts
from partitur.templates.store import Template

if TYPE_CHECKING:
    from partitur.channels.claim import Row


@dataclass(frozen=True, slots=True)
class Rendered:
    content: dict[str, Any]
    to: str | None = None
    unsubscribe_url: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenderFailure:
    reason: str
    suppress: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


def _first(
    traits: Mapping[str, Any], ids: Sequence[tuple[str, str]], trait: str, kind: str
) -> list[str]:
    found = [str(traits[trait])] if isinstance(traits.get(trait), str | int) else []
    return found + [v for t, v in ids if t == kind]


def recipient(
    row: Row, state: ProfileState, ids: Sequence[tuple[str, str]], region: str
) -> str | None:
    if row.channel == "email":
        for candidate in ([row.recipient] if row.recipient else []) + _first(
            state.traits, ids, "email", "email"
        ):
            address = normalise_email(candidate)
            if address:
                return address
    elif row.channel == "sms":
        for candidate in ([row.recipient] if row.recipient else []) + _first(
            state.traits, ids, "phone", "phone"
        ):
            number = normalise_phone(candidate, region)
            if number:
                return number
    return None


def _parts(row: Row, templates: Mapping[str, Template]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(parts, detail) or raise LookupError with the reason."""
    if row.channel == "webhook" and row.webhook is not None:
        return dict(row.webhook), {}
    if isinstance(row.template, str):
        stored = templates.get(row.template)
        if stored is None:
            raise LookupError(f"template '{row.template}' does not exist")
        if stored.channel != row.channel:
            raise LookupError(
                f"template '{row.template}' is for {stored.channel}, not {row.channel}"
            )
        return dict(stored.parts), {"template": stored.key, "template_version": stored.version}
    if isinstance(row.template, dict):
        return dict(row.template), {}
    raise LookupError(f"a {row.channel} message needs a template")


def _with_footer(content: dict[str, Any], url: str) -> None:
    """Marketing email always carries the unsubscribe link, in each body that lacks it."""
    text = content.get("text")
    if isinstance(text, str) and url not in text:
        content["text"] = f"{text.rstrip()}\n\nUnsubscribe: {url}\n"
    body = content.get("html")
    if isinstance(body, str) and html.escape(url) not in body and url not in body:
        link = f'<p style="font-size:12px"><a href="{html.escape(url)}">Unsubscribe</a></p>'
        lower = body.lower()
        at = lower.rfind("</body>")
        content["html"] = body[:at] + link + body[at:] if at >= 0 else body + link


def render_row(
    row: Row,
    state: ProfileState,
    ids: Sequence[tuple[str, str]],
    templates: Mapping[str, Template],
    config: ChannelConfig,
    secret: str,
) -> Rendered | RenderFailure:
    try:
        parts, detail = _parts(row, templates)
    except LookupError as exc:
        return RenderFailure(str(exc.args[0]))
    to = None
    if row.channel in ("email", "sms"):
        to = recipient(row, state, ids, config.phone_region)
        if to is None:
            what = "email address" if row.channel == "email" else "phone number"
            return RenderFailure(f"no {what} on the profile", suppress=True, detail=detail)
    journey = {"key": row.journey, "version": row.version, "step": row.step_id}
    given = row.variables.get("journey")
    if isinstance(given, Mapping):
        journey.update(given)
    variables: dict[str, Any] = {k: v for k, v in row.variables.items()}
    variables.update(
        profile=profile_variable(state.id, state.traits, state.consent, ids),
        event=row.variables.get("event") or {},
        journey=journey,
    )
    link = None
    if row.channel == "email":
        purpose = config.purposes.get("email", "marketing_email")
        token = make_token(secret, Unsubscribe(state.id, purpose, row.key))
        link = unsubscribe_url(config.public_url, token)
        variables["unsubscribe_url"] = link
    try:
        content = render_parts(row.channel, parts, variables)
    except RenderError as exc:
        return RenderFailure(f"template: {exc.message}", detail=detail)
    marketing = row.category == "marketing"
    if row.channel == "email" and marketing and link:
        _with_footer(content, link)
    return Rendered(content, to, link if marketing else None, detail)
