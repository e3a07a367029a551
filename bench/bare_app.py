"""The baseline of the http benchmark: a competently written bare FastAPI endpoint — async,
psycopg async pool, orjson — doing one raw INSERT + COMMIT per request. Not part of the ledger."""

from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from psycopg_pool import AsyncConnectionPool

STATE = os.urandom(337)


def create_app() -> FastAPI:
    url = os.environ["BENCH_DATABASE_URL"]
    # BENCH_BARE_POOL_MIN / _MAX_IDLE: with several workers of both servers on one database
    # (100 connections), idle connections are given back while the ledger is measured
    pool = AsyncConnectionPool(url, min_size=int(os.environ.get("BENCH_BARE_POOL_MIN", "8")),
                               max_size=64, open=False, kwargs={"autocommit": True},
                               max_idle=float(os.environ.get("BENCH_BARE_POOL_MAX_IDLE", "600")))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await pool.open()
        async with pool.connection() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS bench_http (stream uuid NOT NULL,"
                               " version bigint NOT NULL, topic text, state bytea,"
                               " id bigserial UNIQUE, PRIMARY KEY (stream, version))")
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/events")
    async def append(request: Request) -> Response:
        body = orjson.loads(await request.body())
        async with pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO bench_http (stream, version, topic, state) VALUES (%s, 1, %s, %s)"
                " RETURNING id", (uuid.uuid4(), str(body.get("topic", "x")), STATE))
            row = await cur.fetchone()
        return Response(orjson.dumps({"position": row[0]}), media_type="application/json")

    return app
