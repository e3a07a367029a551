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


class _InFlight:
    """One guarded request: its task, whether its answer has started, and whether the guard
    answered it (503) in its place."""

    __slots__ = ("task", "scope", "receive", "send", "started", "answered", "refusal")

    def __init__(self, task: Any, scope: Any, receive: Any, send: Any) -> None:
        self.task = task
        self.scope, self.receive, self.send = scope, receive, send
        self.started = self.answered = False
        self.refusal: asyncio.Future | None = None


class OutageGuard:
    """The request runs in its own task, unwrapped; ONE watcher task per event loop (alive
    while requests are in flight) looks at the monitor every WATCH_EVERY seconds and, in an
    outage, answers each running request that has not started its answer with 503 (from the
    watcher's own task, so a handler stuck on a frozen server cannot delay it) and cancels it.
    Before, every request had a task of its own and a timed wait on it (~20 us a request)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._loops: dict[Any, tuple[set[_InFlight], asyncio.Task]] = {}

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
        rec = _InFlight(asyncio.current_task(), scope, receive, send)

        async def guarded_send(message: dict[str, Any]) -> None:
            if rec.answered:
                return  # already answered 503: drop what the abandoned handler sends
            if message["type"] == "http.response.start":
                rec.started = True
                if message["status"] == 503 and not any(
                        k.lower() == b"retry-after" for k, _ in message.get("headers", ())):
                    message = {**message, "headers": [*message.get("headers", ()),
                                                      (b"retry-after", RETRY_AFTER.encode())]}
            await send(message)

        running = self._running(monitor)
        running.add(rec)
        try:
            await self.app(scope, receive, guarded_send)
        except asyncio.CancelledError:
            if not rec.answered:
                raise
            rec.task.uncancel()  # our own cancel: the request was answered 503
        except Exception as exc:
            if rec.answered:
                pass  # answered 503 already; what the handler raised afterwards is moot
            elif not rec.started and is_unavailable(exc):
                # a database error wrapped in another type: 503, not a traceback
                rec.started = rec.answered = True
                await _refuse(scope, receive, send)
                return
            else:
                raise
        finally:
            running.discard(rec)
        if rec.refusal is not None:
            await rec.refusal  # the 503 is complete before this request ends

    def _running(self, monitor: Any) -> set[_InFlight]:
        """This loop's requests in flight, with its watcher started if it is not running."""
        loop = asyncio.get_running_loop()
        entry = self._loops.get(loop)
        if entry is None or entry[1].done():
            running: set[_InFlight] = entry[0] if entry is not None else set()
            self._loops = {k: v for k, v in self._loops.items() if not v[1].done()}
            self._loops[loop] = (running, loop.create_task(self._watch(monitor, running)))
            return running
        return entry[0]

    @staticmethod
    async def _watch(monitor: Any, running: set[_InFlight]) -> None:
        while running:
            await asyncio.sleep(WATCH_EVERY)
            if monitor.available:
                continue
            for rec in list(running):
                if rec.started or rec.answered:
                    continue
                rec.started = rec.answered = True
                rec.refusal = asyncio.ensure_future(
                    _refuse(rec.scope, rec.receive, rec.send, abandoned=True))
                rec.task.cancel()  # a worker thread it waits on finishes (or not) on its own


async def _refuse(scope: dict[str, Any], receive: Any, send: Any,
                  abandoned: bool = False) -> None:
    body, headers = unavailable_problem(scope["path"], abandoned=abandoned)
    await ProblemResponse(body, status_code=503, headers=headers)(scope, receive, send)
