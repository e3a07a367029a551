"""503 instead of hangs: while the database monitor (ledger/availability.py) says PostgreSQL
is unavailable, every route but the service-status ones is answered at once with 503
problem+json and ``Retry-After``; a request already running when the database goes away is
answered 503 as soon as the monitor notices (within about a second), instead of waiting on a
connection that will not answer (a frozen server answers nothing, so no server-side timeout
can fire). Writes are refused before they start; a write that was already running may still
commit if the database comes back — a client that sent an Idempotency-Key retries with it and
gets that one outcome (see README "Delivery guarantee").

A pure ASGI middleware, installed outermost."""

from __future__ import annotations

import asyncio
from typing import Any

from api.errors import RETRY_AFTER, is_unavailable, unavailable_problem
from api.responses import ProblemResponse

# Service status answers for itself (degraded/not ready), even during an outage.
EXEMPT = ("/health", "/ready", "/metrics", "/docs", "/redoc", "/openapi.json")
WATCH_EVERY = 0.1  # seconds between looks at the monitor while a request runs


class OutageGuard:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        monitor = getattr(scope["app"].state, "db_monitor", None)
        if monitor is None:
            await self.app(scope, receive, send)
            return
        if not monitor.available:
            await _refuse(scope, receive, send)
            return
        started = answered = False

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if answered:
                return  # already answered 503: drop what the abandoned handler sends
            if message["type"] == "http.response.start":
                started = True
                if message["status"] == 503 and not any(
                        k.lower() == b"retry-after" for k, _ in message.get("headers", ())):
                    message = {**message, "headers": [*message.get("headers", ()),
                                                      (b"retry-after", RETRY_AFTER.encode())]}
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        while True:
            done, _ = await asyncio.wait({task}, timeout=WATCH_EVERY)
            if done:
                try:
                    task.result()
                except Exception as exc:
                    # a database error wrapped in another type: 503, not a traceback
                    if not started and is_unavailable(exc):
                        started = answered = True
                        await _refuse(scope, receive, send)
                        return
                    raise
                return
            if not monitor.available and not started:
                answered = True
                task.cancel()  # a worker thread it waits on finishes (or not) on its own
                task.add_done_callback(_consume)
                started = True
                await _refuse(scope, receive, send, abandoned=True)
                return


def _consume(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()


async def _refuse(scope: dict[str, Any], receive: Any, send: Any,
                  abandoned: bool = False) -> None:
    body, headers = unavailable_problem(scope["path"], abandoned=abandoned)
    await ProblemResponse(body, status_code=503, headers=headers)(scope, receive, send)
