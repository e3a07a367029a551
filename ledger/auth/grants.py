"""The table side of access grants: the rows written with each AccessGranted/AccessRevoked
event (same transaction) and the questions list reads ask (which encounters may this advocate
see?). The domain's ``AccessGrant.active_at`` holds the same rule as ``ACTIVE`` below:
unrevoked and not yet expired."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ledger.audit.access import append_access
from ledger.domain.model import AccessGrant

ACTIVE = "revoked_at IS NULL AND valid_until > now()"
ACTIVE_G = "g.revoked_at IS NULL AND g.valid_until > now()"


def write_granted(curs: Any, encounter_id: UUID, grant: AccessGrant, *,
                  actor_role: str, client: str | None, request_id: str | None) -> None:
    """Record a new grant (in the transaction of its event), and the grant in the access log."""
    curs.execute(
        "INSERT INTO ledger_access_grants (grant_id, encounter_id, grantee_id,"
        " authorization_ref, basis, valid_until, granted_by) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (grant_id) DO NOTHING",
        (grant.grant_id, encounter_id, grant.grantee_id, grant.authorization_ref, grant.basis,
         grant.valid_until, grant.granted_by))
    append_access(curs, actor=grant.granted_by, actor_role=actor_role, action="grant",
                  resource_type="grant", resource_id=grant.grant_id, encounter_id=encounter_id,
                  route="/encounters/{encounter_id}/grants", client=client, outcome="allowed",
                  status=201, request_id=request_id)


def write_revoked(curs: Any, encounter_id: UUID, grant: AccessGrant, *,
                  actor_role: str, client: str | None, request_id: str | None) -> None:
    curs.execute("UPDATE ledger_access_grants SET revoked_at = now(), revoked_by = %s"
                 " WHERE grant_id = %s AND revoked_at IS NULL",
                 (grant.revoked_by, grant.grant_id))
    append_access(curs, actor=grant.revoked_by, actor_role=actor_role, action="revoke",
                  resource_type="grant", resource_id=grant.grant_id, encounter_id=encounter_id,
                  route="/encounters/{encounter_id}/grants/{grant_id}/revoke", client=client,
                  outcome="allowed", status=200, request_id=request_id)


def granted_encounters(conn: Any, grantee_id: str) -> set[UUID]:
    """The encounters ``grantee_id`` holds an active grant on now."""
    rows = conn.execute(f"SELECT DISTINCT encounter_id FROM ledger_access_grants"
                        f" WHERE grantee_id = %s AND {ACTIVE}", (grantee_id,)).fetchall()
    return {r[0] for r in rows}


def granted_patient(conn: Any, grantee_id: str, patient_ref: str) -> bool:
    """Does ``grantee_id`` hold an active grant on any encounter of this patient?"""
    row = conn.execute(
        f"SELECT 1 FROM ledger_access_grants g JOIN claims_encounters e USING (encounter_id)"
        f" WHERE g.grantee_id = %s AND e.patient_ref = %s AND {ACTIVE_G}"
        f" LIMIT 1", (grantee_id, patient_ref)).fetchone()
    return row is not None
