"""Plain-data views of a replayed encounter: what the API returns for an encounter, a claim
*as it was* at a version or moment, an event in the history, and the difference between two
versions. Money stays ``Money`` (rendered as "12.34" by the API), dates stay dates.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ledger.domain import figures
from ledger.domain.encounter import Encounter
from ledger.domain.model import Claim, ServiceLine
from ledger.domain.values import Money, icd10cm_dotted

BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


def _plain(value: Any) -> Any:
    if isinstance(value, Money):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def line_view(line: ServiceLine) -> dict[str, Any]:
    return {
        "line_no": line.line_no, "kind": line.kind, "procedure_code": line.procedure_code,
        "revenue_code": line.revenue_code, "modifiers": list(line.modifiers),
        "units": line.units, "unit_type": line.unit_type, "charge": line.current_charge,
        "original_charge": line.charge, "pointers": list(line.pointers),
        "line_date": line.line_date, "rendering_npi": line.rendering_npi, "ndc": line.ndc,
        "description": line.description, "removed": line.removed, "paid": line.paid,
        "allowed": line.allowed, "adjustments": _plain(line.adjustments),
        "remarks": list(line.remarks),
    }


def claim_view(enc: Encounter, claim: Claim) -> dict[str, Any]:
    # the same figures the claims read model shows (ledger.domain.figures)
    adjustments: dict[str, Money] = {f"{group}-{reason}": value for (group, reason), value
                                     in sorted(figures.claim_adjustments(claim).items())}
    return {
        "encounter_id": str(enc.id),
        "claim_number": claim.number,
        "payer_id": claim.payer_id,
        "bucket": claim.bucket,
        "frequency": claim.frequency,
        "original_icn": claim.original_icn,
        "status": claim.status,
        "payer_icn": claim.payer_icn,
        "service_from": enc.service_from,
        "service_to": enc.service_to,
        "diagnoses": [icd10cm_dotted(d.code) for d in enc.diagnoses],
        "lines": [line_view(ln) for ln in enc.claim_lines(claim)],
        "charge": claim.submitted_charge or enc.claim_charge(claim),
        "allowed": figures.claim_allowed(claim),
        "paid": claim.paid,
        "patient_responsibility": claim.patient_responsibility,
        "adjustments": adjustments,
        "scrub": {"passed": claim.scrub_passed, "ruleset": claim.scrub_ruleset,
                  "findings": _plain(claim.scrub_findings)},
        "denial_deadline": claim.denial_deadline,
        "appeal_open": claim.appeal_open,
        "replaced_by": claim.replaced_by,
        "replaces": claim.replaces,
        "version": enc.version,
        "last_change": enc.modified_on,
    }


def encounter_view(enc: Encounter) -> dict[str, Any]:
    return {
        "encounter_id": str(enc.id),
        "version": enc.version,
        "facility_id": enc.facility_id,
        "patient_ref": enc.patient_ref,
        "service_from": enc.service_from,
        "service_to": enc.service_to,
        "place_of_service": enc.place_of_service,
        "claim_type": enc.claim_type,
        "responsible_parties": [
            {"bucket": p.bucket, "kind": p.kind, "payer_id": p.payer_id, "name": p.name}
            for p in enc.parties
        ],
        "diagnoses": [{"position": i, "code": icd10cm_dotted(d.code), "poa": d.poa,
                       "code_set_version": d.code_set_version}
                      for i, d in enumerate(enc.diagnoses, start=1)],
        "lines": [line_view(ln) for ln in enc.lines.values()],
        "total_charge": enc.total_charge,
        "balances": {k: v for k, v in sorted(enc.buckets.items())},
        "patient_share": dict(enc.patient_share),
        "patient_paid": enc.patient_paid,
        "refunded": enc.refunded,
        "written_off": enc.written_off,
        "claims": [claim_view(enc, c) for c in enc.claims.values()],
        "disputes": [_plain(d) for d in enc.disputes.values()],
        "created_on": enc.created_on,
        "modified_on": enc.modified_on,
    }


def event_view(event: Any) -> dict[str, Any]:
    data = {k: _plain(v) for k, v in vars(event).items() if k not in BASE_FIELDS}
    for name in ("actor_id", "actor_role", "reason"):
        data.pop(name, None)
    return {
        "version": event.originator_version,
        "type": type(event).__name__,
        "recorded_at": event.timestamp,
        "actor_id": getattr(event, "actor_id", ""),
        "actor_role": getattr(event, "actor_role", ""),
        "reason": getattr(event, "reason", ""),
        "data": data,
    }


def diff_claims(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """Which codes, lines and amounts changed between two views of one claim."""
    before = before or {"diagnoses": [], "lines": [], "status": None}
    after = after or {"diagnoses": [], "lines": [], "status": None}
    b_dx, a_dx = before["diagnoses"], after["diagnoses"]
    changes: dict[str, Any] = {
        "diagnoses": {"removed": [c for c in b_dx if c not in a_dx],
                      "added": [c for c in a_dx if c not in b_dx]},
        "lines": [],
        "amounts": {},
    }
    b_lines = {ln["line_no"]: ln for ln in before["lines"]}
    a_lines = {ln["line_no"]: ln for ln in after["lines"]}
    for no in sorted(set(b_lines) | set(a_lines)):
        old, new = b_lines.get(no), a_lines.get(no)
        if old == new:
            continue
        fields = {}
        for name in ("procedure_code", "revenue_code", "modifiers", "units", "charge",
                     "pointers", "paid", "allowed", "removed", "ndc"):
            o = old.get(name) if old else None
            n = new.get(name) if new else None
            if o != n:
                fields[name] = {"before": o, "after": n}
        if fields:
            changes["lines"].append({"line_no": no, "changes": fields})
    for name in ("status", "charge", "allowed", "paid", "patient_responsibility"):
        o, n = before.get(name), after.get(name)
        if o != n:
            changes["amounts" if name != "status" else "status"] = (
                changes.get("amounts", {}) | {name: {"before": o, "after": n}}
                if name != "status" else {"before": o, "after": n})
    return changes
