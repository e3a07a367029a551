"""Build FHIR R4 resources (plain dicts, money as exact Decimal) from an Encounter's state.

Every amount comes from the aggregate through ``ledger.domain.figures`` (the module the claims
read model and the API's claim read use): this module only says where each figure goes in
FHIR. Ids carry no PHI: ``{encounter uuid hex}-{claim index}`` (Claim, ExplanationOfBenefit),
``…-{claim index}-{adjudication seq}`` (ClaimResponse), ``{encounter uuid hex}-{bucket}``
(Coverage). The patient is the encounter's surrogate reference only.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from ledger.domain import figures
from ledger.domain.encounter import Encounter
from ledger.domain.model import Adjudication, Adjustment, Claim, ResponsibleParty, ServiceLine
from ledger.domain.values import Money, icd10cm_dotted
from ledger.fhir.replay import Key, Stamps, Touch, claim_index

# --- code systems
ADJ = "http://terminology.hl7.org/CodeSystem/adjudication"
C4BB_ADJ = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication"
C4BB_DISC = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudicationDiscriminator"
C4BB_ID = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType"
C4BB_INFO = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBSupportingInfoType"
C4BB_DX_TYPE = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimDiagnosisType"
C4BB_SUBTYPE = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBInstitutionalClaimSubType"
C4BB_PAYEE = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBPayeeType"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
DX_TYPE = "http://terminology.hl7.org/CodeSystem/ex-diagnosistype"
PAYMENT_TYPE = "http://terminology.hl7.org/CodeSystem/ex-paymenttype"
PRIORITY = "http://terminology.hl7.org/CodeSystem/processpriority"
RELATED = "http://terminology.hl7.org/CodeSystem/related-claim-relationship"
SELF_PAY = "http://terminology.hl7.org/CodeSystem/coverage-selfpay"
ACT_CODE = "http://terminology.hl7.org/v3-ActCode"
SUBSCRIBER = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://bluebutton.cms.gov/resources/codesystem/hcpcs"
NDC = "http://hl7.org/fhir/sid/ndc"
NPI = "http://hl7.org/fhir/sid/us-npi"
REVENUE = "https://www.nubc.org/CodeSystem/RevenueCodes"
TYPE_OF_BILL = "https://www.nubc.org/CodeSystem/TypeOfBill"
POA = "https://www.nubc.org/CodeSystem/PresentOnAdmissionIndicator"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
CARC = "https://x12.org/codes/claim-adjustment-reason-codes"
RARC = "https://x12.org/codes/remittance-advice-remark-codes"
CAS_GROUP = "https://x12.org/codes/claim-adjustment-group-codes"
CLP02 = "https://x12.org/codes/claim-status-codes"
# the ledger's own identifiers and the categories FHIR has no code for
LEDGER = "urn:ledger"
CLAIM_NUMBER = f"{LEDGER}:claim-number"
CLAIM_KEY = f"{LEDGER}:claim-key"  # the ledger's key when a correction shares the CLM01
PAYER_ICN = f"{LEDGER}:payer-claim-control-number"
PAYER_ID = f"{LEDGER}:payer-id"
FACILITY = f"{LEDGER}:facility-id"
PATIENT_REF = f"{LEDGER}:patient-ref"
LEDGER_ADJ = f"{LEDGER}:adjudication"
LEDGER_RELATED = f"{LEDGER}:related-claim"
LEDGER_STATUS = f"{LEDGER}:claim-status"

PROFILES = {
    "professional": "http://hl7.org/fhir/us/carin-bb/StructureDefinition/"
                    "C4BB-ExplanationOfBenefit-Professional-NonClinician",
    "inpatient": "http://hl7.org/fhir/us/carin-bb/StructureDefinition/"
                 "C4BB-ExplanationOfBenefit-Inpatient-Institutional",
    "outpatient": "http://hl7.org/fhir/us/carin-bb/StructureDefinition/"
                  "C4BB-ExplanationOfBenefit-Outpatient-Institutional",
    "coverage": "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-Coverage",
}
INPATIENT_POS = frozenset({"21", "31", "51", "61"})
# place of service of an institutional encounter -> NUBC facility type (type of bill digits 2-3)
FACILITY_TYPE = {"21": "11", "22": "13", "23": "13", "31": "21", "32": "23", "12": "32",
                 "72": "71", "65": "72", "50": "73", "49": "74", "62": "75", "53": "76",
                 "34": "81", "24": "83"}

# (CAS group, CARC) -> adjudication category. PR-1/2/3 are the patient's deductible,
# coinsurance and copay; other PR is other member liability; CO is contractual; OA/PI other.
PR_CATEGORIES = {"1": (ADJ, "deductible", "Deductible"),
                 "2": (C4BB_ADJ, "coinsurance", "Co-insurance"),
                 "3": (ADJ, "copay", "CoPay")}
SUBMITTED = (ADJ, "submitted", "Submitted Amount")
ALLOWED = (ADJ, "eligible", "Eligible Amount")
PAID = (C4BB_ADJ, "paidtoprovider", "Paid to provider")
MEMBER = (C4BB_ADJ, "memberliability", "Member liability")
CONTRACTUAL = (LEDGER_ADJ, "contractual", "Contractual adjustment (CO)")
OTHER_ADJ = (LEDGER_ADJ, "other", "Other adjustment (OA/PI)")
OTHER_PR = (LEDGER_ADJ, "patient-other", "Other patient responsibility (PR)")
DENIAL = (C4BB_DISC, "denialreason", "Denial Reason")

ID_RE = re.compile(r"^([0-9a-f]{32})-([a-z0-9]+)(?:-([0-9]+))?$")


# ---------------------------------------------------------------- small pieces
def money(value: Money) -> dict[str, Any]:
    return {"value": value.amount, "currency": "USD"}


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(*codings: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"coding": list(codings)}
    if text:
        out["text"] = text
    return out


def category(cat: tuple[str, str, str]) -> dict[str, Any]:
    return concept(coding(*cat))


def adjustment_category(group: str, reason: str) -> tuple[str, str, str]:
    if group == "PR":
        return PR_CATEGORIES.get(reason, OTHER_PR)
    return CONTRACTUAL if group == "CO" else OTHER_ADJ


def adjustment_entry(group: str, reason: str, amount: Money) -> dict[str, Any]:
    """One CAS adjustment (net, summed by group and CARC) as an adjudication entry: the
    category says what it is, a second coding the CAS group, ``reason`` the CARC."""
    cat = adjustment_category(group, reason)
    return {"category": concept(coding(*cat), coding(CAS_GROUP, group)),
            "reason": concept(coding(CARC, reason)), "amount": money(amount)}


def amount_entry(cat: tuple[str, str, str], amount: Money) -> dict[str, Any]:
    return {"category": category(cat), "amount": money(amount)}


def resource_id(enc: Encounter, *parts: object) -> str:
    return "-".join([enc.id.hex, *(str(p) for p in parts)])


def parse_id(resource_type: str, rid: str) -> tuple[str, str, str | None] | None:
    """(encounter hex, claim index or bucket, adjudication seq) of a resource id, or None."""
    match = ID_RE.match(rid)
    if not match:
        return None
    hex_id, part, seq = match.groups()
    if resource_type == "Coverage":
        return (hex_id, part, None) if seq is None and not part.isdigit() else None
    if not part.isdigit():
        return None
    if (resource_type == "ClaimResponse") != (seq is not None):
        return None
    return hex_id, part, seq


def encounter_of(resource_type: str, rid: str) -> str | None:
    """The encounter id (UUID text) a resource id names, or None if it is not one of ours
    (the access log records reads of FHIR resources against their encounter)."""
    parts = parse_id(resource_type, rid)
    return str(UUID(hex=parts[0])) if parts else None


def _meta(touch: Touch | None, enc: Encounter, profile: str | None = None) -> dict[str, Any]:
    version = touch.version if touch else enc.version
    when = touch.recorded_at if touch else enc.modified_on
    meta: dict[str, Any] = {"versionId": str(version), "lastUpdated": when.isoformat()}
    if profile:
        meta["profile"] = [profile]
    return meta


def patient_reference(enc: Encounter) -> dict[str, Any]:
    """The surrogate reference the encounter was opened with; nothing else about the
    patient (the ledger holds no name or birth date)."""
    ref: dict[str, Any] = {"identifier": {"system": PATIENT_REF, "value": enc.patient_ref}}
    if re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", enc.patient_ref):
        ref["reference"] = f"Patient/{enc.patient_ref}"
    return ref


def _party(enc: Encounter, bucket: str) -> ResponsibleParty | None:
    return next((p for p in enc.parties if p.bucket == bucket), None)


def insurer_reference(enc: Encounter, claim: Claim) -> dict[str, Any]:
    party = _party(enc, claim.bucket)
    ref: dict[str, Any] = {"identifier": {"system": PAYER_ID, "value": claim.payer_id}}
    if party is not None and party.name:
        ref["display"] = party.name
    return ref


def provider_reference(enc: Encounter) -> dict[str, Any]:
    return {"identifier": {"system": FACILITY, "value": enc.facility_id}}


def claim_type(enc: Encounter) -> dict[str, Any]:
    kind = "institutional" if enc.claim_type == "institutional" else "professional"
    return concept(coding(CLAIM_TYPE, kind, kind.capitalize()))


def _setting(enc: Encounter) -> str:
    if enc.claim_type != "institutional":
        return "professional"
    return "inpatient" if enc.place_of_service in INPATIENT_POS else "outpatient"


def procedure_coding(code: str) -> dict[str, Any]:
    if not code:
        return coding(DATA_ABSENT, "not-applicable", "Not Applicable")
    return coding(CPT if code[0].isdigit() else HCPCS, code)


def modifier_concept(code: str) -> dict[str, Any]:
    return concept(coding(CPT if code.isdigit() else HCPCS, code))


def diagnoses(enc: Encounter, codes: list[str] | None = None) -> list[dict[str, Any]]:
    """The encounter's diagnoses (or the submitted ones), principal first."""
    institutional = enc.claim_type == "institutional"
    poa = [d.poa for d in enc.diagnoses]
    out = []
    for i, code in enumerate(codes if codes is not None else [d.code for d in enc.diagnoses],
                             start=1):
        entry: dict[str, Any] = {
            "sequence": i,
            "diagnosisCodeableConcept": concept(coding(ICD10CM, icd10cm_dotted(code))),
            "type": [concept(coding(C4BB_DX_TYPE, "principal", "principal") if i == 1 else
                             coding(C4BB_DX_TYPE, "other", "other"))
                     if institutional else
                     concept(coding(DX_TYPE, "principal" if i == 1 else "clinical"))],
        }
        if institutional and i <= len(poa) and poa[i - 1]:
            entry["onAdmission"] = concept(coding(POA, poa[i - 1]))
        out.append(entry)
    return out


def _care_team(lines: list[ServiceLine]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    team: list[dict[str, Any]] = []
    seq: dict[str, int] = {}
    for line in lines:
        if line.rendering_npi and line.rendering_npi not in seq:
            seq[line.rendering_npi] = len(team) + 1
            team.append({"sequence": len(team) + 1,
                         "provider": {"identifier": {"system": NPI,
                                                     "value": line.rendering_npi}},
                         "role": concept(coding(
                             "http://hl7.org/fhir/us/carin-bb/CodeSystem/"
                             "C4BBClaimCareTeamRole", "performing", "Performing provider"))})
    return team, seq


def _item_base(seq: int, code: str, modifiers: list[str], revenue: str, units: Decimal,
               charge: Money, pointers: list[int], served: date | None, ndc: str = ""
               ) -> dict[str, Any]:
    item: dict[str, Any] = {"sequence": seq, "productOrService": concept(
        procedure_coding(code))}
    if ndc:
        item["productOrService"]["extension"] = [{"url": NDC,
                                                  "valueCoding": coding(NDC, ndc)}]
    if pointers:
        item["diagnosisSequence"] = list(pointers)
    if revenue:
        item["revenue"] = concept(coding(REVENUE, revenue))
    if modifiers:
        item["modifier"] = [modifier_concept(m) for m in modifiers]
    if served is not None:
        item["servicedDate"] = served.isoformat()
    item["quantity"] = {"value": Decimal(units)}
    item["net"] = money(charge)
    return item


def _type_of_bill(enc: Encounter, claim: Claim) -> str:
    return "0" + FACILITY_TYPE.get(enc.place_of_service, "13") + claim.frequency


def _supporting_info(enc: Encounter, claim: Claim,
                     received: Any = None) -> list[dict[str, Any]]:
    """Institutional: type of bill, admission period (inpatient), DRG. EOBs: the date the
    claim was sent (``received``: its last ClaimSubmitted event), as CARIN's clmrecvddate."""
    info: list[dict[str, Any]] = []
    if received is not None:
        info.append({"sequence": 1, "category": concept(coding(
            C4BB_INFO, "clmrecvddate", "Claim Received Date")),
            "timingDate": received.timestamp.date().isoformat()})
    if enc.claim_type != "institutional":
        return info
    info.append({"sequence": len(info) + 1,
                 "category": concept(coding(C4BB_INFO, "typeofbill", "Type of Bill")),
                 "code": concept(coding(TYPE_OF_BILL, _type_of_bill(enc, claim)))})
    if _setting(enc) == "inpatient":
        info.append({"sequence": len(info) + 1,
                     "category": concept(coding(C4BB_INFO, "admissionperiod",
                                                "Admission Period")),
                     "timingPeriod": {"start": enc.service_from.isoformat(),
                                      "end": enc.service_to.isoformat()}})
    drg = getattr(claim, "drg", "")
    if drg:
        info.append({"sequence": len(info) + 1,
                     "category": concept(coding(C4BB_INFO, "drg", "DRG")),
                     "code": concept(coding(
                         "https://www.cms.gov/Medicare/Medicare-Fee-for-Service-Payment/"
                         "AcuteInpatientPPS/MS-DRG-Classifications-and-Software", drg))})
    return info


def _identifiers(claim: Claim) -> list[dict[str, Any]]:
    ids = [{"type": concept(coding(C4BB_ID, "uc", "Unique Claim ID")),
            "system": CLAIM_NUMBER, "value": claim.wire_number}]
    if claim.number != claim.wire_number:
        ids.append({"system": CLAIM_KEY, "value": claim.number})
    if claim.payer_icn:
        ids.append({"type": concept(coding(C4BB_ID, "payerid", "Payer ID")),
                    "system": PAYER_ICN, "value": claim.payer_icn})
    return ids


def _insurance(enc: Encounter, claim: Claim, *, with_sequence: bool) -> list[dict[str, Any]]:
    out = []
    for i, party in enumerate((p for p in enc.parties if p.kind != "patient"), start=1):
        entry: dict[str, Any] = {"focal": party.bucket == claim.bucket,
                                 "coverage": {"reference":
                                              f"Coverage/{resource_id(enc, party.bucket)}"}}
        if with_sequence:
            entry = {"sequence": i, **entry}
        out.append(entry)
    if not out or not any(e["focal"] for e in out):
        ref = {"reference": f"Coverage/{resource_id(enc, claim.bucket)}"}
        out.insert(0, {"sequence": 1, "focal": True, "coverage": ref} if with_sequence
                   else {"focal": True, "coverage": ref})
    return out


def _related(enc: Encounter, claim: Claim) -> list[dict[str, Any]]:
    out = []
    if claim.replaced_by and claim.replaced_by in enc.claims:
        out.append({"claim": {"reference": "Claim/" + resource_id(
                        enc, claim_index(enc, claim.replaced_by))},
                    "relationship": concept(
                        coding(RELATED, "associated", "Associated Claim"),
                        coding(LEDGER_RELATED, "replaced-by" if claim.frequency != "8" and
                               enc.claims[claim.replaced_by].frequency != "8"
                               else "voided-by")),
                    "reference": {"system": CLAIM_NUMBER,
                                  "value": enc.claims[claim.replaced_by].wire_number}})
    if claim.replaces and claim.replaces in enc.claims:
        original = enc.claims[claim.replaces]
        entry: dict[str, Any] = {
            "claim": {"reference": "Claim/" + resource_id(enc, claim_index(enc,
                                                                           claim.replaces))},
            "relationship": concept(coding(RELATED, "prior", "Prior Claim"))}
        if claim.original_icn or original.payer_icn:
            entry["reference"] = {"system": PAYER_ICN,
                                  "value": claim.original_icn or original.payer_icn}
        out.append(entry)
    return out


# ---------------------------------------------------------------- statuses
def eob_status(claim: Claim) -> str:
    """cancelled: voided; entered-in-error: every adjudication reversed and none standing
    (the payer took it back); active otherwise (with the net, corrected figures)."""
    if claim.status == "voided" or claim.frequency == "8":
        return "cancelled"
    if claim.adjudications and not claim.active_adjudications():
        return "entered-in-error"
    return "active"


def eob_outcome(claim: Claim) -> str:
    if claim.appeal_open or claim.status == "in_appeal":
        return "queued"
    return "complete"


def _lines(enc: Encounter, claim: Claim) -> list[ServiceLine]:
    return enc.claim_lines(claim)


def _denial(claim: Claim) -> Adjudication | None:
    """The denial still standing (denied, or under appeal); a later payment supersedes it."""
    if claim.status not in ("denied", "in_appeal"):
        return None
    for adjudication in reversed(claim.adjudications):
        if adjudication.status_code == "4" and not adjudication.reversed:
            return adjudication
    return None


def _denial_entries(denial: Adjudication | None, line_no: int | None) -> list[dict[str, Any]]:
    if denial is None:
        return []
    reasons: list[str] = []
    for adj in denial.adjustments:
        if adj.group != "PR" and adj.line_no == line_no and adj.reason not in reasons:
            reasons.append(adj.reason)
    return [{"category": category(DENIAL), "reason": concept(coding(CARC, r))}
            for r in reasons]


def _sub(a: dict[tuple[str, str], Money], b: dict[tuple[str, str], Money]
         ) -> dict[tuple[str, str], Money]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, Money.zero()) - v
    return {k: v for k, v in out.items() if not v.is_zero()}


# ---------------------------------------------------------------- resources
def explanation_of_benefit(enc: Encounter, claim: Claim, stamps: Stamps) -> dict[str, Any]:
    """The claim as the payer decided it (CARIN Blue Button shape): one item per claim line
    with its adjudication per category, claim-level adjustments (DRG payments) on the header,
    totals and payment — every amount from ``ledger.domain.figures``."""
    n = claim_index(enc, claim.number)
    setting = _setting(enc)
    lines = _lines(enc, claim)
    team, npi_seq = _care_team(lines)
    line_money = figures.claim_line_money(claim)
    all_adjustments = figures.claim_adjustments(claim)
    denial = _denial(claim)
    items = []
    line_level: dict[tuple[str, str], Money] = {}
    for line in lines:
        item = _item_base(line.line_no, line.procedure_code, list(line.modifiers),
                          line.revenue_code, line.units, line.current_charge,
                          list(line.pointers), line.line_date, line.ndc)
        if line.rendering_npi:
            item["careTeamSequence"] = [npi_seq[line.rendering_npi]]
        lm = line_money.get(line.line_no)
        adjudication = [amount_entry(SUBMITTED, line.current_charge)]
        if lm is not None:
            adjudication += [amount_entry(ALLOWED, lm.allowed), amount_entry(PAID, lm.paid),
                             amount_entry(MEMBER, lm.patient_responsibility)]
            for (group, reason), value in sorted(lm.adjustments.items()):
                adjudication.append(adjustment_entry(group, reason, value))
                line_level[(group, reason)] = line_level.get((group, reason),
                                                             Money.zero()) + value
        adjudication += _denial_entries(denial, line.line_no)
        item["adjudication"] = adjudication
        items.append(item)
    claim_level = _sub(all_adjustments, line_level)
    header = [adjustment_entry(g, r, v) for (g, r), v in sorted(claim_level.items())]
    header += _denial_entries(denial, None)
    charge = claim.submitted_charge or enc.claim_charge(claim)
    totals = [amount_entry(SUBMITTED, charge),
              amount_entry(ALLOWED, figures.claim_allowed(claim)),
              amount_entry(PAID, claim.paid),
              amount_entry(MEMBER, claim.patient_responsibility)]
    by_category: dict[tuple[str, str, str], Money] = {}
    for (group, reason), value in all_adjustments.items():
        cat = adjustment_category(group, reason)
        by_category[cat] = by_category.get(cat, Money.zero()) + value
    for cat in (PR_CATEGORIES["1"], PR_CATEGORIES["2"], PR_CATEGORIES["3"], OTHER_PR,
                CONTRACTUAL, OTHER_ADJ):
        if cat in by_category:
            totals.append(amount_entry(cat, by_category[cat]))
    last = claim.adjudications[-1] if claim.adjudications else None
    eob: dict[str, Any] = {
        "resourceType": "ExplanationOfBenefit",
        "id": resource_id(enc, n),
        "meta": _meta(stamps.last(("EOB", claim.number)), enc, PROFILES[setting]),
        "identifier": _identifiers(claim),
        "status": eob_status(claim),
        "type": claim_type(enc),
        "use": "claim",
        "patient": patient_reference(enc),
        "billablePeriod": {"start": enc.service_from.isoformat(),
                           "end": enc.service_to.isoformat()},
        "created": (last.adjudication_date if last else enc.service_to).isoformat(),
        "insurer": insurer_reference(enc, claim),
        "provider": provider_reference(enc),
        "payee": {"type": concept(coding(C4BB_PAYEE, "provider", "Provider")),
                  "party": provider_reference(enc)},
        "outcome": eob_outcome(claim),
        "disposition": claim.status,
        "insurance": _insurance(enc, claim, with_sequence=False),
        "diagnosis": diagnoses(enc),
        "item": items,
        "total": totals,
        "payment": {"type": concept(coding(PAYMENT_TYPE, "complete" if
                                           claim.status in ("paid", "closed") else "partial")),
                    "amount": money(claim.paid)},
    }
    if setting != "professional":
        eob["subType"] = concept(coding(C4BB_SUBTYPE, setting, setting.capitalize()))
    if last is not None:
        eob["payment"]["date"] = last.adjudication_date.isoformat()
    if team:
        eob["careTeam"] = team
    info = _supporting_info(enc, claim, stamps.submitted.get(claim.number))
    if info:
        eob["supportingInfo"] = info
    if header:
        eob["adjudication"] = header
    related = _related(enc, claim)
    if related:
        eob["related"] = related
    if not eob["diagnosis"]:
        del eob["diagnosis"]
    _order(eob)
    return eob


def claim_resource(enc: Encounter, claim: Claim, stamps: Stamps) -> dict[str, Any]:
    """What was submitted (the last ClaimSubmitted's diagnoses and lines); a claim not yet
    submitted shows its current lines as a draft; a crossover claim (the primary payer
    forwarded it) shows the lines the primary was billed for."""
    n = claim_index(enc, claim.number)
    submitted = stamps.submitted.get(claim.number)
    current = {ln.line_no: ln for ln in enc.claim_lines(claim)}
    items = []
    if submitted is not None:
        codes = [str(c) for c in submitted.diagnoses]
        for raw in submitted.lines:
            line = current.get(int(raw["line_no"])) or enc.lines.get(str(raw["line_no"]))
            items.append(_item_base(
                int(raw["line_no"]), raw["procedure_code"], list(raw["modifiers"]),
                raw.get("revenue_code", ""), Decimal(str(raw["units"])),
                raw["charge"] if isinstance(raw["charge"], Money) else
                Money(Decimal(str(raw["charge"]))), list(raw["pointers"]),
                line.line_date if line else None, line.ndc if line else ""))
        total = submitted.total_charge
    else:
        codes = [d.code for d in enc.diagnoses]
        for line in current.values():
            items.append(_item_base(line.line_no, line.procedure_code, list(line.modifiers),
                                    line.revenue_code, line.units, line.current_charge,
                                    list(line.pointers), line.line_date, line.ndc))
        total = enc.claim_charge(claim)
    if claim.status == "voided" or claim.frequency == "8":
        status = "cancelled"
    elif submitted is None and not claim.crossover:
        status = "draft"
    else:
        status = "active"
    created = stamps.claim_created.get(claim.number)
    resource: dict[str, Any] = {
        "resourceType": "Claim",
        "id": resource_id(enc, n),
        "meta": _meta(stamps.last(("Claim", claim.number)), enc),
        "identifier": _identifiers(claim),
        "status": status,
        "type": claim_type(enc),
        "use": "claim",
        "patient": patient_reference(enc),
        "billablePeriod": {"start": enc.service_from.isoformat(),
                           "end": enc.service_to.isoformat()},
        "created": (created.isoformat() if created else enc.created_on.isoformat()),
        "insurer": insurer_reference(enc, claim),
        "provider": provider_reference(enc),
        "priority": concept(coding(PRIORITY, "normal")),
        "insurance": _insurance(enc, claim, with_sequence=True),
        "item": items,
        "total": money(total),
    }
    if enc.claim_type == "institutional":
        resource["subType"] = concept(coding(C4BB_SUBTYPE, _setting(enc)))
        resource["supportingInfo"] = _supporting_info(enc, claim)
    dx = diagnoses(enc, codes)
    if dx:
        resource["diagnosis"] = dx
    related = [r for r in _related(enc, claim)
               if r["relationship"]["coding"][0]["code"] == "prior"]
    if related:
        resource["related"] = related
    _order(resource)
    return resource


def claim_response(enc: Encounter, claim: Claim, adjudication: Adjudication,
                   stamps: Stamps) -> dict[str, Any]:
    """What one remittance said about the claim (one CLP loop): a reversal (CLP02 = 22) is a
    ClaimResponse of its own with the negated amounts, so the responses of a claim add up to
    the claim's net figures; the adjudication it reversed says so in ``processNote``."""
    n = claim_index(enc, claim.number)
    items = []
    line_level: dict[tuple[str, str], Money] = {}
    for result in adjudication.lines:
        entries = [amount_entry(SUBMITTED, result.submitted)]
        if result.allowed is not None:
            entries.append(amount_entry(ALLOWED, result.allowed))
        entries.append(amount_entry(PAID, result.paid))
        sums: dict[tuple[str, str], Money] = {}
        for adj in result.adjustments:
            sums[(adj.group, adj.reason)] = sums.get((adj.group, adj.reason),
                                                     Money.zero()) + adj.amount
        for (group, reason), value in sorted(sums.items()):
            entries.append(adjustment_entry(group, reason, value))
            line_level[(group, reason)] = line_level.get((group, reason), Money.zero()) + value
        for remark in result.remarks:
            entries.append({"category": category(DENIAL if adjudication.status_code == "4"
                                                 else (C4BB_DISC, "adjustmentreason",
                                                       "Adjustment Reason")),
                            "reason": concept(coding(RARC, remark))})
        items.append({"itemSequence": result.line_no, "adjudication": entries})
    all_sums: dict[tuple[str, str], Money] = {}
    for adj in adjudication.adjustments:
        all_sums[(adj.group, adj.reason)] = all_sums.get((adj.group, adj.reason),
                                                         Money.zero()) + adj.amount
    header = [adjustment_entry(g, r, v) for (g, r), v in sorted(_sub(all_sums,
                                                                     line_level).items())]
    reversal = adjudication.status_code == "22"
    notes = []
    if adjudication.reversed and not reversal:
        notes.append({"number": 1, "type": "display",
                      "text": f"reversed by adjudication {adjudication.reversed_by}"})
    if reversal:
        target = next((a.seq for a in claim.adjudications
                       if a.reversed_by == adjudication.seq), None)
        notes.append({"number": 1, "type": "display",
                      "text": f"reversal of adjudication {target}" if target else "reversal"})
    resource: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "id": resource_id(enc, n, adjudication.seq),
        "meta": _meta(stamps.last(("CR", claim.number, str(adjudication.seq))), enc),
        "identifier": [{"system": PAYER_ICN, "value": adjudication.payer_icn}]
        if adjudication.payer_icn else [],
        "status": "active",
        "type": claim_type(enc),
        "use": "claim",
        "patient": patient_reference(enc),
        "created": adjudication.adjudication_date.isoformat(),
        "insurer": insurer_reference(enc, claim),
        "requestor": provider_reference(enc),
        "request": {"reference": f"Claim/{resource_id(enc, n)}"},
        "outcome": "complete",
        "disposition": f"CLP02 {adjudication.status_code}",
        "item": items,
        "total": [amount_entry(SUBMITTED, adjudication.charge),
                  amount_entry(PAID, adjudication.paid),
                  amount_entry(MEMBER, adjudication.patient_responsibility)],
        "payment": {"type": concept(coding(PAYMENT_TYPE, "complete")),
                    "date": adjudication.adjudication_date.isoformat(),
                    "amount": money(adjudication.paid)},
    }
    if adjudication.trace_number:
        resource["payment"]["identifier"] = {"system": f"{LEDGER}:trace-number",
                                             "value": adjudication.trace_number}
    if header:
        resource["adjudication"] = header
    if notes:
        resource["processNote"] = notes
    if not resource["identifier"]:
        del resource["identifier"]
    if not items:
        del resource["item"]
    _order(resource)
    return resource


def coverage(enc: Encounter, party: ResponsibleParty, stamps: Stamps) -> dict[str, Any]:
    """One responsible party in COB order (``order``; the patient last). No member id: the
    ledger keeps it in the event only (minimum necessary)."""
    order = next(i for i, p in enumerate(enc.parties, start=1) if p is party)
    if party.kind == "patient":
        kind = concept(coding(SELF_PAY, "pay", "Pay"))
        payor = [patient_reference(enc)]
    else:
        kind = concept(coding(ACT_CODE, "WCBPOL" if party.kind == "business" else "HIP",
                              "workers compensation / business policy"
                              if party.kind == "business" else "health insurance plan policy"),
                       text=party.kind)
        payor = [{"identifier": {"system": PAYER_ID, "value": party.payer_id},
                  **({"display": party.name} if party.name else {})}]
    resource: dict[str, Any] = {
        "resourceType": "Coverage",
        "id": resource_id(enc, party.bucket),
        "meta": _meta(stamps.last(("Coverage", party.bucket)), enc, PROFILES["coverage"]),
        "status": "active",
        "type": kind,
        "beneficiary": patient_reference(enc),
        "relationship": concept(coding(SUBSCRIBER, "self")),
        "period": {"start": enc.service_from.isoformat(), "end": enc.service_to.isoformat()},
        "payor": payor,
        "order": order,
    }
    _order(resource)
    return resource


def _order(resource: dict[str, Any]) -> None:
    """resourceType, id, meta first (readability of the JSON); dicts keep insertion order."""
    head = {k: resource.pop(k) for k in ("resourceType", "id", "meta") if k in resource}
    rest = dict(resource)
    resource.clear()
    resource.update(head)
    resource.update(rest)


# ---------------------------------------------------------------- enumeration
RESOURCE_TYPES = ("ExplanationOfBenefit", "Claim", "ClaimResponse", "Coverage")


def has_eob(claim: Claim) -> bool:
    return bool(claim.adjudications)


def resources(enc: Encounter, stamps: Stamps, resource_type: str) -> list[dict[str, Any]]:
    """Every resource of one type the encounter yields, in a stable order."""
    if resource_type == "Coverage":
        return [coverage(enc, p, stamps) for p in enc.parties]
    out = []
    for claim in enc.claims.values():
        if resource_type == "Claim":
            out.append(claim_resource(enc, claim, stamps))
        elif resource_type == "ExplanationOfBenefit" and has_eob(claim):
            out.append(explanation_of_benefit(enc, claim, stamps))
        elif resource_type == "ClaimResponse":
            out.extend(claim_response(enc, claim, a, stamps) for a in claim.adjudications)
    return out


def touch_key(enc: Encounter, resource_type: str, part: str, seq: str | None) -> Key | None:
    """The stamps key of a resource id's parts, or None if the encounter has no such one."""
    if resource_type == "Coverage":
        return ("Coverage", part) if _party(enc, part) is not None else None
    numbers = list(enc.claims)
    index = int(part)
    if not 1 <= index <= len(numbers):
        return None
    claim = enc.claims[numbers[index - 1]]
    if resource_type == "Claim":
        return ("Claim", claim.number)
    if resource_type == "ExplanationOfBenefit":
        return ("EOB", claim.number) if has_eob(claim) else None
    if resource_type == "ClaimResponse" and seq is not None and \
            1 <= int(seq) <= len(claim.adjudications):
        return ("CR", claim.number, seq)
    return None


def build(enc: Encounter, stamps: Stamps, resource_type: str, part: str,
          seq: str | None) -> dict[str, Any] | None:
    """One resource by the parts of its id, or None when the encounter has no such one."""
    key = touch_key(enc, resource_type, part, seq)
    if key is None:
        return None
    if resource_type == "Coverage":
        party = _party(enc, part)
        return coverage(enc, party, stamps) if party else None
    claim = enc.claims[key[1]]
    if resource_type == "Claim":
        return claim_resource(enc, claim, stamps)
    if resource_type == "ExplanationOfBenefit":
        return explanation_of_benefit(enc, claim, stamps)
    return claim_response(enc, claim, claim.adjudications[int(seq or 0) - 1], stamps)


__all__ = ["RESOURCE_TYPES", "build", "claim_resource", "claim_response", "coverage",
           "explanation_of_benefit", "parse_id", "resources", "touch_key", "Adjustment"]
