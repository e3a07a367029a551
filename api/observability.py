"""The service's own pages: ``GET /metrics`` (and ``/problems/{rule}``, api/problems.py).

``GET /metrics``: Prometheus exposition of ``ledger.metrics`` (no token: counts and route
templates only; keep the port off the public network or scrape through a proxy)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ledger.metrics import DatabaseCollector, render
from ledger.projections.queries import projection_positions


def install(app: FastAPI) -> None:
    from api import problems

    app.include_router(problems.router)

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics",
             response_class=Response, include_in_schema=True,
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
