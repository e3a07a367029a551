"""Request dependencies: authentication and authorisation (on every route), the ledger
application, the caller, the raw body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.client_address import client_address
from api.permissions import PERMISSIONS, PUBLIC, allowed
from ledger.application import LedgerApplication
from ledger.auth import AuthStore, FailureLimiter, Identity, token_parts
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


MinPosition = Annotated[int | None, Query(ge=0, description=(
    "wait until the projections reflect this log position (your write's X-Log-Position)"))]
ReplayPosition = Annotated[int | None, Query(ge=0, description=(
    "with read replicas: answer from a replica once it holds this log position (your "
    "write's X-Log-Position), else from the primary"))]


def read_ledger(request: Request, min_position: ReplayPosition = None) -> LedgerApplication:
    """The event store a replay read is answered from: a read replica's
    (LEDGER_READ_DATABASE_URL) once its event log holds ``min_position``, else the primary's
    (after LEDGER_READ_REPLICA_WAIT; see ledger.replicas). Sync: runs in a worker thread."""
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
