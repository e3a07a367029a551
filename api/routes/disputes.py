"""Disputes and access grants: the routes through which patient advocates reach an encounter.

An advocate acts on an encounter only through a grant recorded on it (``AccessGranted``, by
billing staff or an admin, or from an imported patient authorization) and answered 404 — the
same answer as for an encounter that does not exist — without one. The dispute's advocate is
the caller (from the token), never a body field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api import schemas as s
from api.client_address import client_address
from api.commands import etag, handled, run_command
from api.deps import IdentityDep, LedgerDep, RawBody, require_encounter_access
from api.responses import OrjsonResponse
from api.routes.commands import COMMAND_RESPONSES
from ledger.auth.grants import write_granted, write_revoked
from ledger.domain import commands as c
from ledger.domain.commands import Command
from ledger.domain.errors import RuleViolation
from ledger.domain.model import AccessGrant

router = APIRouter(prefix="/encounters", tags=["disputes and access"])


def _now() -> datetime:
    return datetime.now(UTC)


async def _dispute_command(request: Request, raw: bytes, ledger: Any, identity: Any,
                           kind: type[Command], encounter_id: UUID, dispute_id: str, body: Any,
                           **options: Any) -> Response:
    """Run a dispute command (``kind``) on ``encounter_id``'s dispute, stamped now, for a
    caller who may access the encounter."""
    command = kind(encounter_id=encounter_id, dispute_id=dispute_id, at=_now(),
                   **body.command_kwargs())
    await require_encounter_access(ledger, identity, encounter_id)
    return await run_command(request, raw, identity.actor,
                             handled(ledger, command, identity.actor), **options)


@router.post("/{encounter_id}/disputes", status_code=201, summary="Open a dispute",
             responses=COMMAND_RESPONSES)
async def open_dispute(request: Request, encounter_id: UUID, body: s.OpenDispute, raw: RawBody,
                       ledger: LedgerDep, identity: IdentityDep) -> Response:
    dispute_id = f"D-{uuid4().hex[:12]}"
    return await _dispute_command(request, raw, ledger, identity, c.OpenDispute, encounter_id,
                                  dispute_id, body, status_code=201,
                                  present=lambda _: {"dispute_id": dispute_id})


@router.post("/{encounter_id}/disputes/{dispute_id}/notes", summary="Add a dispute note",
             responses=COMMAND_RESPONSES)
async def add_dispute_note(request: Request, encounter_id: UUID, dispute_id: str,
                           body: s.DisputeNote, raw: RawBody, ledger: LedgerDep,
                           identity: IdentityDep) -> Response:
    return await _dispute_command(request, raw, ledger, identity, c.AddDisputeNote,
                                  encounter_id, dispute_id, body)


@router.post("/{encounter_id}/disputes/{dispute_id}/resolve", summary="Resolve a dispute",
             responses=COMMAND_RESPONSES)
async def resolve_dispute(request: Request, encounter_id: UUID, dispute_id: str,
                          body: s.ResolveDispute, raw: RawBody, ledger: LedgerDep,
                          identity: IdentityDep) -> Response:
    return await _dispute_command(request, raw, ledger, identity, c.ResolveDispute,
                                  encounter_id, dispute_id, body)


# ---------------------------------------------------------------------- access grants
def grant_view(g: AccessGrant, at: datetime | None = None) -> dict[str, Any]:
    return {"grant_id": g.grant_id, "grantee_id": g.grantee_id,
            "authorization_ref": g.authorization_ref, "basis": g.basis,
            "valid_until": g.valid_until, "granted_by": g.granted_by, "revoked": g.revoked,
            "revoked_by": g.revoked_by or None,
            "active": g.active_at(at or _now())}


def _check_grantee(request: Request, grantee_id: str) -> None:
    with request.app.state.pool.connection() as conn:
        row = conn.execute("SELECT role, disabled FROM ledger_users WHERE user_id = %s",
                           (grantee_id,)).fetchone()
    if row is None or row[0] != "advocate" or row[1]:
        raise RuleViolation("grantee_id", "grant.grantee_advocate",
                            "grantee_id: must be an enabled user with the advocate role")


def _side_write(write: Any, request: Request, encounter_id: UUID, role: str,
                then: Any) -> Any:
    """The grant table row and access-log record, in the transaction of the event, then the
    idempotency record (if any)."""
    client = client_address(request)
    request_id = request.headers.get("x-request-id")

    def side(curs: Any, result: Any) -> None:
        write(curs, encounter_id, result.value, actor_role=role, client=client,
              request_id=request_id)
        if then is not None:
            then(curs, result)

    return side


def _grant_runner(request: Request, ledger: Any, actor: Any, command: Command,
                  write: Any) -> Any:
    """Runs a grant command with ``write`` (the grant table row and access-log record) in the
    transaction of its event."""

    def runner(expected_version: int | None, write_with: Any) -> Any:
        return ledger.handle_async(
            command, actor=actor, expected_version=expected_version,
            write_with=_side_write(write, request, command.encounter_id, actor.role,
                                   write_with))

    return runner


@router.post("/{encounter_id}/grants", status_code=201,
             summary="Grant an advocate access to this encounter (on the patient's behalf)",
             responses=COMMAND_RESPONSES)
async def grant_access(request: Request, encounter_id: UUID, body: s.GrantAccess, raw: RawBody,
                       ledger: LedgerDep, identity: IdentityDep) -> Response:
    await run_in_threadpool(_check_grantee, request, body.grantee_id)
    grant_id = f"G-{uuid4().hex[:12]}"
    actor = identity.actor
    kwargs = body.command_kwargs()

    command = c.GrantAccess(encounter_id=encounter_id, grant_id=grant_id, at=_now(), **kwargs)
    runner = _grant_runner(request, ledger, actor, command, write_granted)
    return await run_command(request, raw, actor, runner, status_code=201, present=grant_view,
                             location=lambda r: f"/encounters/{encounter_id}/grants")


@router.post("/{encounter_id}/grants/{grant_id}/revoke", summary="Revoke an access grant",
             responses=COMMAND_RESPONSES)
async def revoke_access(request: Request, encounter_id: UUID, grant_id: str,
                        body: s.RevokeAccess, raw: RawBody, ledger: LedgerDep,
                        identity: IdentityDep) -> Response:
    actor = identity.actor

    command = c.RevokeAccess(encounter_id=encounter_id, grant_id=grant_id,
                             **body.command_kwargs())
    runner = _grant_runner(request, ledger, actor, command, write_revoked)
    return await run_command(request, raw, actor, runner, present=grant_view)


@router.get("/{encounter_id}/grants", summary="Who may access this encounter, and why")
def list_grants(encounter_id: UUID, ledger: LedgerDep, identity: IdentityDep) -> Response:
    enc = ledger.get_encounter(encounter_id)
    now = _now()
    return OrjsonResponse({"encounter_id": str(encounter_id),
                           "grants": [grant_view(g, now) for g in enc.access_grants().values()]},
                          headers={"ETag": etag(enc.version)})
