"""The FastAPI application: built once per process in the lifespan, routes are thin."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI

from api.responses import OrjsonResponse

from ledger.application import LedgerApplication
from ledger.config import Settings, get_settings
from ledger.database import database_url, eventsourcing_env

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url(settings)
        app.state.settings = settings
        app.state.database_url = url
        app.state.ledger = LedgerApplication(
            env=eventsourcing_env(url, settings),
            snapshot_interval=settings.snapshot_interval,
            appeal_window_days=settings.appeal_window_days,
        )
        try:
            yield
        finally:
            app.state.ledger.close()

    app = FastAPI(
        title="Claims ledger",
        version="0.1.0",
        description="Event-sourced claims ledger for medical coding and billing.",
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
    )

    @app.get("/health", tags=["service"], summary="Service and database status")
    def health() -> OrjsonResponse:
        url = app.state.database_url
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                server_version = conn.execute("SHOW server_version").fetchone()[0]
                position = conn.execute(
                    "SELECT COALESCE(MAX(notification_id), 0) FROM ledger_events").fetchone()[0]
        except psycopg.Error as exc:
            log.warning("health: database unavailable: %s", type(exc).__name__)
            return OrjsonResponse(
                {"status": "degraded", "database": {"status": "unavailable"}}, status_code=503)
        return OrjsonResponse({
            "status": "ok",
            "database": {"status": "ok", "server_version": server_version,
                         "embedded": app.state.settings.embedded or not app.state.settings.database_url,
                         "log_position": position},
        })

    return app
