"""The FastAPI application: built once per process in the lifespan, routes are thin."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import Depends, FastAPI

from api import (
    access_log,
    errors,
    openapi,
    outage,
    parameters,
    read_access,
    ui,
)
from api.client_address import parse_trusted
from api.deps import PositionCookie, authorize
from api.responses import OrjsonResponse
from api.routes import (
    admin,
    audit,
    codes,
    commands,
    disputes,
    explain,
    fhir,
    problems,
    queries,
    replay,
    reporting,
    service,
    x12,
)
from ledger.application.idempotency import IdempotencyStore, new_pool
from ledger.application.service import LedgerApplication
from ledger.auth.throttle import FailureLimiter
from ledger.auth.tokens import AuthStore
from ledger.availability import DatabaseMonitor
from ledger.config import Settings, get_settings
from ledger.persistence.database import (
    app_url,
    apply_connection_options,
    configure_client,
    connection_options,
    database_url,
    eventsourcing_env,
)
from ledger.projections.runner import start_in_process
from ledger.projections.waiting import ProjectionWaiter
from ledger.replicas import ReadReplicas, parse_urls

log = logging.getLogger(__name__)

DESCRIPTION = """
Event-sourced claims ledger for medical coding and billing.

* **Commands** (POST) record events on an encounter. Responses carry the new version as
  `ETag` and the log position as `X-Log-Position`. Send `If-Match: "<version>"` to refuse
  stale writes (412); send `Idempotency-Key` to make retries safe.
* **Reads** replay the encounter (`/encounters/...`, always current, with `as_of_version` /
  `as_of` time travel) or query read models built by projections.
* Every refusal is `application/problem+json` (RFC 9457) naming the field and the rule.
* Money is a JSON string with two decimals (`"180.00"`), never a number.
"""


class _Housekeeping:
    """Every ``interval`` seconds: forget expired Idempotency-Keys and commit tokens older
    than two days (a token is needed only until its save's outcome is known)."""

    def __init__(self, idempotency: IdempotencyStore, ledger: LedgerApplication,
                 interval: float = 600.0) -> None:
        self.idempotency, self.ledger, self.interval = idempotency, ledger, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="housekeeping", daemon=True)

    def start(self) -> _Housekeeping:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.idempotency.purge_expired()
                self.ledger.recorder.purge_commit_tokens()  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - next round; an outage is logged elsewhere
                log.debug("housekeeping skipped (%s)", type(exc).__name__)


def _replica_reader(app: FastAPI, settings: Settings) -> Callable[[str], LedgerApplication]:
    """How a read replica's read-only event store is made (replay reads, ledger.replicas):
    the primary's code set and edit tables, no writer, no sealer."""

    def make(url: str) -> LedgerApplication:
        own = settings.model_copy(update={"database_url": url})
        primary = app.state.ledger
        reader = LedgerApplication(env=eventsourcing_env(url, own), code_set=primary.code_set,
                                   edit_tables=primary.edit_tables,
                                   snapshot_interval=settings.snapshot_interval,
                                   appeal_window_days=settings.appeal_window_days, seal=False)
        apply_connection_options(reader.recorder.datastore.pool, own)
        return reader

    return make


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if settings.tenants:  # several organizations, a database each (api/tenants.py)
        from api.tenants import TenantRouter

        return TenantRouter(settings, create_app)  # type: ignore[return-value]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_client(settings)
        url = database_url(settings)
        app.state.settings = settings
        app.state.database_url = url
        app.state.ledger = LedgerApplication(
            env=eventsourcing_env(url, settings),
            snapshot_interval=settings.snapshot_interval,
            appeal_window_days=settings.appeal_window_days,
            group_commit=settings.group_commit,
            group_commit_window=settings.group_commit_window_ms / 1000,
            group_commit_max_batch=settings.group_commit_max_batch,
            group_commit_writers=settings.group_commit_writers,
        )
        apply_connection_options(app.state.ledger.recorder.datastore.pool, settings)
        app.state.pool = new_pool(app_url(url, settings),
                                  max_size=settings.pool_size + settings.max_overflow,
                                  timeout=settings.pool_timeout,
                                  options=connection_options(settings))
        app.state.auth = AuthStore(app.state.pool, cache_seconds=settings.token_cache_seconds)
        app.state.auth_failures = FailureLimiter(settings.auth_failure_limit, 60.0)
        app.state.trusted_proxies = parse_trusted(settings.trusted_proxies)
        app.state.idempotency = IdempotencyStore(
            app.state.pool, retention=timedelta(hours=settings.idempotency_retention_hours),
            lease=timedelta(seconds=settings.idempotency_lease_seconds))
        app.state.sealer = app.state.ledger.sealer  # a signed checkpoint per committed batch
        app.state.projection_waiter = ProjectionWaiter(url)
        app.state.read_replicas = ReadReplicas(
            [app_url(u, settings) for u in parse_urls(settings.read_database_url)],
            max_size=settings.pool_size + settings.max_overflow, timeout=settings.pool_timeout,
            options=connection_options(settings), reader=_replica_reader(app, settings))
        app.state.projection_runner = None
        if settings.projections_in_process:
            app.state.projection_runner = start_in_process(
                eventsourcing_env(url, settings), settings)
        monitor = app.state.db_monitor = DatabaseMonitor(url)
        monitor.on_recovery(app.state.idempotency.retry_releases)
        if app.state.projection_runner is not None:
            monitor.on_recovery(app.state.projection_runner.wake)
        monitor.start()
        housekeeping = _Housekeeping(app.state.idempotency, app.state.ledger).start()
        try:
            yield
        finally:
            housekeeping.close()
            monitor.close()
            if app.state.projection_runner is not None:
                app.state.projection_runner.close()
            app.state.projection_waiter.close()
            app.state.read_replicas.close()
            app.state.ledger.close()
            app.state.pool.close()

    app = FastAPI(
        title="Claims ledger",
        version="0.1.0",
        description=DESCRIPTION,
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
        dependencies=[Depends(authorize)],
        docs_url=None,  # served by api.ui with vendored assets (no CDN)
        redoc_url=None,
    )
    errors.install(app)
    errors.install_unexpected_errors(app)  # innermost: a 500 is answered here, logged without PHI
    access_log.install(app)
    read_access.install(app)  # every read recorded in the read-access log (fails closed)
    openapi.install(app)
    app.include_router(commands.router)
    app.include_router(disputes.router)
    app.include_router(replay.router)
    app.include_router(queries.router)
    app.include_router(reporting.router)  # periods and reconciliation (issue 19)
    app.include_router(admin.router)
    app.include_router(audit.router)  # GET /audit/verify, /audit/sealing, /audit/access
    app.include_router(codes.router)
    app.include_router(x12.router)
    app.include_router(explain.router)  # GET /encounters/{id}/explain
    ui.install(app)  # the workbench under /ui/, / -> /ui/, /docs and /redoc offline
    app.include_router(fhir.router)  # FHIR R4 reads under /fhir (issue 18)
    app.include_router(problems.router)  # GET /problems/{rule}: what a refusal's rule means
    app.include_router(service.router)  # GET /health, /ready, /metrics (issue 17)

    app.add_middleware(queries.ReadFromHeader)
    app.add_middleware(PositionCookie)  # a write's X-Log-Position -> ledger_min_position
    app.add_middleware(parameters.CleanParameters)  # before any of it reads a parameter
    app.add_middleware(outage.OutageGuard)  # last, so outermost: 503 at once in an outage
    # (only rewrites /fhir error bodies as OperationOutcome, the outage 503 included)
    app.add_middleware(fhir.FhirErrors)
    return app
