"""Request dependencies: authentication and authorisation (on every route), the ledger
application, the caller, the raw body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Cookie, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from api.client_address import client_address
from api.permissions import PERMISSIONS, PUBLIC, allowed
from ledger.application.service import LedgerApplication
from ledger.auth.throttle import FailureLimiter
from ledger.auth.tokens import AuthStore, Identity, token_parts
from ledger.domain.encounter import Encounter
from ledger.domain.errors import InvalidValue
from ledger.domain.model import Actor

bearer = HTTPBearer(auto_error=False, description="an API token: `lgr_<id>.<secret>`")


async def authorize(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Identity | None:
    """Authenticate the bearer token and check the permission table for this route.

    401: no token, or an invalid/revoked one. 403: a valid token whose role may not call the
    route (or a route with no declared permission: default deny). 429: too many failed
    authentications from this address (from trusted proxies' headers only) or with this
    token id.
    """
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    roles = PERMISSIONS.get((request.method, template))
    if roles is PUBLIC:
        return None
    store: AuthStore = request.app.state.auth
    limiter: FailureLimiter = request.app.state.auth_failures
    client = client_address(request)
    parts = token_parts(credentials.credentials) if credentials else None
    if limiter.blocked(client) or (parts is not None and limiter.token_blocked(*parts)):
        raise HTTPException(429, "too many failed authentications; retry later",
                            headers={"Retry-After": str(int(limiter.window))})
    identity = None
    if credentials:
        # a recently verified token is answered from memory; otherwise argon2 + a database
        # read, in a worker thread
        identity = store.cached(credentials.credentials)
        if identity is None:
            identity = await run_in_threadpool(store.authenticate, credentials.credentials)
            if identity is not None and parts is not None:
                limiter.succeeded(*parts)
    if identity is None:
        if credentials:  # a wrong token counts toward the limit; a missing one does not
            limiter.failed(client, parts[0] if parts else None)
        raise HTTPException(401, "a valid bearer token is required",
                            headers={"WWW-Authenticate": 'Bearer realm="ledger"'})
    request.state.identity = identity
    if not allowed(request.method, template, identity.role):
        raise HTTPException(403, f"role {identity.role} may not {request.method} {template}")
    return identity


async def get_ledger(request: Request) -> LedgerApplication:
    return request.app.state.ledger


POSITION_COOKIE = "ledger_min_position"
# a cookie above this is not a position (the log would need 10^18 events): ignored
_MAX_POSITION = 10**18


def cookie_position(value: str | None) -> int | None:
    """The position a ``ledger_min_position`` cookie holds, or None when it holds none (absent,
    not a non-negative integer): a bad cookie is ignored, never a refusal."""
    value = (value or "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def known_head(state: Any) -> int:
    """The highest log position this process has seen committed (no query)."""
    return getattr(state, "known_head", 0)


def saw_position(state: Any, position: int) -> None:
    if position > known_head(state):
        state.known_head = position


def read_position(
    request: Request,
    min_position: Annotated[int | None, Query(ge=0, description=(
        "read your own write: wait until the read models (or, for replay reads, the event "
        "log) reflect this log position — your write's X-Log-Position; with read replicas "
        "the read is answered by a replica once it holds it, else by the primary. A "
        "position beyond the log is refused (422)"))] = None,
    ledger_min_position: Annotated[str | None, Cookie(alias=POSITION_COOKIE, description=(
        "set by every successful write (HttpOnly): the highest log position this client "
        "has written; reads wait for max(min_position, this cookie). A malformed cookie is "
        "ignored; one beyond the log is clamped to the log head (X-Min-Position-Clamped)"))
    ] = None,
) -> int | None:
    """The position a read must reflect: max(``min_position``, the client's position cookie).
    A cookie beyond the log head (another tenant's write with a shared cookie, a database
    restored from a backup) is clamped to the head — the client cannot fix a cookie — and the
    answer says so (``X-Min-Position-Clamped: <head>``); an explicit ``min_position`` beyond
    the log stays a 422 for the route to raise. Sync: runs in a worker thread (the head is
    asked of the primary only when the cookie is above any position this process has seen)."""
    cookie = cookie_position(ledger_min_position)
    if cookie is None or cookie <= (min_position or 0):
        return min_position
    state = request.app.state
    if cookie > known_head(state):
        with state.pool.connection() as conn:
            head = conn.execute("SELECT COALESCE(MAX(notification_id), 0) FROM ledger_events"
                                ).fetchone()[0]
        saw_position(state, head)
        if cookie > head:
            request.state.position_clamped = head
            cookie = head
    return max(cookie, min_position or 0) or None


MinPosition = Annotated[int | None, Depends(read_position)]
ReplayPosition = MinPosition


class ResponseHeaders:
    """ASGI middleware: adds the headers ``extra(scope, message)`` names to the start of an
    HTTP answer (a subclass says which)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                extra = self.extra(scope, message)
                if extra:
                    message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def extra(self, scope: Any, message: Any) -> list[tuple[bytes, bytes]]:
        raise NotImplementedError


class PositionCookie(ResponseHeaders):
    """A successful write's answer (2xx/3xx with ``X-Log-Position``, an Idempotency-Key replay
    included) sets the ``ledger_min_position`` cookie to the highest position this client has
    written (never lower than the cookie it sent); a read whose cookie was clamped says so in
    ``X-Min-Position-Clamped``."""

    def extra(self, scope: Any, message: Any) -> list[tuple[bytes, bytes]]:
        return _position_headers(scope, message)


def _position_headers(scope: Any, message: Any) -> list[tuple[bytes, bytes]]:
    clamped = scope.get("state", {}).get("position_clamped")
    if clamped is not None:
        return [(b"x-min-position-clamped", str(clamped).encode())]
    if message["status"] >= 400:
        return []
    written = next((v for k, v in message.get("headers", []) if k == b"x-log-position"), None)
    position = cookie_position(written.decode("latin-1") if written else None)
    if position is None:
        return []
    app = scope.get("app")
    if app is not None:
        saw_position(app.state, position)
    sent = cookie_position(cookie_parser(Headers(scope=scope).get("cookie", "")
                                         ).get(POSITION_COOKIE))
    if sent is not None and sent >= position:  # never lower it (an older write replayed)
        return []
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    return [(b"set-cookie", f"{POSITION_COOKIE}={position}; HttpOnly; SameSite=Strict; "
                            f"Path=/{secure}".encode())]


def read_ledger(request: Request, min_position: MinPosition = None) -> LedgerApplication:
    """The event store a replay read is answered from: a read replica's
    (LEDGER_READ_DATABASE_URL) once its event log holds ``min_position`` (the parameter or
    the client's position cookie, see read_position), else the primary's (after
    LEDGER_READ_REPLICA_WAIT; see ledger.replicas). Sync: runs in a worker thread."""
    state = request.app.state
    replicas = state.read_replicas
    if replicas:
        reader = replicas.ledger(min_position, state.settings.read_replica_wait)
        request.state.read_from = "replica" if reader is not None else "primary"
        if reader is not None:
            return reader
    if min_position:
        head = state.ledger.max_position()
        if min_position > head:  # no write of the caller's can be there: a client error
            raise InvalidValue("min_position", "min_position.beyond_log",
                               f"min_position: the log ends at {head}")
    return state.ledger


async def raw_body(request: Request) -> bytes:
    return await request.body()


async def current_identity(request: Request) -> Identity:
    identity = getattr(request.state, "identity", None)
    if identity is None:  # pragma: no cover - authorize runs first on every route
        raise HTTPException(401, "a valid bearer token is required")
    return identity


async def current_actor(identity: Annotated[Identity, Depends(current_identity)]) -> Actor:
    """The actor recorded on events: always the authenticated identity, never the body."""
    return identity.actor


def check_encounter_access(identity: Identity, enc: Encounter) -> None:
    """Minimum necessary: an advocate reads or works an encounter only through an active
    grant recorded on it (AccessGranted, not revoked, not expired). Anything else is answered
    exactly like an encounter that does not exist (no confirmation it does)."""
    enc.require_access(identity.actor, datetime.now(UTC))


async def require_encounter_access(ledger: LedgerApplication, identity: Identity,
                                   encounter_id: UUID) -> None:
    """For writes: refuse an advocate without a grant before anything else is looked at
    (If-Match, the body's rules), so a write answers the same 404 for "does not exist" and
    "exists but not yours". Other roles pass at no cost."""
    if identity.role != "advocate":
        return
    enc = await run_in_threadpool(ledger.get_encounter, encounter_id)
    check_encounter_access(identity, enc)


LedgerDep = Annotated[LedgerApplication, Depends(get_ledger)]
ReadLedgerDep = Annotated[LedgerApplication, Depends(read_ledger)]
ActorDep = Annotated[Actor, Depends(current_actor)]
IdentityDep = Annotated[Identity, Depends(current_identity)]
RawBody = Annotated[bytes, Depends(raw_body)]
