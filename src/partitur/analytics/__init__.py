"""Analytics ("Learn"): processed events projected to Parquet and queried with DuckDB.

The profile worker's batch hook (:mod:`.hook`) records each processed event with its resolved
profile in the batch's transaction; the projector (:mod:`.projector`) writes them to Parquet
files in its own thread, exactly once, and compacts them; queries (funnels, paths, retention,
KPI series with anomalies, journey drop-off, experiments) run on DuckDB over those files in a
pool of their own. See docs/analytics.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from partitur.analytics.columns import COLUMNS, SCHEMA
from partitur.analytics.hook import record_erasure, record_merges
from partitur.analytics.projector import Projector
from partitur.analytics.service import AnalyticsService, apply_erasures, erase_profiles
from partitur.analytics.store import Manifest, ParquetStore

if TYPE_CHECKING:
    from partitur.services import Services

__all__ = [
    "COLUMNS",
    "SCHEMA",
    "AnalyticsService",
    "Manifest",
    "ParquetStore",
    "Projector",
    "apply_erasures",
    "erase_profiles",
    "install",
    "record_erasure",
    "record_merges",
]


def install(services: Services) -> AnalyticsService:
    """Wire analytics into ``services``: the service in ``extra["analytics"]`` and the batch
    hook after the others (it only records what the batch processed)."""
    service = AnalyticsService(services)
    services.extra["analytics"] = service
    services.batch_hooks.append(service.hook)
    return service
