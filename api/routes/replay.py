"""Reads answered by replaying the encounter's own events: the encounter and its claims now,
*as of* a version or a recorded moment, its event history, and the difference between two
versions. On the primary, always consistent with the last write (no projection lag); with read
replicas (LEDGER_READ_DATABASE_URL) answered by a replica — pass ``min_position`` (your
write's X-Log-Position) to read your own write there (api.deps.read_ledger)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.commands import etag
from api.deps import IdentityDep, ReadLedgerDep, check_encounter_access
from api.responses import OrjsonResponse
from ledger.domain.errors import InvalidValue, NotFound
from ledger.views import claim_view, diff_claims, encounter_view, event_view

router = APIRouter(prefix="/encounters", tags=["encounters"])

AsOfVersion = Annotated[int | None, Query(ge=1, description="the encounter at this version")]
AsOf = Annotated[datetime | None, Query(description="as recorded at this moment (ISO 8601)")]


def _load(ledger: Any, identity: Any, encounter_id: UUID, as_of_version: int | None,
          as_of: datetime | None):
    check_encounter_access(identity, ledger.get_encounter(encounter_id))
    if as_of_version is not None and as_of is not None:
        raise InvalidValue("as_of", "as_of.one", "as_of: give as_of_version or as_of, not both")
    if as_of is not None:
        if as_of.tzinfo is None:
            raise InvalidValue("as_of", "as_of.timezone",
                               "as_of: include a timezone offset, e.g. 2026-03-10T12:00:00Z")
        return ledger.encounter_as_of(encounter_id, as_of)
    if as_of_version is not None:
        current = ledger.get_encounter(encounter_id)
        if as_of_version > current.version:
            raise NotFound("as_of_version", "version.exists",
                           f"as_of_version: the encounter is at version {current.version}")
        return ledger.get_encounter(encounter_id, version=as_of_version)
    return ledger.get_encounter(encounter_id)


@router.get("/{encounter_id}", summary="An encounter (now, or as of a version or moment)")
def get_encounter(encounter_id: UUID, ledger: ReadLedgerDep, identity: IdentityDep,
                  as_of_version: AsOfVersion = None, as_of: AsOf = None) -> Response:
    enc = _load(ledger, identity, encounter_id, as_of_version, as_of)
    return OrjsonResponse(encounter_view(enc), headers={"ETag": etag(enc.version)})


@router.get("/{encounter_id}/claims/{claim_number}",
            summary="A claim as it stands, or as it stood at a version or moment")
def get_claim(encounter_id: UUID, claim_number: str, ledger: ReadLedgerDep,
              identity: IdentityDep,
              as_of_version: AsOfVersion = None, as_of: AsOf = None) -> Response:
    enc = _load(ledger, identity, encounter_id, as_of_version, as_of)
    claim = enc._claim(claim_number)
    return OrjsonResponse(claim_view(enc, claim), headers={"ETag": etag(enc.version)})


@router.get("/{encounter_id}/history", summary="Every event of the encounter, in order")
def history(encounter_id: UUID, ledger: ReadLedgerDep, identity: IdentityDep) -> Response:
    check_encounter_access(identity, ledger.get_encounter(encounter_id))
    events = ledger.history(encounter_id)
    return OrjsonResponse({"encounter_id": str(encounter_id),
                           "events": [event_view(e) for e in events]},
                          headers={"ETag": etag(events[-1].originator_version)})


@router.get("/{encounter_id}/diff",
            summary="What changed between two versions: codes, lines, amounts, who and why")
def diff(encounter_id: UUID, ledger: ReadLedgerDep, identity: IdentityDep,
         from_version: Annotated[int, Query(ge=1)],
         to_version: Annotated[int | None, Query(ge=1)] = None,
         claim_number: Annotated[str | None, Query(max_length=38)] = None) -> Response:
    current = ledger.get_encounter(encounter_id)
    check_encounter_access(identity, current)
    to_version = to_version or current.version
    if to_version > current.version or from_version > to_version:
        raise InvalidValue("to_version", "diff.range",
                           f"to_version: need from_version <= to_version <= {current.version}")
    before = ledger.get_encounter(encounter_id, version=from_version)
    after = ledger.get_encounter(encounter_id, version=to_version)
    events = [e for e in ledger.history(encounter_id)
              if from_version < e.originator_version <= to_version]

    def claim_of(enc: Any) -> dict[str, Any] | None:
        if claim_number is None:
            # the encounter's coding as a pseudo-claim: all lines, all diagnoses
            view = encounter_view(enc)
            return {"diagnoses": [d["code"] for d in view["diagnoses"]],
                    "lines": view["lines"], "status": None, "charge": view["total_charge"]}
        claim = enc.claims.get(claim_number)
        return claim_view(enc, claim) if claim else None

    return OrjsonResponse({
        "encounter_id": str(encounter_id), "from_version": from_version,
        "to_version": to_version, "claim_number": claim_number,
        "changes": diff_claims(claim_of(before), claim_of(after)),
        "events": [event_view(e) for e in events],
    })
