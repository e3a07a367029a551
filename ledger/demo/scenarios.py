"""The demo's seed data: the scenarios of the domain reference (synthetic, no PHI), built
through the application layer, and the small builders they are written with (open an
encounter, code it, add lines, create, scrub and submit a claim, post an 835 adjudication).

``ledger serve --demo`` loads these scenarios (``ledger/demo/__init__.py``); the tests and
benchmarks build their encounters with the same builders (``tests/builders.py`` re-exports
them and adds the test-only actors)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from ledger.domain.model import Actor, Adjustment, LineResult, RemittanceRef, ResponsibleParty
from ledger.domain.values import Money

CODER_A = Actor("coder-a", "coder")
BILLER = Actor("biller-1", "biller")
DOS = date(2026, 3, 10)
NPI = "1234567893"


def m(text: str) -> Money:
    return Money.parse(text)


def parties(payer: str = "PAYER-A", secondary: str | None = None) -> list[ResponsibleParty]:
    out = [ResponsibleParty("primary", "insurer", payer, "Plan A", "MEM-0001")]
    if secondary:
        out.append(ResponsibleParty("secondary", "insurer", secondary, "Plan B", "MEM-0002"))
    out.append(ResponsibleParty("patient", "patient", "", "", ""))
    return out


def open_encounter(app: Any, *, claim_type: str = "professional", dos: date = DOS,
                   dos_to: date | None = None, payer: str = "PAYER-A",
                   patient_ref: str = "PT-1001", pos: str = "11",
                   secondary: str | None = None) -> UUID:
    result = app.open_encounter(
        actor=BILLER, facility_id="FAC-01", patient_ref=patient_ref, service_from=dos,
        service_to=dos_to, place_of_service=pos,
        responsible_parties=parties(payer, secondary), claim_type=claim_type)
    return result.encounter_id


def code(app: Any, eid: UUID, *codes: str, actor: Actor = CODER_A) -> None:
    for c in codes:
        app.execute(eid, "code_diagnosis", actor=actor, code=c)


def line(app: Any, eid: UUID, proc: str, charge: str, pointers: list[int], units: Any = 1,
         modifiers: list[str] | None = None, **kw: Any) -> int:
    result = app.execute(eid, "add_service_line", actor=CODER_A, procedure_code=proc,
                         charge=charge, pointers=pointers, units=units, modifiers=modifiers,
                         rendering_npi=NPI, **kw)
    return result.value


def create_scrub_submit(app: Any, eid: UUID, claim_number: str, **create: Any) -> None:
    app.execute(eid, "create_claim", actor=BILLER, claim_number=claim_number, **create)
    findings = app.scrub_claim(eid, claim_number, actor=BILLER).value
    assert not [f for f in findings if f.severity == "error"], findings
    app.execute(eid, "submit_claim", actor=BILLER, claim_number=claim_number,
                interchange_control="000000001", group_control="1", transaction_control="0001")


def adj(group: str, reason: str, amount: str) -> Adjustment:
    return Adjustment(group, reason, m(amount))


def lr(line_no: int, proc: str, submitted: str, paid: str, allowed: str | None,
       *adjs: Adjustment, units: int = 1, remarks: tuple[str, ...] = ()) -> LineResult:
    return LineResult(line_no, proc, m(submitted), m(paid), m(allowed) if allowed else None,
                      Decimal(units), tuple(adjs), remarks)


def remit(trace: str, payer: str = "PAYER-A", paid_on: date = date(2026, 4, 20)) -> RemittanceRef:
    return RemittanceRef(payer, trace, f"sha256:{trace}", paid_on)


def post(app: Any, eid: UUID, claim_number: str, *, status: str, charge: str, paid: str,
         pr: str, icn: str, trace: str, lines: list[LineResult] | None = None,
         claim_adjs: list[Adjustment] | None = None, remarks: list[str] | None = None,
         paid_on: date = date(2026, 4, 20)) -> Any:
    return app.execute(
        eid, "post_adjudication", actor=BILLER, claim_number=claim_number, status_code=status,
        charge=m(charge), paid=m(paid), patient_responsibility=m(pr), payer_icn=icn,
        adjudication_date=paid_on, remittance=remit(trace, paid_on=paid_on),
        claim_adjustments=claim_adjs or [], lines=lines or [], remarks=remarks or [])


# ---------------------------------------------------------------- the scenarios
def scenario_1(app: Any) -> UUID:
    """Clean claim, copay, CO-45."""
    eid = open_encounter(app)
    code(app, eid, "E11.9", "I10")
    l1 = line(app, eid, "99214", "180.00", [1, 2])
    l2 = line(app, eid, "83036", "45.00", [1])
    l3 = line(app, eid, "36415", "15.00", [1])
    create_scrub_submit(app, eid, "S1-0001")
    post(app, eid, "S1-0001", status="1", charge="240.00", paid="114.82", pr="30.00",
         icn="ICN-S1", trace="TRN-S1", lines=[
             lr(l1, "99214", "180.00", "98.50", "128.50", adj("CO", "45", "51.50"),
                adj("PR", "3", "30.00")),
             lr(l2, "83036", "45.00", "13.32", "13.32", adj("CO", "45", "31.68")),
             lr(l3, "36415", "15.00", "3.00", "3.00", adj("CO", "45", "12.00")),
         ])
    return eid


def scenario_2(app: Any) -> UUID:
    """Deductible + coinsurance."""
    eid = open_encounter(app, patient_ref="PT-1002")
    code(app, eid, "M54.50")
    l1 = line(app, eid, "99203", "250.00", [1])
    l2 = line(app, eid, "72100", "120.00", [1])
    create_scrub_submit(app, eid, "S2-0001")
    post(app, eid, "S2-0001", status="1", charge="370.00", paid="80.00", pr="120.00",
         icn="ICN-S2", trace="TRN-S2", lines=[
             lr(l1, "99203", "250.00", "48.00", "160.00", adj("CO", "45", "90.00"),
                adj("PR", "1", "100.00"), adj("PR", "2", "12.00")),
             lr(l2, "72100", "120.00", "32.00", "40.00", adj("CO", "45", "80.00"),
                adj("PR", "2", "8.00")),
         ])
    return eid


def scenario_3_denial(app: Any) -> tuple[UUID, int]:
    """Denial (CO-50, N115): nothing billed to the patient."""
    eid = open_encounter(app, patient_ref="PT-1003")
    code(app, eid, "M54.50")
    l1 = line(app, eid, "97110", "180.00", [1], units=4, modifiers=["GP"])
    create_scrub_submit(app, eid, "S3-0001")
    post(app, eid, "S3-0001", status="4", charge="180.00", paid="0.00", pr="0.00",
         icn="ICN-S3A", trace="TRN-S3A", lines=[
             lr(l1, "97110", "180.00", "0.00", None, adj("CO", "50", "180.00"), units=4,
                remarks=("N115",)),
         ])
    return eid, l1


def scenario_3_appeal_paid(app: Any, eid: UUID, l1: int) -> None:
    app.execute(eid, "file_appeal", actor=BILLER, claim_number="S3-0001",
                filed_on=date(2026, 5, 1), reason="medical necessity documented",
                documents=["progress-notes"])
    app.execute(eid, "decide_appeal", actor=BILLER, claim_number="S3-0001",
                outcome="overturned", decided_on=date(2026, 6, 1), reason="payer letter")
    post(app, eid, "S3-0001", status="1", charge="180.00", paid="112.64", pr="28.16",
         icn="ICN-S3B", trace="TRN-S3B", paid_on=date(2026, 6, 15), lines=[
             lr(l1, "97110", "180.00", "112.64", "140.80", adj("CO", "45", "39.20"),
                adj("PR", "2", "28.16"), units=4),
         ])


def scenario_8_inpatient(app: Any) -> UUID:
    """Inpatient total knee replacement (837I), paid by DRG at claim level."""
    eid = open_encounter(app, claim_type="institutional", dos=date(2026, 3, 2),
                         dos_to=date(2026, 3, 5), pos="21", patient_ref="PT-1008")
    code(app, eid, "M17.11")
    rows = [("0120", "", "3600.00", 3, "DA"), ("0360", "", "9800.00", 1, "UN"),
            ("0278", "", "6500.00", 1, "UN"), ("0272", "", "1150.00", 1, "UN"),
            ("0250", "", "640.00", 1, "UN"), ("0370", "", "1900.00", 1, "UN"),
            ("0420", "97110", "480.00", 4, "UN")]
    for rev, proc, charge, units, basis in rows:
        app.execute(eid, "add_service_line", actor=CODER_A, procedure_code=proc or None,
                    revenue_code=rev, charge=charge, units=units, unit_type=basis,
                    pointers=[1], line_date=date(2026, 3, 2))
    create_scrub_submit(app, eid, "S8-0001")
    post(app, eid, "S8-0001", status="1", charge="24070.00", paid="12650.00", pr="1600.00",
         icn="ICN-S8", trace="TRN-S8", claim_adjs=[adj("CO", "45", "9820.00"),
                                                   adj("PR", "1", "1600.00")])
    return eid
