"""Domain rules of the Encounter aggregate: each invariant of the domain reference has a test.
No database: pure Python with a small fake code set."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from ledger.domain.encounter import Encounter
from ledger.domain.errors import (
    IllegalTransition,
    InvalidCode,
    InvalidValue,
    LedgerError,
    NotFound,
    RuleViolation,
)
from ledger.domain.model import Actor, ResponsibleParty
from ledger.domain.scrubber import scrub
from ledger.domain.values import Money
from tests.builders import adj, lr, m, remit
from tests.fakes import FakeCodeSet

CS = FakeCodeSet()
CODER = Actor("coder-a", "coder")
BILLER = Actor("biller-1", "biller")
DOS = date(2026, 3, 10)


def new_encounter(secondary: bool = False) -> Encounter:
    parties = [ResponsibleParty("primary", "insurer", "PAYER-A")]
    if secondary:
        parties.append(ResponsibleParty("secondary", "insurer", "PAYER-B"))
    parties.append(ResponsibleParty("patient", "patient", ""))
    return Encounter.open(facility_id="FAC", patient_ref="PT-1", service_from=DOS,
                          service_to=None, place_of_service="11", responsible_parties=parties,
                          actor=BILLER)


def coded(charge: str = "130.00", proc: str = "99213") -> Encounter:
    enc = new_encounter()
    enc.code_diagnosis("R10.31", code_set=CS, actor=CODER)
    enc.add_service_line(procedure_code=proc, charge=charge, pointers=[1], actor=CODER)
    return enc


def submitted(charge: str = "130.00") -> Encounter:
    enc = coded(charge)
    enc.create_claim("C-1", actor=BILLER)
    assert enc.scrub_claim("C-1", ruleset_version="t", findings=scrub(enc, enc.claims["C-1"], CS),
                           actor=BILLER)
    enc.submit_claim("C-1", actor=BILLER)
    return enc


def pay(enc: Encounter, *, status="1", charge="130.00", paid="67.00", co="38.00", pr="25.00",
        icn="A0004", trace="T1", line_no=1, proc="99213", claim="C-1") -> bool:
    adjs = [a for a in (adj("CO", "45", co) if co != "0.00" else None,
                        adj("PR", "3", pr) if pr != "0.00" else None) if a]
    return enc.post_adjudication(
        claim, status_code=status, charge=m(charge), paid=m(paid), patient_responsibility=m(pr),
        payer_icn=icn, adjudication_date=date(2026, 4, 1), remittance=remit(trace),
        claim_adjustments=[], lines=[lr(line_no, proc, charge, paid, None, *adjs)], actor=BILLER)


def conserved(enc: Encounter) -> bool:
    """total charge = payer payments + payer adjustments (non-PR) + patient payments
    + write-offs - refunds + open balances, for every encounter state."""
    payer_paid = sum((c.paid for c in enc.claims.values()), Money.zero())
    booked = sum((c.adjusted for c in enc.claims.values()), Money.zero())
    assert booked == _adjusted(enc) or any(c.prior_payer_impact for c in enc.claims.values())
    taken_back = sum((c.recouped for c in enc.claims.values() if c.status != "voided"),
                     Money.zero())
    return enc.total_charge == payer_paid + booked - taken_back + enc.patient_paid \
        - enc.refunded + sum(enc.buckets.values(), Money.zero()) + _written_off(enc) \
        + enc.voided


def _adjusted(enc: Encounter) -> Money:
    out = Money.zero()
    for c in enc.claims.values():
        for a in c.adjudications:
            out = out + sum((x.amount for x in a.adjustments if x.group != "PR"), Money.zero())
        out = out - c.reopened
    return out


def _written_off(enc: Encounter) -> Money:
    return enc.written_off


def refused(enc: Encounter, exc: type[LedgerError], fn, *args, **kwargs) -> LedgerError:
    """Run a command that must be refused; check it recorded nothing."""
    before_version, before_pending = enc.version, len(enc.pending_events)
    with pytest.raises(exc) as err:
        fn(*args, **kwargs)
    assert enc.version == before_version and len(enc.pending_events) == before_pending
    return err.value


# ---------------------------------------------------------------- opening
def test_open_requires_cob_order_with_patient_last():
    with pytest.raises(InvalidValue) as err:
        Encounter.open(facility_id="F", patient_ref="P", service_from=DOS, service_to=None,
                       place_of_service="11", actor=BILLER, responsible_parties=[
                           ResponsibleParty("patient", "patient", ""),
                           ResponsibleParty("primary", "insurer", "X")])
    assert err.value.field.startswith("responsible_parties")


def test_open_refuses_bad_place_of_service_and_date_order():
    with pytest.raises(InvalidCode):
        Encounter.open(facility_id="F", patient_ref="P", service_from=DOS, service_to=None,
                       place_of_service="00", actor=BILLER,
                       responsible_parties=[ResponsibleParty("primary", "insurer", "X")])
    with pytest.raises(InvalidValue) as err:
        Encounter.open(facility_id="F", patient_ref="P", service_from=DOS,
                       service_to=date(2026, 3, 1), place_of_service="11", actor=BILLER,
                       responsible_parties=[ResponsibleParty("primary", "insurer", "X")])
    assert err.value.rule == "dates.order"


# ---------------------------------------------------------------- coding
def test_non_billable_and_unknown_codes_are_refused_and_nothing_recorded():
    enc = new_encounter()
    for code, rule in (("R10.3", "icd10cm.not_billable"), ("S52.521", "icd10cm.not_billable"),
                       ("E11", "icd10cm.not_billable"), ("Z99.99", "icd10cm.unknown"),
                       ("ZZZ.9", "icd10cm.format")):
        err = refused(enc, InvalidCode, enc.code_diagnosis, code, code_set=CS, actor=CODER)
        assert err.rule == rule and err.field == "code"


def test_code_not_valid_on_date_of_service():
    enc = Encounter.open(facility_id="F", patient_ref="P", service_from=date(2019, 1, 5),
                         service_to=None, place_of_service="11", actor=BILLER,
                         responsible_parties=[ResponsibleParty("primary", "insurer", "X")])
    assert refused(enc, InvalidCode, enc.code_diagnosis, "R10.31", code_set=CS,
                   actor=CODER).rule == "icd10cm.dos"


def test_revision_requires_reason_and_records_before_and_after():
    enc = new_encounter()
    enc.code_diagnosis("R10.9", code_set=CS, actor=CODER)
    refused(enc, InvalidValue, enc.revise_diagnosis, 1, "R10.31", code_set=CS, actor=CODER,
            reason=" ")
    enc.revise_diagnosis(1, "R10.31", code_set=CS, actor=Actor("coder-b", "coder"),
                         reason="specificity")
    ev = enc.pending_events[-1]
    assert (ev.old_code, ev.new_code, ev.actor_id, ev.reason) == ("R109", "R1031", "coder-b",
                                                                   "specificity")


def test_pointers_must_point_at_existing_diagnoses():
    enc = new_encounter()
    enc.code_diagnosis("E11.9", code_set=CS, actor=CODER)
    err = refused(enc, RuleViolation, enc.add_service_line, procedure_code="99214",
                  charge="180.00", pointers=[1, 2], actor=CODER)
    assert err.rule == "pointer.exists" and err.field == "pointers[1]"
    refused(enc, InvalidValue, enc.add_service_line, procedure_code="99214", charge="1.00",
            pointers=[1, 1], actor=CODER)


def test_a_pointed_at_diagnosis_cannot_be_removed_and_removal_renumbers_pointers():
    enc = new_encounter()
    enc.code_diagnosis("E11.9", code_set=CS, actor=CODER)
    enc.code_diagnosis("I10", code_set=CS, actor=CODER)
    enc.add_service_line(procedure_code="99214", charge="180.00", pointers=[2], actor=CODER)
    refused(enc, RuleViolation, enc.remove_diagnosis, 2, actor=CODER, reason="wrong")
    enc.remove_diagnosis(1, actor=CODER, reason="not documented")
    assert [d.code for d in enc.diagnoses] == ["I10"]
    assert enc.lines["1"].pointers == [1]


def test_line_limits_units_modifiers_and_money():
    enc = coded()
    refused(enc, InvalidValue, enc.add_service_line, procedure_code="99213", charge=130.0,
            pointers=[1], actor=CODER)
    refused(enc, InvalidValue, enc.add_service_line, procedure_code="99213", charge="130.00",
            units=-1, pointers=[1], actor=CODER)
    refused(enc, InvalidValue, enc.add_service_line, procedure_code="99213", charge="1.00",
            modifiers=["25", "59", "XE", "XS", "XU"], pointers=[1], actor=CODER)
    refused(enc, InvalidCode, enc.add_service_line, procedure_code="99213X", charge="1.00",
            pointers=[1], actor=CODER)
    refused(enc, InvalidCode, enc.add_service_line, procedure_code="99213", charge="1.00",
            pointers=[1], rendering_npi="1234567890", actor=CODER)
    refused(enc, InvalidCode, enc.add_supply, procedure_code="99213", charge="1.00",
            actor=CODER)


def test_line_revision_moves_the_charge_and_keeps_before_after():
    enc = coded()
    enc.revise_service_line(1, procedure_code="99214", charge="180.00", actor=CODER,
                            reason="MDM moderate")
    ev = enc.pending_events[-1]
    assert ev.before == {"procedure_code": "99213", "charge": m("130.00")}
    assert ev.after == {"procedure_code": "99214", "charge": m("180.00")}
    assert enc.balance("primary") == m("180.00")
    refused(enc, RuleViolation, enc.revise_service_line, 1, procedure_code="99214",
            actor=CODER, reason="again")


def test_charge_adjustment_and_its_reversal():
    enc = coded()
    enc.adjust_charge(1, "-30.00", actor=CODER, reason="price correction")
    assert enc.total_charge == m("100.00") and enc.balance("primary") == m("100.00")
    refused(enc, RuleViolation, enc.adjust_charge, 1, "-200.00", actor=CODER, reason="x")
    enc.reverse_charge_adjustment(1, 0, actor=CODER, reason="undo")
    assert enc.total_charge == m("130.00")


# ---------------------------------------------------------------- claim lifecycle
def test_no_submission_without_a_passing_scrub_of_current_content():
    enc = coded()
    enc.create_claim("C-1", actor=BILLER)
    err = refused(enc, RuleViolation, enc.submit_claim, "C-1", actor=BILLER)
    assert err.rule == "submit.requires_passing_scrub"
    enc.scrub_claim("C-1", ruleset_version="t", findings=scrub(enc, enc.claims["C-1"], CS),
                    actor=BILLER)
    enc.add_service_line(procedure_code="36415", charge="15.00", pointers=[1], actor=CODER)
    refused(enc, RuleViolation, enc.submit_claim, "C-1", actor=BILLER)


def test_a_failing_scrub_blocks_submission():
    enc = new_encounter()
    enc.add_service_line(procedure_code="99213", charge="130.00", actor=CODER)  # no dx
    enc.create_claim("C-1", actor=BILLER)
    findings = scrub(enc, enc.claims["C-1"], CS)
    assert {f.rule_id for f in findings} >= {"DX001", "LN001"}
    assert not enc.scrub_claim("C-1", ruleset_version="t", findings=findings, actor=BILLER)
    refused(enc, RuleViolation, enc.submit_claim, "C-1", actor=BILLER)


def test_replacement_and_void_need_the_original_icn():
    enc = submitted()
    for freq in ("7", "8"):
        err = refused(enc, RuleViolation, enc.create_claim, f"C-{freq}", frequency=freq,
                      actor=BILLER)
        assert err.rule == "frequency.original_icn"
    refused(enc, RuleViolation, enc.create_claim, "C-X", original_icn="A1", actor=BILLER)


def test_no_remittance_on_a_claim_never_submitted():
    enc = coded()
    enc.create_claim("C-1", actor=BILLER)
    err = refused(enc, IllegalTransition, pay, enc)
    assert err.rule == "remittance.requires_submitted"


def test_acknowledgement_needs_a_submitted_claim_and_rejection_allows_resubmission():
    enc = coded()
    enc.create_claim("C-1", actor=BILLER)
    refused(enc, IllegalTransition, enc.acknowledge_claim, "C-1", source="999", accepted=True,
            category="A", actor=BILLER)
    enc.scrub_claim("C-1", ruleset_version="t", findings=[], actor=BILLER)
    enc.submit_claim("C-1", actor=BILLER)
    enc.acknowledge_claim("C-1", source="277CA", accepted=False, category="A7", actor=BILLER)
    assert enc.claims["C-1"].status == "rejected"
    enc.scrub_claim("C-1", ruleset_version="t", findings=[], actor=BILLER)
    enc.submit_claim("C-1", actor=BILLER)
    assert enc.claims["C-1"].status == "submitted" and enc.claims["C-1"].frequency == "1"


def test_835_balancing_rules_refuse_unbalanced_postings():
    enc = submitted()
    # line: submitted - paid != sum of CAS
    err = refused(enc, RuleViolation, pay, enc, co="37.00", charge="130.00")
    assert err.rule == "835.line_balance"
    # CLP05 != sum PR
    err = refused(enc, RuleViolation, enc.post_adjudication, "C-1", status_code="1",
                  charge=m("130.00"), paid=m("67.00"), patient_responsibility=m("20.00"),
                  payer_icn="A", adjudication_date=DOS, remittance=remit("T9"),
                  claim_adjustments=[], lines=[lr(1, "99213", "130.00", "67.00", None,
                                                  adj("CO", "45", "38.00"),
                                                  adj("PR", "3", "25.00"))], actor=BILLER)
    assert err.rule == "835.patient_responsibility"
    # claim: charge - paid != claim + line CAS
    err = refused(enc, RuleViolation, enc.post_adjudication, "C-1", status_code="1",
                  charge=m("130.00"), paid=m("60.00"), patient_responsibility=m("0.00"),
                  payer_icn="A", adjudication_date=DOS, remittance=remit("T9"),
                  claim_adjustments=[adj("CO", "45", "38.00")], lines=[], actor=BILLER)
    assert err.rule == "835.claim_balance"
    err = refused(enc, InvalidValue, enc.post_adjudication, "C-1", status_code="1",
                  charge=m("130.00"), paid=m("92.00"), patient_responsibility=m("0.00"),
                  payer_icn="A", adjudication_date=DOS, remittance=remit("T9"),
                  claim_adjustments=[adj("CR", "45", "38.00")], lines=[], actor=BILLER)
    assert err.rule == "cas.group"


def test_payer_payments_never_exceed_the_charge():
    enc = submitted()
    err = refused(enc, RuleViolation, enc.post_adjudication, "C-1", status_code="1",
                  charge=m("130.00"), paid=m("140.00"), patient_responsibility=m("0.00"),
                  payer_icn="A", adjudication_date=DOS, remittance=remit("T9"),
                  claim_adjustments=[adj("OA", "94", "-10.00")], lines=[], actor=BILLER)
    assert err.rule == "payments.not_above_charge"


def test_same_remittance_posted_twice_posts_nothing_the_second_time():
    enc = submitted()
    assert pay(enc)
    version = enc.version
    assert not pay(enc)
    assert enc.version == version
    assert enc.claims["C-1"].paid == m("67.00")


def test_reversal_must_pair_with_a_posted_original():
    enc = submitted()
    err = refused(enc, RuleViolation, pay, enc, status="22", charge="-130.00", paid="-67.00",
                  co="-38.00", pr="-25.00", trace="T2")
    assert err.rule == "reversal.pairs_with_original"


def test_scenario_7_corrected_claim_reversal_and_readjudication_net_out():
    enc = submitted()
    pay(enc)
    assert conserved(enc)
    enc.revise_service_line(1, procedure_code="99214", charge="180.00", actor=CODER,
                            reason="MDM moderate")
    enc.create_claim("C-1R", frequency="7", original_icn="A0004", actor=BILLER)
    assert enc.claims["C-1"].replaced_by == "C-1R"
    enc.scrub_claim("C-1R", ruleset_version="t", findings=scrub(enc, enc.claims["C-1R"], CS),
                    actor=BILLER)
    enc.submit_claim("C-1R", actor=BILLER)
    pay(enc, status="22", charge="-130.00", paid="-67.00", co="-38.00", pr="-25.00",
        trace="T2")
    assert enc.claims["C-1"].status == "replaced"
    pay(enc, claim="C-1R", charge="180.00", paid="103.50", co="51.50", pr="25.00",
        icn="A0005", trace="T2", proc="99214")
    net = sum((c.paid for c in enc.claims.values()), Money.zero())
    assert net == m("103.50")
    assert enc.claims["C-1R"].paid - m("67.00") == m("36.50")  # net new money
    assert enc.patient_balance() == m("25.00")
    assert enc.balance("primary") == m("0.00")
    assert conserved(enc)


def test_denial_bills_nothing_to_patient_and_appeal_rules():
    enc = submitted(charge="180.00")
    enc.post_adjudication("C-1", status_code="4", charge=m("180.00"), paid=m("0.00"),
                          patient_responsibility=m("0.00"), payer_icn="D1",
                          adjudication_date=date(2026, 4, 1), remittance=remit("T1"),
                          claim_adjustments=[], lines=[lr(1, "99213", "180.00", "0.00", None,
                                                          adj("CO", "50", "180.00"),
                                                          remarks=("N115",))],
                          actor=BILLER, appeal_window_days=120)
    claim = enc.claims["C-1"]
    assert claim.status == "denied" and claim.denial_deadline == date(2026, 7, 30)
    assert enc.patient_balance() == m("0.00") and enc.balance("primary") == m("0.00")
    refused(enc, RuleViolation, enc.file_appeal, "C-1", filed_on=date(2026, 8, 1),
            actor=BILLER, reason="late")
    enc.file_appeal("C-1", filed_on=date(2026, 5, 1), actor=BILLER, reason="necessity")
    assert enc.balance("primary") == m("180.00")
    enc.decide_appeal("C-1", outcome="upheld", decided_on=date(2026, 6, 1), actor=BILLER)
    assert enc.balance("primary") == m("0.00") and enc.claims["C-1"].status == "denied"
    assert conserved(enc)
    refused(enc, IllegalTransition, enc.decide_appeal, "C-1", outcome="upheld",
            decided_on=date(2026, 6, 2), actor=BILLER)


# ---------------------------------------------------------------- patient account
def test_refund_never_exceeds_the_credit_and_statement_needs_a_balance():
    enc = submitted()
    refused(enc, RuleViolation, enc.issue_statement, statement_date=DOS, actor=BILLER)
    pay(enc)
    assert enc.issue_statement(statement_date=date(2026, 4, 5), actor=BILLER) == m("25.00")
    enc.record_patient_payment("40.00", method="card", received_on=date(2026, 4, 9),
                               actor=BILLER)
    err = refused(enc, RuleViolation, enc.issue_refund, "15.01", method="check",
                  issued_on=date(2026, 4, 10), actor=BILLER, reason="overpaid")
    assert err.rule == "refund.not_above_credit" and err.field == "amount"
    enc.issue_refund("15.00", method="check", issued_on=date(2026, 4, 10), actor=BILLER,
                     reason="overpaid")
    assert enc.patient_balance() == m("0.00")
    refused(enc, InvalidValue, enc.record_patient_payment, 10.0, method="card",
            received_on=DOS, actor=BILLER)


def test_write_off_limited_to_the_open_balance():
    enc = submitted()
    pay(enc)
    refused(enc, RuleViolation, enc.write_off, "25.01", bucket="patient", category="small_balance",
            approver_id="mgr-1", actor=BILLER, reason="small")
    enc.write_off("25.00", bucket="patient", category="charity", approver_id="mgr-1",
                  actor=BILLER, reason="charity policy")
    assert enc.patient_balance() == m("0.00")
    assert conserved(enc)


def test_forwarded_claim_moves_patient_share_to_the_secondary():
    enc = new_encounter(secondary=True)
    enc.code_diagnosis("R10.31", code_set=CS, actor=CODER)
    enc.add_service_line(procedure_code="99213", charge="130.00", pointers=[1], actor=CODER)
    enc.create_claim("C-1", actor=BILLER)
    enc.scrub_claim("C-1", ruleset_version="t", findings=[], actor=BILLER)
    enc.submit_claim("C-1", actor=BILLER)
    pay(enc, status="19")
    assert enc.balance("secondary") == m("25.00") and enc.patient_balance() == m("0.00")
    names = [type(e).__name__ for e in enc.pending_events]
    assert names[-2:] == ["ClaimForwardedToSecondary", "ClaimCreated"]
    crossover = enc.claims["C-1~secondary"]  # created from the next responsible party
    assert (crossover.status, crossover.crossover, crossover.wire_number) == \
        ("submitted", True, "C-1")
    assert crossover.payer_id == "PAYER-B" and crossover.open_balance == m("25.00")
    assert enc.claims["C-1"].open_balance == m("0.00")


# ---------------------------------------------------------------- disputes
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ADVOCATE_1 = Actor("adv-1", "advocate")


def granted(enc, grantee="adv-1", until=NOW + timedelta(days=30)):
    return enc.grant_access(f"G-{grantee}-{len(enc.access_grants())}", grantee_id=grantee,
                            authorization_ref="AUTH-1", valid_until=until, at=NOW,
                            actor=BILLER)


def test_dispute_lifecycle():
    enc = submitted()
    granted(enc)
    enc.open_dispute("D-1", line_nos=[1], category="charge", advocate_id="adv-1",
                     description="charge higher than estimate", actor=ADVOCATE_1, at=NOW)
    refused(enc, RuleViolation, enc.open_dispute, "D-1", line_nos=[1], category="charge",
            advocate_id="adv-1", description="x", actor=BILLER)
    refused(enc, NotFound, enc.open_dispute, "D-2", line_nos=[9], category="charge",
            advocate_id="adv-1", description="x", actor=BILLER)
    enc.add_dispute_note("D-1", note="called payer", actor=BILLER)
    enc.resolve_dispute("D-1", outcome="adjusted", actor=BILLER, reason="courtesy adjustment")
    refused(enc, IllegalTransition, enc.add_dispute_note, "D-1", note="late", actor=BILLER)


def test_an_advocate_acts_only_through_an_active_grant():
    enc = submitted()
    # no grant: the same refusal as an encounter that does not exist
    err = refused(enc, NotFound, enc.open_dispute, "D-1", line_nos=[1], category="charge",
                  description="x", actor=ADVOCATE_1, at=NOW)
    assert (err.field, err.rule) == ("encounter_id", "encounter.exists")
    g = granted(enc)
    assert enc.grant_for("adv-1", NOW) is g and enc.grant_for("adv-2", NOW) is None
    enc.open_dispute("D-1", line_nos=[1], category="charge", description="x",
                     actor=ADVOCATE_1, at=NOW)
    assert enc.disputes["D-1"].advocate_id == "adv-1"  # the actor, never a body field
    refused(enc, RuleViolation, enc.open_dispute, "D-2", line_nos=[1], category="charge",
            advocate_id="adv-2", description="x", actor=ADVOCATE_1, at=NOW)
    # expired: as if never granted
    later = NOW + timedelta(days=31)
    refused(enc, NotFound, enc.add_dispute_note, "D-1", note="n", actor=ADVOCATE_1, at=later)
    enc.revoke_access(g.grant_id, actor=BILLER, reason="patient withdrew the authorization")
    assert enc.grant_for("adv-1", NOW) is None
    refused(enc, NotFound, enc.add_dispute_note, "D-1", note="n", actor=ADVOCATE_1, at=NOW)
    refused(enc, NotFound, enc.resolve_dispute, "D-1", outcome="withdrawn", reason="",
            actor=ADVOCATE_1, at=NOW)
    # billing staff still work the dispute
    enc.add_dispute_note("D-1", note="advocate's access ended", actor=BILLER)


def test_grant_rules():
    enc = submitted()
    refused(enc, RuleViolation, enc.grant_access, "G-1", grantee_id="adv-1",
            authorization_ref="A", valid_until=NOW + timedelta(days=1), at=NOW,
            actor=ADVOCATE_1)  # no one grants themself (advocates grant nothing)
    refused(enc, RuleViolation, enc.grant_access, "G-1", grantee_id="adv-1",
            authorization_ref="A", valid_until=NOW + timedelta(days=1), at=NOW,
            actor=CODER)
    refused(enc, InvalidValue, enc.grant_access, "G-1", grantee_id="adv-1",
            authorization_ref="A", valid_until=NOW - timedelta(seconds=1), at=NOW,
            actor=BILLER)
    refused(enc, InvalidValue, enc.grant_access, "G-1", grantee_id="adv-1",
            authorization_ref=" ", valid_until=NOW + timedelta(days=1), at=NOW, actor=BILLER)
    refused(enc, RuleViolation, enc.grant_access, "G-1", grantee_id="adv-1",
            authorization_ref="A", valid_until=NOW + timedelta(days=1), at=NOW,
            actor=BILLER, basis="patient_authorization", patient_ref="PT-other")
    g = enc.grant_access("G-1", grantee_id="adv-1", authorization_ref="A",
                         valid_until=NOW + timedelta(days=1), at=NOW, actor=BILLER,
                         basis="patient_authorization", patient_ref=enc.patient_ref)
    assert (g.basis, g.granted_by) == ("patient_authorization", BILLER.id)
    refused(enc, RuleViolation, enc.grant_access, "G-2", grantee_id="adv-1",
            authorization_ref="A", valid_until=NOW + timedelta(days=2), at=NOW, actor=BILLER)
    refused(enc, InvalidValue, enc.revoke_access, "G-1", actor=BILLER, reason="")
    refused(enc, NotFound, enc.revoke_access, "G-9", actor=BILLER, reason="r")
    enc.revoke_access("G-1", actor=BILLER, reason="done")
    refused(enc, IllegalTransition, enc.revoke_access, "G-1", actor=BILLER, reason="again")
    # replay: the grant and its revocation are in the events
    assert [type(e).__name__ for e in enc.pending_events[-2:]] == ["AccessGranted",
                                                                   "AccessRevoked"]


def test_every_event_records_its_actor():
    enc = submitted()
    pay(enc)
    for ev in enc.pending_events:
        assert ev.actor_id and ev.actor_role


def test_units_may_be_fractional_but_positive():
    enc = coded()
    enc.add_service_line(procedure_code="J1100", charge="5.00", units="1.5", pointers=[1],
                         actor=CODER)
    assert enc.lines["2"].units == Decimal("1.5")


# ---------------------------------------------------------------- issue 12: money rules
def test_same_clm01_replacement_is_a_correction_not_a_duplicate():
    enc = submitted()
    pay(enc)
    enc.revise_service_line(1, procedure_code="99214", charge="180.00", actor=CODER,
                            reason="MDM moderate")
    refused(enc, RuleViolation, enc.create_claim, "C-1", actor=BILLER)  # frequency 1: unique
    key = enc.create_claim("C-1", frequency="7", original_icn="A0004", actor=BILLER)
    assert key == "C-1~r2"
    original, replacement = enc.claims["C-1"], enc.claims[key]
    assert (original.status, original.replaced_by) == ("replaced", key)
    assert (replacement.wire_number, replacement.replaces, replacement.liability) == (
        "C-1", "C-1", m("180.00"))
    assert enc.find_claim("C-1") is replacement
    refused(enc, RuleViolation, enc.create_claim, "C-1", frequency="7", original_icn="A0004",
            actor=BILLER)  # that original was already replaced
    assert conserved(enc)


def test_void_leaves_no_receivable_and_a_paid_void_is_owed_back():
    enc = submitted()
    key = enc.create_claim("C-1", frequency="8", original_icn="X-UNKNOWN", actor=BILLER)
    assert enc.claims["C-1"].status == "voided" and key == "C-1~v2"
    assert enc.balance("primary") == m("0.00") and enc.voided == m("130.00")
    assert type(enc.pending_events[-1]).__name__ == "ClaimVoidSettled"
    assert conserved(enc)

    paid = submitted()
    pay(paid)
    paid.create_claim("C-1", frequency="8", original_icn="A0004", actor=BILLER)
    claim = paid.claims["C-1"]
    assert (claim.open_balance, claim.owed_back, paid.balance("primary")) == (
        m("0.00"), m("67.00"), m("0.00"))
    refused(paid, RuleViolation, paid.post_provider_adjustment, "C-1", reason_code="WO",
            reference="A0004", amount="80.00", remittance_key="K", actor=BILLER)
    paid.post_provider_adjustment("C-1", reason_code="WO", reference="A0004", amount="67.00",
                                  remittance_key="K", actor=BILLER)
    assert claim.owed_back == m("0.00") and claim.recouped == m("67.00")
    assert paid.balance("primary") == m("0.00")  # the void already removed the receivable
    # the payer reverses the voided claim's payment: nothing is open again
    pay(paid, status="22", charge="-130.00", paid="-67.00", co="-38.00", pr="-25.00",
        trace="T9")
    assert paid.balance("primary") == m("0.00") and paid.patient_balance() == m("0.00")
    assert conserved(paid)


def test_second_payment_without_reversal_is_a_suspected_duplicate():
    from ledger.domain.encounter import DuplicatePayment

    enc = submitted()
    pay(enc)
    err = refused(enc, DuplicatePayment, pay, enc, trace="T2")
    assert err.rule == "payment.duplicate" and err.earlier_trace == "T1"
    pay(enc, status="22", charge="-130.00", paid="-67.00", co="-38.00", pr="-25.00",
        trace="T3")
    assert pay(enc, trace="T4")  # after a reversal the payer may pay again
    assert enc.claims["C-1"].paid == m("67.00") and conserved(enc)


def test_reversal_must_negate_every_cas_of_the_original():
    enc = submitted()
    pay(enc)
    # same totals, but the CAS split differs from the original's (CO-45 38.00, PR-3 25.00)
    refused(enc, RuleViolation, enc.post_adjudication, "C-1", status_code="22",
            charge=m("-130.00"), paid=m("-67.00"), patient_responsibility=m("-25.00"),
            payer_icn="A0004", adjudication_date=date(2026, 4, 2), remittance=remit("T2"),
            claim_adjustments=[], lines=[lr(1, "99213", "-130.00", "-67.00", None,
                                            adj("CO", "45", "-30.00"), adj("OA", "23", "-8.00"),
                                            adj("PR", "3", "-25.00"))], actor=BILLER)


def test_secondary_books_only_its_own_share_and_no_bucket_goes_negative():
    enc = new_encounter(secondary=True)
    enc.code_diagnosis("R10.31", code_set=CS, actor=CODER)
    enc.add_service_line(procedure_code="99213", charge="130.00", pointers=[1], actor=CODER)
    enc.create_claim("C-1", actor=BILLER)
    enc.scrub_claim("C-1", ruleset_version="t", findings=[], actor=BILLER)
    enc.submit_claim("C-1", actor=BILLER)
    pay(enc, status="1")  # PR 25.00 moves to the next payer in COB order
    assert (enc.balance("primary"), enc.balance("secondary"), enc.patient_balance()) == (
        m("0.00"), m("25.00"), m("0.00"))
    key = enc.create_crossover_claim("C-1", bucket="secondary", actor=BILLER)
    sec = enc.claims[key]
    # the secondary paying more than its bucket holds is refused
    refused(enc, RuleViolation, enc.post_adjudication, key, status_code="2",
            charge=m("130.00"), paid=m("30.00"), patient_responsibility=m("0.00"),
            payer_icn="S1", adjudication_date=date(2026, 4, 9), remittance=remit("S1", "PAYER-B"),
            claim_adjustments=[adj("OA", "23", "100.00")], lines=[], actor=BILLER)
    enc.post_adjudication(key, status_code="2", charge=m("130.00"), paid=m("20.00"),
                          patient_responsibility=m("5.00"), payer_icn="S1",
                          adjudication_date=date(2026, 4, 9), remittance=remit("S2", "PAYER-B"),
                          claim_adjustments=[adj("OA", "23", "105.00"), adj("PR", "2", "5.00")],
                          lines=[], actor=BILLER)
    assert (sec.paid, sec.adjusted, sec.prior_payer_impact) == (m("20.00"), m("0.00"),
                                                                m("105.00"))
    assert (enc.balance("primary"), enc.balance("secondary"), enc.patient_balance()) == (
        m("0.00"), m("0.00"), m("5.00"))
    assert enc.claims["C-1"].paid == m("67.00")  # the primary's figures did not change
