"""Templates kept in files (YAML or JSON), for ``partitur templates apply|validate``.

A file holds one template (a mapping with ``key``), a list of them, or ``{templates: [...]}``::

    key: welcome-email
    channel: email
    subject: "Welcome, {{ profile.traits.first_name | default('there') }}"
    text: |
      Hello {{ profile.traits.first_name | default('there') }},
      thanks for signing up.
    html: |
      <p>Hello {{ profile.traits.first_name | default('there') }},</p>
"""

from __future__ import annotations

from typing import Any

import yaml

from partitur.errors import InvalidInput
from partitur.templates.store import parse_document


def load_documents(text: str, name: str) -> list[tuple[str, dict[str, Any]]]:
    """``(key, document)`` pairs in a file's text; :class:`InvalidInput` naming the problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{name}: not YAML or JSON: {exc}") from None
    if isinstance(data, dict) and "templates" in data and "key" not in data:
        data = data["templates"]
    items = data if isinstance(data, list) else [data]
    out: list[tuple[str, dict[str, Any]]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise InvalidInput(f"{name}: template {index} needs a 'key'")
        doc = {k: v for k, v in item.items() if k != "key"}
        out.append((item["key"], doc))
    return out


def check_file(text: str, name: str) -> list[tuple[str, dict[str, Any]]]:
    """Load and check every template in a file; the first invalid one raises."""
    found = load_documents(text, name)
    for key, doc in found:
        parse_document(key, doc)
    return found
