"""The demo's journeys and their templates, applied through the management API.

The files ship with the package (``journey-*.yaml``, ``templates.yaml``). The journeys are
written for email; when no SMTP server is configured, :func:`for_channel` turns their email
steps into web messages (stored for the site to fetch, visible in the deliveries list), so
that every delivery has an outcome to look at instead of failing for want of a mail server.
"""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import yaml

from partitur.demo.sender import Api

JOURNEY_FILES = ("journey-welcome.yaml", "journey-abandoned-cart.yaml", "journey-signup-offer.yaml")
TEMPLATE_FILE = "templates.yaml"


def _text(name: str) -> str:
    return resources.files("partitur.demo").joinpath(name).read_text(encoding="utf-8")


def journey_documents() -> list[dict[str, Any]]:
    return [yaml.safe_load(_text(name)) for name in JOURNEY_FILES]


def template_documents() -> list[dict[str, Any]]:
    templates: list[dict[str, Any]] = yaml.safe_load(_text(TEMPLATE_FILE))["templates"]
    return templates


def for_channel(doc: dict[str, Any], email: bool) -> dict[str, Any]:
    """``doc`` as it is (``email``), or with its email steps sending web messages instead
    (template ``X-email`` becomes ``X-web``)."""
    if email:
        return doc
    doc = copy.deepcopy(doc)
    for step in doc["steps"]:
        if step.get("type") == "send" and step.get("channel") == "email":
            step["channel"] = "web"
            step["template"] = str(step["template"]).removesuffix("-email") + "-web"
    return doc


def apply_journeys(api: Api, *, email: bool) -> list[str]:
    """Save the templates, then save and publish each journey; a journey is published again
    only when its document changed. What happened, a line per journey."""
    for template in template_documents():
        body = {k: v for k, v in template.items() if k != "key"}
        api.admin("PUT", f"/api/v1/templates/{template['key']}", body)
    lines = []
    for doc in journey_documents():
        doc = for_channel(doc, email)
        key = doc["key"]
        before = api.admin("GET", f"/api/v1/journeys/{key}")
        saved = api.admin("PUT", f"/api/v1/journeys/{key}", doc)
        live = before and before.get("live_version")
        if live and before["draft"] == saved["draft"] and before["status"] == "live":
            lines.append(f"{key} (version {live}, unchanged)")
            continue
        published = api.admin("POST", f"/api/v1/journeys/{key}/publish", {})
        lines.append(f"{key} (version {published['version']}, published)")
    return lines
