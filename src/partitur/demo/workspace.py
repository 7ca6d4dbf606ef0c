"""The demo workspace: touchpoints with fixed write keys, an admin token, the demo tracking plan.

The keys are fixed and published (they are in the README), so that what ``make demo`` prints is
valid on every start: only hashes of keys are stored, and a key made at random on the first
start could not be shown again on the second. For the same reason the demo refuses to listen
on anything but a loopback address. Each demo source flags (but keeps) events that the plan
does not describe or that break it, unless an operator has set the source's policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from partitur.errors import InvalidInput
from partitur.plan.policy import check_policy

WRITE_KEYS = {
    "web": "demo-web-write-key",
    "ios": "demo-ios-write-key",
    "backend": "demo-backend-write-key",
    "crm": "demo-crm-write-key",
}
ADMIN_TOKEN = "demo-admin-token"
# Flag (never block) whatever the plan does not expect, so there is something to look at.
PLAN_POLICY = {"unplanned_events": "flag", "unplanned_properties": "flag", "violations": "flag"}
PLAN_FILE = "tracking-plan.yaml"


@dataclass(frozen=True)
class Workspace:
    write_keys: dict[str, str]
    admin_token: str
    plan: str  # what happened to the tracking plan, in words


def plan_text() -> str:
    """The demo tracking plan, as shipped in the package."""
    return resources.files("partitur.demo").joinpath(PLAN_FILE).read_text(encoding="utf-8")


def check_loopback(host: str) -> None:
    from partitur.demo.sender import loopback_url

    try:
        loopback_url(host, 0)
    except ValueError:
        raise InvalidInput(
            f"the demo workspace uses published keys, so it only listens on a loopback address "
            f"(127.0.0.1, ::1 or localhost), not '{host}'"
        ) from None


def ensure_workspace(services: Any) -> Workspace:
    """Create what is missing; a second call on the same store changes nothing."""
    check_loopback(services.settings.host)
    for source, key in WRITE_KEYS.items():
        services.keys.store_known_key(key, "write", source)
        if not services.keys.get_source(source).plan_policy:  # keep what an operator chose
            services.keys.update_source(source, plan_policy=check_policy(PLAN_POLICY))
    services.keys.store_known_key(ADMIN_TOKEN, "admin")
    return Workspace(dict(WRITE_KEYS), ADMIN_TOKEN, apply_plan(services))


def apply_plan(services: Any) -> str:
    """Apply the demo tracking plan; a new version only when the shipped plan changed."""
    applied = services.plan.apply_yaml(plan_text())
    return f"version {applied.version}" + (" (applied)" if applied.changed else " (unchanged)")
