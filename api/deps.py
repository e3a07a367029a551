"""Request dependencies: the ledger application, the caller, the raw body."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from ledger.application import LedgerApplication
from ledger.domain.errors import InvalidValue
from ledger.domain.model import Actor

ROLES = ("coder", "biller", "auditor", "advocate", "admin", "system")


def get_ledger(request: Request) -> LedgerApplication:
    return request.app.state.ledger


async def raw_body(request: Request) -> bytes:
    return await request.body()


def current_actor(
    x_actor_id: Annotated[str | None, Header(description="caller id (staff id, never PHI)")]
    = None,
    x_actor_role: Annotated[str | None, Header(description="caller role")] = None,
) -> Actor:
    """Who is calling. Until token authentication is configured, the caller names itself in
    X-Actor-Id / X-Actor-Role; the actor on every event comes from here, never the body."""
    if not x_actor_id or not x_actor_role:
        raise InvalidValue("X-Actor-Id", "actor.required",
                           "X-Actor-Id and X-Actor-Role headers are required")
    if x_actor_role not in ROLES or len(x_actor_id) > 80:
        raise InvalidValue("X-Actor-Role", "actor.role", f"X-Actor-Role: one of {ROLES}")
    return Actor(x_actor_id, x_actor_role)


LedgerDep = Annotated[LedgerApplication, Depends(get_ledger)]
ActorDep = Annotated[Actor, Depends(current_actor)]
RawBody = Annotated[bytes, Depends(raw_body)]
