"""The ASGI application: the tracking API, the management API and the background workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from partitur import api
from partitur.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PartiturError,
    PayloadTooLarge,
    RateLimited,
    StorageError,
    Unauthorized,
)
from partitur.ingest.routes import routes as ingest_routes
from partitur.services import Services, build_services, dedup_cutoff_us
from partitur.settings import Settings
from partitur.worker import deadletter

log = logging.getLogger("partitur")

_STATUS: list[tuple[type[PartiturError], int]] = [
    (PayloadTooLarge, 413),
    (InvalidInput, 400),
    (NotFound, 404),
    (Conflict, 409),
    (Unauthorized, 401),
    (RateLimited, 429),
    (StorageError, 503),
]


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> Any:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def _cors(request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    if origin and request.url.path.startswith("/v1/"):
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


async def _partitur_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PartiturError)
    status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
    headers = _cors(request)
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc.message)
    return api.json(error_body(exc.code, exc.message, exc.details), status, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return api.json(error_body(code, str(exc.detail)), exc.status_code, _cors(request))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return api.json(
        error_body("internal", "internal error; the server log has the details"), 500,
        _cors(request),
    )


async def health(request: Request) -> Response:
    services = api.services(request)

    def read() -> tuple[int, int]:
        with services.db.read() as tx:
            return int(services.events.backlog(tx)), deadletter.count(tx)

    backlog, failed = await asyncio.to_thread(read)
    body: dict[str, Any] = {"status": "ok", "backlog": backlog, "failed_events": failed,
                            "store": services.db.dialect}
    processes = services.extra.get("worker_processes")
    if processes is not None:
        body["worker_processes"] = processes.status()
    return api.json(body)


def all_routes() -> list[BaseRoute]:
    from partitur.analytics.routes import routes as analytics_routes
    from partitur.auth.routes import routes as auth_routes
    from partitur.channels.routes import routes as channel_routes
    from partitur.journeys.routes import routes as journey_routes
    from partitur.plan.routes import routes as plan_routes
    from partitur.privacy.routes import routes as privacy_routes
    from partitur.profiles.routes import routes as profile_routes
    from partitur.segments.routes import routes as segment_routes
    from partitur.templates.routes import routes as template_routes
    from partitur.worker.routes import routes as worker_routes

    return [
        Route("/health", health, methods=["GET"]),
        *ingest_routes(),
        *auth_routes(),
        *plan_routes(),
        *profile_routes(),
        *privacy_routes(),
        *template_routes(),
        *channel_routes(),
        *segment_routes(),
        *journey_routes(),
        *analytics_routes(),
        *worker_routes,
    ]


async def _maintenance(services: Services) -> None:
    """Housekeeping every minute: forget old messageIds, create time partitions ahead."""
    while True:
        await asyncio.sleep(60)
        try:
            def run() -> None:
                with services.db.transaction() as tx:
                    services.events.forget_message_ids(tx, dedup_cutoff_us(services))
                services.events.ensure_partitions(services.clock.now())

            await asyncio.to_thread(run)
        except Exception:
            log.exception("maintenance failed; will retry")


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    start_workers: bool | None = None,
    serving: bool = False,
) -> Starlette:
    """Build the app. Pass ``services`` to share a store (tests); otherwise built from settings.
    ``serving``: for ``partitur serve``, whose defaults put the profile worker and the
    analytics projector in processes of their own (``worker_processes``,
    ``analytics_process``; the children read their settings from the data directory and the
    environment, as the server did). Otherwise only explicit settings start processes."""
    if services is None:
        if settings is None:
            raise ValueError("create_app needs settings or services")
        services = build_services(settings)
    svc = services
    run_workers = svc.settings.worker_enabled if start_workers is None else start_workers
    processes = None
    analytics_elsewhere = False
    if run_workers:
        from partitur.worker.processes import WorkerProcesses, plan

        children = plan(svc.settings, serving=serving)  # checks the settings
        if children:
            processes = WorkerProcesses(svc.settings, children)
            analytics_elsewhere = any(c.role == "analytics" for c in children)
        if any(c.role == "events" for c in children):
            run_workers = False

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from partitur.worker import ProfileWorker

        wake = svc.committer.on_commit
        if processes is not None:
            processes.start()

            def woken() -> None:  # this process's waiters and the worker processes
                if wake is not None:
                    wake()
                processes.nudge()

            svc.committer.on_commit = woken
        svc.committer.start()
        svc.extra["worker_processes"] = processes
        worker = ProfileWorker(svc) if run_workers else None
        if worker is not None:
            worker.start()
        svc.extra["worker"] = worker
        dispatcher = None
        if run_workers and svc.settings.dispatcher_enabled:
            from partitur.channels import Dispatcher

            dispatcher = Dispatcher(svc, transports=svc.extra.get("transports"))
            dispatcher.start()
        svc.extra["dispatcher"] = dispatcher
        segment_runner = None
        if run_workers:
            from partitur.segments import SegmentRunner

            segment_runner = SegmentRunner(svc)
            segment_runner.start()
        svc.extra["segment_runner"] = segment_runner
        journey_runner = None
        if run_workers:
            from partitur.journeys import JourneyRunner

            journey_runner = JourneyRunner(svc.extra["journeys"])
            journey_runner.start()
        svc.extra["journey_runner"] = journey_runner
        analytics = svc.extra["analytics"]
        if run_workers and svc.settings.analytics_enabled and not analytics_elsewhere:
            analytics.start()
        if svc.settings.analytics_enabled and start_workers is not False:
            analytics.warm()  # queries run in this process whoever writes the files
        housekeeping = asyncio.create_task(_maintenance(svc))
        try:
            yield
        finally:
            housekeeping.cancel()
            analytics.stop()
            if journey_runner is not None:
                journey_runner.stop()
            if segment_runner is not None:
                segment_runner.stop()
            if dispatcher is not None:
                dispatcher.stop()
            svc.committer.stop()
            if worker is not None:
                worker.stop()
            if processes is not None:
                processes.stop()
                svc.committer.on_commit = wake

    from partitur.journeys.clockroute import routes as clock_routes

    app = Starlette(
        routes=[*all_routes(), *clock_routes(svc)],
        lifespan=lifespan,
        exception_handlers={
            PartiturError: _partitur_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    app.state.services = svc
    return app
