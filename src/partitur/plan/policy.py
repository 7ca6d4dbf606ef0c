"""What happens to events that the tracking plan does not expect, per rule.

==========================  ================================  ========
rule                        actions                           default
==========================  ================================  ========
``unplanned_events``        ``allow``, ``flag``, ``block``    allow
``unplanned_properties``    ``allow``, ``flag``, ``omit``,    allow
                            ``block``
``violations``              ``allow``, ``flag``, ``block``    flag
==========================  ================================  ========

Precedence, per rule: the source's ``plan_policy``, then the plan's own ``policy`` section, then
:data:`DEFAULT_POLICY`.
"""

from __future__ import annotations

from collections.abc import Mapping
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
# The action as recorded on a violation: what was done.
DONE = {"flag": "flagged", "omit": "omitted", "block": "blocked"}


def check_policy(policy: Any) -> dict[str, str]:
    """The rules ``policy`` sets, checked (rules it leaves out fall back, see the module)."""
    if not isinstance(policy, dict):
        raise InvalidInput("'plan_policy' must be an object")
    out: dict[str, str] = {}
    for key, value in policy.items():
        if key not in ACTIONS:
            raise InvalidInput(f"unknown plan policy '{key}'; known: {', '.join(ACTIONS)}")
        if value not in ACTIONS[key]:
            raise InvalidInput(f"plan policy '{key}' must be one of {', '.join(ACTIONS[key])}")
        out[key] = value
    return out


def effective_policy(
    source_policy: Mapping[str, Any], plan_policy: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Per rule: the source's choice, else the plan's, else the default. A value that is not a
    known action (a store edited by hand) falls back too."""
    out = dict(DEFAULT_POLICY)
    for layer in (plan_policy or {}, source_policy):
        for rule, action in layer.items():
            if rule in ACTIONS and action in ACTIONS[rule]:
                out[rule] = action
    return out
