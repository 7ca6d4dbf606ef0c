"""The tracking plan: what each event should look like, who produces and who consumes it.

``model`` is the document (pydantic) and ``parse`` reads and checks it; ``enforce`` is the pure
check of one message and ``policy`` the per-source actions; ``store`` holds the SQL, ``service``
the wiring with its cache of compiled versions, ``lineage`` who sends and who uses what;
``routes`` and ``cli`` are the edges.
"""

from partitur.plan.model import TrackingPlan
from partitur.plan.parse import load_yaml, parse_plan
from partitur.plan.service import Applied, PlanService

__all__ = ["Applied", "PlanService", "TrackingPlan", "load_yaml", "parse_plan"]
