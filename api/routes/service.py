"""The service's own routes: ``GET /health`` (is the database there), ``GET /ready`` (may this
process take traffic) and ``GET /metrics`` (Prometheus exposition of ``ledger.metrics``; no
token: counts and route templates only — keep the port off the public network or scrape
through a proxy). ``/problems/{rule}`` is ``api/routes/problems.py``."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.errors import RETRY_AFTER
from api.responses import OrjsonResponse
from ledger.availability import DatabaseMonitor
from ledger.metrics import DatabaseCollector, render
from ledger.projections.queries import projection_positions

router = APIRouter(tags=["service"])


@router.get("/health", summary="Service and database status")
def health(request: Request) -> OrjsonResponse:
    state = request.app.state
    monitor: DatabaseMonitor = state.db_monitor
    if not monitor.available:  # answered from memory: no wait on a database that is gone
        return OrjsonResponse({"status": "degraded", "database": {
            "status": "unavailable", "reason": monitor.reason}},
            status_code=503, headers={"Retry-After": RETRY_AFTER})
    try:
        with state.pool.connection() as conn:
            server_version = conn.execute("SHOW server_version").fetchone()[0]
            position = conn.execute(
                "SELECT COALESCE(MAX(notification_id), 0) FROM ledger_events").fetchone()[0]
    except psycopg.Error:
        return OrjsonResponse({"status": "degraded", "database": {
            "status": "unavailable"}}, status_code=503,
            headers={"Retry-After": RETRY_AFTER})
    settings = state.settings
    return OrjsonResponse({
        "status": "ok",
        "database": {"status": "ok", "server_version": server_version,
                     "embedded": settings.embedded or not settings.database_url,
                     "log_position": position},
    })


@router.get("/ready", summary="Ready to serve: database reachable, migrations applied, "
            "projections within their lag budget and none failing")
def ready(request: Request) -> OrjsonResponse:
    from ledger.readiness import readiness

    state = request.app.state
    body = readiness(state.db_monitor, state.pool, state.settings, getattr(state, "sealer", None))
    return OrjsonResponse(body, status_code=200 if body["ready"] else 503,
                          headers={} if body["ready"] else {"Retry-After": RETRY_AFTER})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            include_in_schema=True,
            responses={200: {"content": {"text/plain": {}},
                             "description": "Prometheus text exposition format"}})
async def metrics(request: Request) -> Response:
    state = request.app.state
    ledger = getattr(state, "ledger", None)
    recorder = getattr(ledger, "recorder", None)
    events_pool = getattr(getattr(recorder, "datastore", None), "pool", None)
    collector = DatabaseCollector(state.pool.connection,
                                  {"api": state.pool, "events": events_pool},
                                  projection_positions)
    body, content_type = await run_in_threadpool(render, collector)
    return Response(body, media_type=content_type)
