"""``GET /problems/{rule}``: the page a problem's ``type`` URI points at (RFC 9457). Every
refusal names a rule (``icd10cm.not_billable``, ``835.line_balance``, ``version.conflict``…);
its page says what the rule family checks and how to read the problem. No token needed: it
describes rules, never data."""

from __future__ import annotations

import html
import re

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api.responses import ProblemResponse

router = APIRouter(tags=["service"])
RULE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")

# What each rule family (the part before the first dot) is about.
FAMILIES: dict[str, str] = {
    "validation": "The request body, path or query did not match the schema: each entry of "
                  "`errors` names a field and what was expected.",
    "money": "Money is a JSON string with two decimals (\"180.00\"); numbers, more decimals, "
             "infinities and (where stated) negative or zero amounts are refused.",
    "icd10cm": "ICD-10-CM diagnosis codes: format, billable leaf, and valid on the date of "
               "service in a loaded code set.",
    "hcpcs": "HCPCS Level II codes: format and, with a CMS file loaded, validity.",
    "procedure": "CPT/HCPCS procedure code format.",
    "modifier": "Procedure modifiers: format and at most four per line.",
    "npi": "National Provider Identifier: ten digits with a valid Luhn check digit.",
    "ndc": "National Drug Code: 11 digits (5-4-2).",
    "pos": "Place of service code.",
    "poa": "Present-on-admission indicator.",
    "pointer": "Diagnosis pointers of a line: they must point at existing diagnoses.",
    "pointers": "Diagnosis pointers of a line: at most four, no duplicates.",
    "diagnosis": "Diagnoses of an encounter: existing positions, no duplicates, still pointed "
                 "at by lines.",
    "diagnoses": "At most 12 diagnoses on a professional claim.",
    "line": "Service lines: the line must exist and its fields be valid.",
    "claim": "Claims: one number per claim, a passing scrub of the current content before "
             "submission, lines and payer present, replacements of existing claims.",
    "frequency": "Claim frequency: 1 original, 7 replacement and 8 void (7 and 8 need the "
                 "payer's original ICN).",
    "party": "Responsible parties: known kinds, coordination-of-benefits order, the patient "
             "last, each bucket once.",
    "parties": "An encounter needs its responsible parties.",
    "dates": "Dates must be in order (from ≤ to; not before the encounter).",
    "835": "X12 835 remittances: per line, per claim and per transaction balancing, and "
           "trace numbers.",
    "837": "X12 837 claims brought in from files.",
    "x12": "X12 envelopes and segments.",
    "ack": "Acknowledgements (999/277CA) apply to submitted claims.",
    "cas": "Claim adjustment segments: group codes (CO, PR, OA, PI, CR) and reason codes.",
    "clp02": "Claim status codes of a remittance.",
    "remittance": "Remittances posted to a claim.",
    "payments": "Payer payments never exceed the charge.",
    "refund": "Refunds never exceed the patient's credit.",
    "writeoff": "Write-offs never exceed the balance and need an approver.",
    "denial": "Denials: on submitted claims, with a CARC.",
    "appeal": "Appeals: of a denial, before the deadline, one open at a time.",
    "dispute": "Patient disputes: lines, category, the assigned advocate, open/resolved.",
    "version": "Optimistic concurrency: another change was saved first (409) or If-Match "
               "named an older version (412). Reload and retry.",
    "idempotency": "Idempotency-Key: the same key with a different body, or still running.",
    "role": "The token's role may not call this route.",
    "auth": "Authentication: a valid bearer token is needed.",
    "reason": "A reason is required where a person chose (revisions, removals, write-offs, "
              "refunds, appeals).",
    "actor": "Every change names its actor (the token's user).",
    "scrub": "The claim scrubber refused the claim (rule ids DX, CLM, LN, PX, NCCI, MUE).",
}


@router.get("/problems/{rule}", response_class=HTMLResponse, include_in_schema=False)
def problem_page(rule: str) -> Response:
    if len(rule) > 100 or not RULE.fullmatch(rule):
        return ProblemResponse({"type": "about:blank", "title": "Not found", "status": 404,
                                "detail": "no such problem type"}, status_code=404)
    family = rule.split(".", 1)[0]
    about = FAMILIES.get(family, "A rule of the claims ledger.")
    r, a = html.escape(rule), html.escape(about)
    return HTMLResponse(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Problem: {r}</title></head>
<body><h1>Problem type <code>{r}</code></h1>
<p>{a}</p>
<p>A refusal of this type is an <code>application/problem+json</code> response (RFC 9457)
whose <code>rule</code> is <code>{r}</code>, whose <code>field</code> names the part of the
request at fault and whose <code>detail</code> says why, without echoing request values.
Nothing was written: correct the request and send it again.</p>
<p>See the service's <a href="/docs">API documentation</a>.</p>
</body></html>""")
