"""Per-source tracking-plan policy: what happens to unplanned events, unplanned properties and
schema violations."""

from __future__ import annotations

from typing import Any

from partitur.errors import InvalidInput

ACTIONS = {
    "unplanned_events": ("allow", "flag", "block"),
    "unplanned_properties": ("allow", "flag", "omit", "block"),
    "violations": ("allow", "flag", "block"),
}
DEFAULT_POLICY = {
    "unplanned_events": "allow",
    "unplanned_properties": "allow",
    "violations": "flag",
}


def check_policy(policy: Any) -> dict[str, str]:
    if not isinstance(policy, dict):
        raise InvalidInput("'plan_policy' must be an object")
    out = dict(DEFAULT_POLICY)
    for key, value in policy.items():
        if key not in ACTIONS:
            raise InvalidInput(
                f"unknown plan policy '{key}'; known: {', '.join(ACTIONS)}"
            )
        if value not in ACTIONS[key]:
            raise InvalidInput(f"plan policy '{key}' must be one of {', '.join(ACTIONS[key])}")
        out[key] = value
    return out
