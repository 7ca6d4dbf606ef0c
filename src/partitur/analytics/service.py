"""The analytics service of one running Partitur (``services.extra["analytics"]``): the
projector, and the pool that runs queries apart from ingestion and the journey engine."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from partitur.analytics.engine import QueryEngine
from partitur.analytics.hook import AnalyticsHook, record_erasure
from partitur.analytics.projector import Projector
from partitur.analytics.store import ParquetStore

if TYPE_CHECKING:
    from partitur.services import Services

T = TypeVar("T")
log = logging.getLogger("partitur.analytics")


class AnalyticsService:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.hook = AnalyticsHook(services.db)
        self._projector: Projector | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._engine: QueryEngine | None = None
        self._engine_lock = threading.Lock()
        self._warm: threading.Thread | None = None
        self.running = False

    @property
    def engine(self) -> QueryEngine:
        with self._engine_lock:  # the warm-up thread and the first query may race
            if self._engine is None:
                self._engine = QueryEngine(self.services.settings)
            return self._engine

    @property
    def projector(self) -> Projector:
        """This process's projector (started by ``serve``/``worker``; otherwise used on
        demand, e.g. by erasure and ``partitur analytics flush``)."""
        if self._projector is None:
            self._projector = Projector(self.services)
        return self._projector

    def start(self) -> None:
        self.projector.start()
        self.running = True

    def warm(self) -> threading.Thread:
        """In the background, at start: open DuckDB and read the profile ids of the files
        there are (the funnel's id check, :mod:`.idhash`), so that the first query after a
        start does not pay for them (0.4 s per 10M events). Later files are read by the
        queries that first see them, a few at a time."""

        def run() -> None:
            try:
                engine = self.engine
                if not engine.store.manifest().files:
                    return
                with engine.cursor() as cur:
                    engine.distinct_ids(cur, engine.source())
            except Exception:  # a warm-up is an optimisation: the first query does it anyway
                log.warning("analytics warm-up failed", exc_info=True)

        thread = threading.Thread(target=run, name="partitur-analytics-warm", daemon=True)
        thread.start()
        self._warm = thread
        return thread

    def stop(self) -> None:
        if self._warm is not None:  # it uses the engine closed below
            self._warm.join(timeout=60)
            self._warm = None
        if self._projector is not None:
            if self.running:
                self._projector.stop()
            else:
                self._projector.close()
        self.running = False
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=max(1, self.services.settings.analytics_concurrency),
                thread_name_prefix="partitur-analytics-query",
            )
        return self._pool

    async def run(self, fn: Callable[[], T]) -> T:
        """Run a query in the analytics pool (never the event loop's default pool, which
        ingestion and the API use), so a long query only ever waits for other queries."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, fn)

    def status(self) -> dict[str, Any]:
        """The Parquet table's files and rows, and what still waits for the projector."""
        from partitur.clock import iso

        store = ParquetStore(self.services.settings.analytics_path)
        manifest = store.manifest()
        with self.services.db.read() as tx:
            row = tx.one("SELECT COUNT(*), MIN(seq) FROM analytics_outbox")
            erasures = tx.one("SELECT COUNT(*) FROM analytics_erasures")
        newest = max((f.max_seq for f in manifest.files), default=None)
        return {
            "directory": str(store.root),
            "manifest_version": manifest.version,
            "files": len(manifest.files),
            "rows": manifest.rows,
            "bytes": sum(f.bytes for f in manifest.files),
            "newest_seq": newest,
            "newest_file_at": iso(max(f.at for f in manifest.files)) if manifest.files
            else None,
            "waiting_events": int(row[0]) if row else 0,
            "pending_erasures": int(erasures[0]) if erasures else 0,
            "projector_running": self.running,
        }

    # -- queries (each runs in the analytics pool, see :meth:`run`) -------------------------
    def funnel(self, doc: Any) -> dict[str, Any]:
        from partitur.analytics.funnel_model import parse_funnel
        from partitur.analytics.funnel_report import report

        return report(self.engine, parse_funnel(doc, self.services.clock.now_us()))

    def funnel_people(self, doc: Any) -> dict[str, Any]:
        from partitur.analytics.funnel_model import parse_funnel
        from partitur.analytics.funnel_report import people

        query = parse_funnel(doc, self.services.clock.now_us())
        return people(self.engine, query, doc.get("people") if isinstance(doc, dict) else None)

    def time_to_convert(self, doc: Any) -> dict[str, Any]:
        from partitur.analytics.funnel_model import parse_funnel
        from partitur.analytics.funnel_report import time_to_convert

        query = parse_funnel(doc, self.services.clock.now_us())
        return time_to_convert(self.engine, query, doc)

    def paths(self, doc: Any) -> dict[str, Any]:
        from partitur.analytics.paths import parse_paths, paths

        return paths(self.engine, parse_paths(doc, self.services.clock.now_us()))

    def retention(self, doc: Any) -> dict[str, Any]:
        from partitur.analytics.retention import parse_retention, retention

        return retention(self.engine, parse_retention(doc, self.services.clock.now_us()))

    def kpi(self, doc: Any) -> dict[str, Any]:
        from partitur.analytics.kpi import kpi, parse_kpi

        return kpi(self.engine, parse_kpi(doc, self.services.clock.now_us()))

    def journey(self, doc: Any) -> dict[str, Any]:
        from partitur.analytics.dropoff import dropoff

        return dropoff(self.services, doc)

    def experiment(self, doc: Any) -> dict[str, Any]:
        from partitur.analytics.experiments import experiments

        return experiments(self.services, doc)

    def people(self, doc: Any) -> dict[str, Any]:
        from partitur.analytics.people import page

        return page(self, doc)

    def save_people(self, doc: Any) -> dict[str, Any]:
        from partitur.analytics.people import save

        return save(self, doc)

    def erase(self, profile_ids: Sequence[str]) -> None:
        """Record and apply an erasure of ``profile_ids`` from the Parquet files."""
        with self.services.db.transaction() as tx:
            record_erasure(tx, profile_ids, (), self.services.clock.now_us())
        self.projector.apply_erasures()


def erase_profiles(services: Services, profile_ids: Sequence[str]) -> None:
    """Remove ``profile_ids`` from the analytics Parquet files (rewriting the files that hold
    them); privacy's erasure calls it."""
    service: Any = services.extra.get("analytics")
    if service is None:
        service = AnalyticsService(services)
    service.erase(profile_ids)


def apply_erasures(services: Services) -> None:
    """Apply erasures privacy recorded in its transaction (:func:`record_erasure`)."""
    service: Any = services.extra.get("analytics")
    if service is None:
        service = AnalyticsService(services)
    service.projector.apply_erasures()
