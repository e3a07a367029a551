"""Several organizations served by one service, each in a database of its own (issue 20).

``LEDGER_TENANTS`` (JSON) maps a tenant id to its database URL, or to an object of settings
that differ for it (``database_url`` required; e.g. ``read_database_url``, ``cipher_key``)::

    LEDGER_TENANTS='{"clinic-a": "postgresql://ledger@db/clinic_a",
                     "clinic-b": {"database_url": "postgresql://ledger@db2/clinic_b",
                                  "read_database_url": "postgresql://ledger@db2-r/clinic_b"}}'

Each tenant is the whole application (``api.main.create_app``) on its own database: its own
pools, group-commit writer, projection runner, per-batch checkpoint sealing and log identity
(migration 0099, so its checkpoints are exported under their own directory), users and
tokens, Idempotency-Keys, read replicas and availability monitor. Nothing is shared but the
process, the code sets and the metrics registry.

Which tenant answers a request:

* ``/tenants/{id}/...``: that tenant (the prefix is the request's root path). A bearer token
  that belongs to another tenant is answered 404, exactly like a tenant that does not exist.
* any other path with a bearer token: the tenant whose database issued the token (asked in
  order, each answer cached like a token: ``LEDGER_TOKEN_CACHE_SECONDS``). So a token of
  tenant A never reaches tenant B's data: an encounter of B is 404 for it (it is looked up in
  A's database). A token no tenant knows is answered 401 by the first tenant (its failure
  limiter counts it).
* ``/health`` and ``/ready`` without a token: every tenant's answer, 200 only if all are.
* ``/openapi.json``, ``/docs``, ``/redoc``, ``/problems/...``: the same for every tenant.
* anything else without a token and without the prefix: 404 naming the prefix.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from ledger.config import Settings

TENANT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
PREFIX = "/tenants/"
SHARED = ("/openapi.json", "/docs", "/redoc", "/problems/")


def tenant_settings(settings: Settings) -> dict[str, Settings]:
    """Each tenant's settings: the service's, with the tenant's own values over them."""
    out: dict[str, Settings] = {}
    for tenant, value in settings.tenants.items():
        if not TENANT_ID_RE.match(tenant):
            raise ValueError(f"LEDGER_TENANTS: tenant id {tenant!r}: 1-40 lower-case letters, "
                             "digits or '-' (it is a path segment; never PHI)")
        own = {"database_url": value} if isinstance(value, str) else dict(value)
        unknown = set(own) - set(Settings.model_fields) | ({"tenants"} & set(own))
        if unknown:
            raise ValueError(f"LEDGER_TENANTS[{tenant}]: unknown settings {sorted(unknown)}")
        if not own.get("database_url"):
            raise ValueError(f"LEDGER_TENANTS[{tenant}]: database_url is required")
        checked = Settings.model_validate({**settings.model_dump(), **own})  # types, bounds
        out[tenant] = settings.model_copy(
            update={**{k: getattr(checked, k) for k in own}, "tenants": {}})
    return out


def _bearer(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


class TenantRouter:
    """The ASGI application of a multi-tenant service: one child app per tenant."""

    def __init__(self, settings: Settings, create_app: Callable[[Settings], Any]) -> None:
        """``create_app``: builds one tenant's application (``api.main.create_app``)."""
        self.settings = tenant_settings(settings)
        self.apps = {t: create_app(s) for t, s in self.settings.items()}
        self.first = next(iter(self.apps))
        self.cache_seconds = settings.token_cache_seconds
        self._owners: dict[bytes, tuple[str, float]] = {}  # sha256(token) -> tenant, until
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] not in ("http", "websocket"):
            return
        path: str = scope["path"]
        token = _bearer(scope)
        if path.startswith(PREFIX):
            tenant, _, rest = path[len(PREFIX):].partition("/")
            if tenant not in self.apps or (token and await self._foreign(tenant, token)):
                await _problem(send, 404, "tenant: not found", "tenant.exists")
                return
            scope = {**scope, "root_path": scope.get("root_path", "") + PREFIX + tenant}
            await self.apps[tenant](scope, receive, send)
            return
        if token:
            tenant = await self._owner(token) or self.first
            await self.apps[tenant](scope, receive, send)
            return
        if path in ("/health", "/ready"):
            await self._every(scope, send)
            return
        if path.startswith(SHARED):
            await self.apps[self.first](scope, receive, send)
            return
        await _problem(send, 404, f"this service serves several organizations: "
                       f"{PREFIX}{{tenant}}{path} or a bearer token", "tenant.required")

    # ------------------------------------------------------------------ which tenant
    def _verifies(self, tenant: str, token: str) -> bool:
        state = self.apps[tenant].state
        store = getattr(state, "auth", None)
        return store is not None and (store.cached(token) or store.authenticate(token)) \
            is not None

    async def _owner(self, token: str) -> str | None:
        """The tenant whose database issued ``token`` (None: none did)."""
        key = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        with self._lock:
            known = self._owners.get(key)
        if known and known[1] > now:
            return known[0]
        for tenant in self.apps:
            if await run_in_threadpool(self._verifies, tenant, token):
                with self._lock:
                    if len(self._owners) > 10_000:
                        self._owners.clear()
                    self._owners[key] = (tenant, now + self.cache_seconds)
                return tenant
        return None

    async def _foreign(self, tenant: str, token: str) -> bool:
        """True when ``token`` is another tenant's (a wrong token is left to ``tenant``'s
        own authentication: 401, counted by its failure limiter)."""
        owner = await self._owner(token)
        return owner is not None and owner != tenant

    # ------------------------------------------------------------------ plumbing
    async def _lifespan(self, receive: Any, send: Any) -> None:
        stack = contextlib.AsyncExitStack()
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for child in self.apps.values():
                        await stack.enter_async_context(child.router.lifespan_context(child))
                except Exception as exc:  # noqa: BLE001 - reported to the server, which exits
                    await stack.aclose()
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await stack.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _every(self, scope: dict[str, Any], send: Any) -> None:
        """``/health`` or ``/ready`` of every tenant in one answer."""
        answers: dict[str, Any] = {}
        worst = 200
        for tenant, child in self.apps.items():
            status, body = await _call(child, {**scope, "state": {}})
            worst = max(worst, status)
            try:
                answers[tenant] = orjson.loads(body)
            except orjson.JSONDecodeError:
                answers[tenant] = {"status": status}
        payload = {"status": "ok" if worst == 200 else "degraded", "tenants": answers}
        headers = [(b"content-type", b"application/json")]
        if worst != 200:
            headers.append((b"retry-after", b"1"))
        await send({"type": "http.response.start", "status": worst, "headers": headers})
        await send({"type": "http.response.body", "body": orjson.dumps(payload)})


async def _call(app: Any, scope: dict[str, Any]) -> tuple[int, bytes]:
    """A body-less request answered by ``app`` in process: (status, body)."""
    sent = False
    status, chunks = 500, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _problem(send: Any, status: int, detail: str, rule: str) -> None:
    body = orjson.dumps({"type": f"/problems/{rule}", "title": "Not found", "status": status,
                         "detail": detail, "rule": rule})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/problem+json")]})
    await send({"type": "http.response.body", "body": body})
