"""The claim scrubber's rules, one by one, over an in-memory encounter (no database).

Some rules guard states the domain's commands already refuse (more than 12 diagnoses, a
pointer to a missing diagnosis, …); those tests put the encounter in that state directly,
as an imported or migrated claim could be."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ledger.codes.edits import CMSEditTables
from ledger.codes.procedures import HcpcsCodeSet
from ledger.domain.codeset import CodeVerdict
from ledger.domain.encounter import Encounter
from ledger.domain.errors import RuleViolation
from ledger.domain.model import Actor, Diagnosis, ResponsibleParty
from ledger.domain.scrubber import (
    RULES,
    RULESET_VERSION,
    EditTables,
    MUELimit,
    PTPEdit,
    scrub,
)
from ledger.domain.values import Money
from tests.fakes import FakeCodeSet

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "codes"
CS = FakeCodeSet()
CODER = Actor("coder-a", "coder")
BILLER = Actor("biller-1", "biller")
DOS = date(2026, 3, 10)
NPI, OTHER_NPI = "1234567893", "1245319599"
NDC = "00409-4888-02"
TABLES = CMSEditTables(str(FIXTURES / "ncci_ptp_test.txt"), str(FIXTURES / "mue_test.csv"),
                       HcpcsCodeSet(FIXTURES / "hcpcs_test_anweb.txt"))


def encounter(*dx: str, days: int = 0) -> Encounter:
    enc = Encounter.open(
        facility_id="FAC", patient_ref="PT-1", service_from=DOS,
        service_to=date(2026, 3, 10 + days), place_of_service="11", actor=BILLER,
        responsible_parties=[ResponsibleParty("primary", "insurer", "PAYER-A"),
                             ResponsibleParty("patient", "patient", "")])
    for code in dx:
        enc.code_diagnosis(code, code_set=CS, actor=CODER)
    return enc


def line(enc: Encounter, code: str, charge: str = "100.00", **kw) -> int:
    kw.setdefault("pointers", [1] if enc.diagnoses else None)
    kw.setdefault("rendering_npi", NPI)
    return enc.add_service_line(procedure_code=code, charge=charge, actor=CODER, **kw)


def run(enc: Encounter, tables: EditTables | None = TABLES, cs=CS):
    if "C-1" not in enc.claims:
        enc.create_claim("C-1", actor=BILLER)
    return scrub(enc, enc.claims["C-1"], cs, tables)


def ids(findings) -> list[str]:
    return [f.rule_id for f in findings]


def test_a_clean_claim_has_no_findings():
    enc = encounter("J45.901")
    line(enc, "99213", "130.00", modifiers=["25"])
    line(enc, "96372", "40.00")
    line(enc, "J1100", "40.00", units=8, ndc=NDC, ndc_quantity=1)
    assert run(enc) == []


# ---------------------------------------------------------------- diagnoses
def test_missing_principal_diagnosis():
    enc = encounter()
    line(enc, "99213")
    assert ids(run(enc)) == ["DX001", "LN001"]


class Verdicts:
    """A code set that says what the test needs about each code."""

    def __init__(self, **verdicts: tuple[str, str]) -> None:
        self.verdicts = verdicts

    def check(self, code: str, date_of_service: date) -> CodeVerdict:
        rule, message = self.verdicts.get(code, ("", ""))
        return CodeVerdict(code, not rule, "V", rule, message)


def test_non_billable_and_not_valid_on_dos_diagnoses():
    enc = encounter("R10.31", "E11.9")
    line(enc, "99213", pointers=[1, 2])
    cs = Verdicts(R1031=("icd10cm.not_billable", "'R10.31' is a subcategory"),
                  E119=("icd10cm.dos", "'E11.9' is not valid on the date of service"))
    findings = run(enc, cs=cs)
    assert ids(findings) == ["DX002", "DX003"]
    assert findings[0].message == "diagnosis 1 (R10.31): 'R10.31' is a subcategory"
    assert findings[0].severity == "error" and findings[0].line_no is None


def test_more_than_12_diagnoses():
    enc = encounter("E11.9")
    line(enc, "99213")
    enc.diagnoses.extend(Diagnosis(f"Z{i:04d}", "", "V") for i in range(12))  # imported state
    findings = [f for f in run(enc) if f.rule_id == "DX004"]
    assert findings and findings[0].message == "13 diagnoses; at most 12 on a professional claim"


# ---------------------------------------------------------------- claim level
def test_claim_without_lines_and_7_or_8_without_icn_and_total_mismatch():
    enc = encounter("E11.9")
    line(enc, "99213")
    enc.create_claim("C-1", actor=BILLER)
    claim = enc.claims["C-1"]
    claim.frequency = "7"  # an imported replacement claim that lost its REF*F8
    enc.claim_charge = lambda c: Money.parse("999.00")  # a stated CLM02 that disagrees
    findings = run(enc)
    assert ids(findings) == ["CLM002", "CLM003"]
    assert "original claim's payer ICN" in findings[0].message
    assert findings[1].message == "claim total 999.00 differs from the sum of its lines 100.00"
    claim.line_nos = []
    assert "CLM001" in ids(run(enc))


# ---------------------------------------------------------------- lines
def test_line_rules():
    enc = encounter("E11.9", "I10")
    n1 = line(enc, "99213", pointers=[1, 2])
    n2 = line(enc, "36415", "0.00", pointers=[1])
    enc.lines[str(n1)].pointers = [1, 2, 3, 4, 5]  # imported state: 5 pointers, 3 missing dx
    enc.lines[str(n1)].modifiers = ["25", "59", "76", "77", "91"]
    enc.lines[str(n1)].units = Decimal(0)
    enc.lines[str(n1)].rendering_npi = "1234567890"
    findings = run(enc)
    got = {(f.rule_id, f.line_no) for f in findings}
    assert got == {("LN002", n1), ("LN003", n1), ("LN004", n1), ("LN005", n1), ("LN006", n2),
                   ("LN007", n1)}
    assert sum(1 for f in findings if f.rule_id == "LN002") == 3
    ln6 = next(f for f in findings if f.rule_id == "LN006")
    assert ln6.message == f"line {n2} (36415): charge 0.00 must be greater than 0"


def test_line_without_pointer_and_duplicate_line():
    enc = encounter("E11.9")
    line(enc, "99213")
    second = line(enc, "99213")
    line(enc, "81002", pointers=None)
    assert ids(run(enc)) == ["LN009", "LN001", "MUE001"]  # 99213: MUE 1 per day
    findings = run(enc, EditTables())
    assert ids(findings) == ["LN009", "LN001"]
    assert findings[0].line_no == second and "duplicates line 1" in findings[0].message
    enc2 = encounter("E11.9")
    line(enc2, "99213")
    line(enc2, "99213", rendering_npi=OTHER_NPI)  # another provider: not a duplicate
    assert "LN009" not in ids(run(enc2))


def test_drug_j_code_needs_an_ndc_and_ndc_needs_a_quantity():
    enc = encounter("J45.901")
    n = line(enc, "J3301", "30.00")
    findings = run(enc)
    assert ids(findings) == ["LN008"] and findings[0].line_no == n
    assert "drug code J3301 needs the NDC" in findings[0].message
    enc.revise_service_line(n, ndc=NDC, actor=CODER, reason="add NDC")
    findings = run(enc)
    assert [(f.rule_id, f.severity) for f in findings] == [("LN010", "warning")]
    enc.scrub_claim("C-1", ruleset_version=RULESET_VERSION, findings=findings, actor=BILLER)
    enc.submit_claim("C-1", actor=BILLER)  # warnings do not block submission


def test_hcpcs_codes_checked_against_the_loaded_file():
    enc = encounter("E11.9")
    line(enc, "S9999", "10.00")
    line(enc, "J9999", "10.00", ndc=NDC, ndc_quantity=1)
    findings = run(enc)
    assert ids(findings) == ["PX002", "PX001"]
    assert "discontinued after 2025-12-31" in findings[0].message
    enc2 = encounter("E11.9")
    line(enc2, "S9999", "10.00")
    assert run(enc2, EditTables()) == [], "no HCPCS file loaded: format only"


# ---------------------------------------------------------------- NCCI PTP
def test_ncci_indicator_1_needs_a_bypass_modifier_on_the_right_line():
    enc = encounter("J45.901")
    em = line(enc, "99213", "130.00")
    inj = line(enc, "96372", "40.00")
    findings = run(enc)
    assert ids(findings) == ["NCCI002"] and findings[0].line_no == em
    assert "append modifier 25 to 99213" in findings[0].message
    assert "column 1 96372, column 2 99213, modifier indicator 1" in findings[0].message
    enc.revise_service_line(inj, modifiers=["25"], actor=CODER, reason="test")
    assert ids(run(enc)) == ["NCCI002"], "25 on the injection (not an E/M) bypasses nothing"
    enc.revise_service_line(inj, modifiers=[], actor=CODER, reason="test")
    enc.revise_service_line(em, modifiers=["25"], actor=CODER, reason="test")
    assert run(enc) == []
    enc.revise_service_line(em, modifiers=[], actor=CODER, reason="test")
    enc.revise_service_line(inj, modifiers=["XU"], actor=CODER, reason="test")
    assert run(enc) == []


def test_ncci_indicator_0_is_never_bypassed_and_9_never_applies():
    enc = encounter("J45.901")
    line(enc, "96372", "40.00")
    n = line(enc, "99211", "30.00", modifiers=["25"])
    findings = run(enc)
    assert ids(findings) == ["NCCI001"] and findings[0].line_no == n
    assert "whatever the modifier" in findings[0].message
    enc2 = encounter("J45.901")
    line(enc2, "97597", "40.00")
    line(enc2, "11042", "30.00")
    assert run(enc2) == []


def test_ncci_pairs_apply_on_the_same_day_and_provider_while_in_force():
    enc = encounter("J45.901", days=1)
    line(enc, "96372", "40.00")
    line(enc, "99213", "130.00", line_date=date(2026, 3, 11))
    assert run(enc) == [], "different dates of service"
    enc2 = encounter("J45.901")
    line(enc2, "96372", "40.00")
    line(enc2, "99213", "130.00", rendering_npi=OTHER_NPI)
    assert run(enc2) == [], "different providers"
    dated = EditTables(ptp={("96372", "99213"): PTPEdit("96372", "99213", "1",
                                                        effective=date(2026, 4, 1))})
    enc3 = encounter("J45.901")
    line(enc3, "96372", "40.00")
    line(enc3, "99213", "130.00")
    assert run(enc3, dated) == [], "the edit starts after the date of service"


# ---------------------------------------------------------------- MUE
def test_mue_per_date_of_service_sums_the_lines():
    enc = encounter("J45.901")
    n = line(enc, "J1100", "50.00", units=10, ndc=NDC, ndc_quantity=1)
    findings = run(enc)
    assert ids(findings) == ["MUE001"] and findings[0].line_no == n
    assert findings[0].message == (f"line {n}: 10 units of J1100 on 2026-03-10 exceed its "
                                   "medically unlikely edit of 8 per date of service")
    enc = encounter("J45.901")
    n = line(enc, "J1100", "25.00", units=5, ndc=NDC, ndc_quantity=1)
    m = line(enc, "J1100", "25.00", units=5, ndc="00409-4888-03", ndc_quantity=1)
    findings = run(enc)
    assert ids(findings) == ["MUE001"] and findings[0].line_no == m
    assert f"lines {n}, {m}: 10 units" in findings[0].message


def test_mue_per_line():
    tables = EditTables(mue={"36415": MUELimit("36415", 1, "1"), "81002": 2})
    enc = encounter("E11.9")
    n = line(enc, "36415", "15.00", units=2)
    line(enc, "81002", "10.00", units=2)
    findings = run(enc, tables)
    assert ids(findings) == ["MUE001"] and findings[0].line_no == n
    assert "per line" in findings[0].message


# ---------------------------------------------------------------- submission
def test_submission_is_refused_while_error_findings_stand():
    enc = encounter("J45.901")
    em = line(enc, "99213", "130.00")
    line(enc, "96372", "40.00")
    findings = run(enc)
    assert not enc.scrub_claim("C-1", ruleset_version=RULESET_VERSION, findings=findings,
                               actor=BILLER)
    with pytest.raises(RuleViolation) as err:
        enc.submit_claim("C-1", actor=BILLER)
    assert err.value.rule == "submit.requires_passing_scrub"
    enc.revise_service_line(em, modifiers=["25"], actor=CODER, reason="distinct E/M")
    with pytest.raises(RuleViolation):
        enc.submit_claim("C-1", actor=BILLER)  # the fix is not scrubbed yet
    assert enc.scrub_claim("C-1", ruleset_version=RULESET_VERSION, findings=run(enc),
                           actor=BILLER)
    enc.submit_claim("C-1", actor=BILLER)
    assert enc.claims["C-1"].status == "submitted"


def test_every_reported_rule_is_in_the_catalogue():
    assert set(RULES) >= {"DX001", "DX002", "DX003", "DX004", "CLM001", "CLM002", "CLM003",
                          "LN001", "LN002", "LN003", "LN004", "LN005", "LN006", "LN007", "LN008",
                          "LN009", "LN010", "PX001", "PX002", "NCCI001", "NCCI002", "MUE001"}
    import inspect

    import ledger.domain.scrubber as module

    emitted = set()
    for token in inspect.getsource(module).split('"'):
        if token[:2] in ("DX", "LN", "PX", "MU", "NC", "CL") and token[-3:].isdigit():
            emitted.add(token)
    assert emitted <= set(RULES)
