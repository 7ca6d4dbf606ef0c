"""The demo: an online music shop's customers, simulated, sent through the real APIs of a
Partitur server (``partitur demo``, ``make demo``; ``partitur serve --demo`` is the same).

- :mod:`.population`: the pure, seeded simulation (people, devices, sessions, carts, orders);
- :mod:`.workspace`: the fixed keys and the tracking plan;
- :mod:`.journeys`: the journeys and templates, applied through the management API;
- :mod:`.sender`: the HTTP client; :mod:`.run`: the phases; :mod:`.report`: what is printed;
- :mod:`.cli`: the command, with the server in the same process.
"""

from __future__ import annotations

from partitur.demo.population import Outgoing, Person, Population
from partitur.demo.run import Demo, Options
from partitur.demo.sender import Api, loopback_url
from partitur.demo.workspace import (
    ADMIN_TOKEN,
    PLAN_POLICY,
    WRITE_KEYS,
    Workspace,
    ensure_workspace,
)

__all__ = [
    "ADMIN_TOKEN",
    "PLAN_POLICY",
    "WRITE_KEYS",
    "Api",
    "Demo",
    "Options",
    "Outgoing",
    "Person",
    "Population",
    "Workspace",
    "ensure_workspace",
    "loopback_url",
]
