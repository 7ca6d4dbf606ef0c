"""Message templates: Jinja2 in its sandbox, checked before use, stored with versions.

Exports: :func:`check_template` (pure; the journey validator calls it at publish time),
:func:`template_exists` and :func:`template_channel` (in a transaction), :func:`render`,
:func:`render_parts` and :class:`RenderError`.
"""

from partitur.templates.document import CHANNELS, DEFAULT_ROOTS, check_template
from partitur.templates.engine import RenderError, render
from partitur.templates.parts import profile_variable, render_parts
from partitur.templates.store import Template, template_channel, template_exists

__all__ = [
    "CHANNELS",
    "DEFAULT_ROOTS",
    "RenderError",
    "Template",
    "check_template",
    "profile_variable",
    "render",
    "render_parts",
    "template_channel",
    "template_exists",
]
