"""The CapabilityStatement served at ``GET /fhir/metadata``."""

from __future__ import annotations

from typing import Any

SEARCH = {
    "patient": ("reference", "The patient's surrogate reference (Patient/<ref> or <ref>)"),
    "_lastUpdated": ("date", "When the resource last changed (recorded time of the event)"),
    "status": ("token", "Resource status"),
    "created": ("date", "Creation date (EOB/ClaimResponse: adjudication date)"),
    "identifier": ("token", "Claim number (CLM01)"),
}
TYPES = {
    "ExplanationOfBenefit": "http://hl7.org/fhir/us/carin-bb/StructureDefinition/"
                            "C4BB-ExplanationOfBenefit",
    "Claim": None, "ClaimResponse": None,
    "Coverage": "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Coverage",
}


def capability_statement(base: str) -> dict[str, Any]:
    resources = []
    for name, profile in TYPES.items():
        entry: dict[str, Any] = {
            "type": name,
            "interaction": [{"code": "read"}, {"code": "vread"},
                            {"code": "history-instance"}, {"code": "search-type"}],
            "versioning": "versioned",
            "readHistory": True,
            "searchParam": [{"name": n, "type": t, "documentation": d}
                            for n, (t, d) in SEARCH.items()
                            if not (name == "Coverage" and n in ("identifier", "created"))],
        }
        if profile:
            entry["supportedProfile"] = [profile]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-01",
        "kind": "instance",
        "software": {"name": "claims-ledger", "version": "0.1.0"},
        "implementation": {"description": "Claims ledger FHIR read API", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{"mode": "server",
                  "documentation": "Read-only. Versions are encounter versions: _history "
                                   "lists every event that touched the resource.",
                  "security": {"description": "Bearer token (lgr_<id>.<secret>); same roles "
                                              "and encounter access as the rest of the API"},
                  "resource": resources}],
    }
