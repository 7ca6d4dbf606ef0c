"""The tracking plan: what each event should look like, who produces and who consumes it."""

from partitur.plan.service import PlanService

__all__ = ["PlanService"]
