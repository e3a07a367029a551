"""Who may call what: ONE table, enforced on every route by ``authorize`` (default deny).

Keys are (HTTP method, route template). A route missing here is refused to everyone (and
fails the permission-matrix test). ``PUBLIC`` routes need no token. Advocates additionally
reach an encounter only through an active access grant recorded on it (``AccessGranted``,
checked where the encounter is loaded); without one every encounter route answers 404.
"""

from __future__ import annotations

CODER, BILLER, AUDITOR, ADVOCATE, ADMIN = "coder", "biller", "auditor", "advocate", "admin"
BILLING_LEAD = "billing_lead"  # a biller who also closes accounting periods (issue 19)
READERS = frozenset({CODER, BILLER, AUDITOR, ADVOCATE})
STAFF_READERS = frozenset({CODER, BILLER, AUDITOR})
PUBLIC = frozenset({"*"})

E = "/encounters/{encounter_id}"
C = E + "/claims/{claim_number}"

PERMISSIONS: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/ready"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,  # counts and route templates only, no PHI (issue 17)
    ("GET", "/problems/{rule}"): PUBLIC,  # what a problem type (rule) means
    # coding: coders (an encounter may also be opened by registration/billing staff)
    ("POST", "/encounters"): frozenset({CODER, BILLER}),
    ("POST", E + "/diagnoses"): frozenset({CODER}),
    ("POST", E + "/diagnoses/{position}/revise"): frozenset({CODER}),
    ("POST", E + "/diagnoses/{position}/remove"): frozenset({CODER}),
    ("POST", E + "/lines"): frozenset({CODER}),
    ("POST", E + "/lines/{line_no}/revise"): frozenset({CODER}),
    ("POST", E + "/lines/{line_no}/remove"): frozenset({CODER}),
    ("POST", E + "/supplies"): frozenset({CODER}),
    # billing: claims, remittances, money
    ("POST", E + "/lines/{line_no}/charge-adjustments"): frozenset({BILLER}),
    ("POST", E + "/claims"): frozenset({BILLER}),
    ("POST", C + "/scrub"): frozenset({BILLER}),
    ("POST", C + "/submit"): frozenset({BILLER}),
    ("POST", C + "/acknowledgements"): frozenset({BILLER}),
    ("POST", C + "/adjudications"): frozenset({BILLER}),
    ("POST", C + "/provider-adjustments"): frozenset({BILLER}),
    ("POST", C + "/denials"): frozenset({BILLER}),
    ("POST", C + "/appeals"): frozenset({BILLER}),
    ("POST", C + "/appeals/decision"): frozenset({BILLER}),
    ("POST", E + "/statements"): frozenset({BILLER}),
    ("POST", E + "/patient-payments"): frozenset({BILLER}),
    ("POST", E + "/refunds"): frozenset({BILLER}),
    ("POST", E + "/write-offs"): frozenset({BILLER}),
    ("POST", "/remittances"): frozenset({BILLER}),
    ("POST", "/claims/x12"): frozenset({BILLER}),
    ("GET", "/exceptions"): frozenset({BILLER, AUDITOR}),
    ("GET", "/remittances/reconciliation"): frozenset({BILLER, AUDITOR}),
    ("POST", "/exceptions/{exception_id}/resolve"): frozenset({BILLER}),
    # disputes: advocates open and work them; billing staff answer them
    ("POST", E + "/disputes"): frozenset({ADVOCATE, BILLER}),
    ("POST", E + "/disputes/{dispute_id}/notes"): frozenset({ADVOCATE, BILLER}),
    ("POST", E + "/disputes/{dispute_id}/resolve"): frozenset({ADVOCATE, BILLER}),
    # access grants: billing staff (or an admin) give an advocate access on the patient's behalf
    ("POST", E + "/grants"): frozenset({BILLER, ADMIN}),
    ("POST", E + "/grants/{grant_id}/revoke"): frozenset({BILLER, ADMIN}),
    ("GET", E + "/grants"): frozenset({BILLER, AUDITOR, ADMIN}),
    # reads of claim data (advocates: only encounters granted to them)
    ("GET", E): READERS,
    ("GET", C): READERS,
    ("GET", E + "/history"): READERS,
    ("GET", E + "/diff"): READERS,
    ("GET", E + "/explain"): READERS,
    ("GET", "/claims"): READERS,
    ("GET", "/payers/balances"): STAFF_READERS,
    ("GET", "/patients/{patient_ref}/balance"): READERS,
    ("GET", "/patients/balances"): STAFF_READERS,
    ("GET", "/queues/disputes-denials"): READERS,
    ("GET", "/trends/diagnoses"): STAFF_READERS,
    ("GET", "/trends/diagnoses/{code}"): STAFF_READERS,
    ("GET", "/trends/code-revisions"): STAFF_READERS,
    ("GET", "/audit/trail"): frozenset({AUDITOR}),
    ("GET", "/projections/status"): frozenset({AUDITOR, ADMIN, BILLER}),
    # reference data
    ("GET", "/codes/{system}/{code}"): frozenset({CODER, BILLER, AUDITOR, ADVOCATE, ADMIN}),
    # audit controls
    ("GET", "/audit/verify"): frozenset({AUDITOR}),
    ("GET", "/audit/access"): frozenset({AUDITOR}),
    ("GET", "/audit/sealing"): frozenset({AUDITOR, ADMIN}),
    # FHIR R4 reads (issue 18): the same readers and encounter access as the reads above
    ("GET", "/fhir/metadata"): PUBLIC,
    ("GET", "/fhir/$export"): frozenset({BILLER, AUDITOR}),  # the whole ledger: staff only
    ("GET", "/fhir/{resource_type}"): READERS,
    ("GET", "/fhir/{resource_type}/{rid}"): READERS,
    ("GET", "/fhir/{resource_type}/{rid}/_history"): READERS,
    ("GET", "/fhir/{resource_type}/{rid}/_history/{vid}"): READERS,
    # administration of users and tokens (no claim data)
    ("GET", "/admin/users"): frozenset({ADMIN}),
    ("POST", "/admin/users"): frozenset({ADMIN}),
    ("POST", "/admin/users/{user_id}/disable"): frozenset({ADMIN}),
    ("POST", "/admin/users/{user_id}/tokens"): frozenset({ADMIN}),
    ("POST", "/admin/tokens/{token_id}/revoke"): frozenset({ADMIN}),
    ("POST", "/periods/{period}/close"): frozenset({BILLING_LEAD, ADMIN}),
    ("GET", "/periods/{period}/report"): frozenset({BILLER, AUDITOR, ADMIN}),
    ("GET", "/reports/reconciliation"): frozenset({BILLER, AUDITOR, ADMIN}),
}
# A billers' lead may do whatever a biller may.
PERMISSIONS.update({k: v | {BILLING_LEAD} for k, v in PERMISSIONS.items() if BILLER in v})


def allowed(method: str, path: str, role: str | None) -> bool:
    roles = PERMISSIONS.get((method, path))
    if roles is None:
        return False
    if roles is PUBLIC:
        return True
    return role is not None and role in roles
