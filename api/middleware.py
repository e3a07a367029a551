"""The one shape of the service's own ASGI middlewares: HTTP requests go through ``http``,
everything else (lifespan, websockets) passes straight on."""

from __future__ import annotations

from typing import Any


class HttpMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise NotImplementedError
