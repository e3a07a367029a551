"""A randomized, synthetic billing workload (no PHI) for the projection tests and benchmark.

Every encounter follows a random life through the real domain methods, so every event type
appears, with corrections and reversals: coding with insertions, revisions and removals;
lines and supplies revised, removed, charge-adjusted and reversed; claims scrubbed,
rejected and resubmitted; payments with CO/PR; denials appealed (overturned or upheld);
claim-level (DRG) payments; secondary payers after forwarding; corrected (frequency 7) and
void (8) claims with payer reversals (CLP02=22); provider adjustments; statements, patient
payments, overpayments and refunds; write-offs; disputes.

Encounters advance one step at a time, ``concurrency`` of them interleaved, and the pending
events of all are saved in one ``Application.save`` per round, which is how the log gets
mixed streams and many events per transaction.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ledger.domain.codeset import CodeVerdict
from ledger.domain.encounter import Encounter
from ledger.domain.errors import RuleViolation
from ledger.domain.model import Actor, Adjustment, LineResult, RemittanceRef, ResponsibleParty
from ledger.domain.values import Money

DIAGNOSES = ("E119", "I10", "M5450", "R1031", "R109", "J45901", "M1711", "K219", "N390",
             "Z0000", "F329", "G4733")
PROCEDURES = ("99213", "99214", "99203", "83036", "36415", "72100", "97110", "93000", "71046",
              "80053", "27447", "20610")
SUPPLIES = ("A4550", "E0114", "L3908", "J1100", "A4253")
REVENUE = ("0120", "0250", "0272", "0278", "0300", "0360", "0370", "0420", "0450")
MODIFIERS = ("25", "59", "RT", "LT", "GP", "XU")
PAYERS = ("PAYER-A", "PAYER-B", "PAYER-C", "PAYER-D", "EMPLOYER-1")
CODERS = (Actor("coder-a", "coder"), Actor("coder-b", "coder"), Actor("coder-c", "coder"))
BILLERS = (Actor("biller-1", "biller"), Actor("biller-2", "biller"))
ADVOCATE = Actor("advocate-1", "advocate")
GRANT_AT = datetime(2026, 3, 1, tzinfo=UTC)  # the workload's clock for access grants
GRANT_UNTIL = datetime(2027, 3, 1, tzinfo=UTC)
CENT = Decimal("0.01")


class WorkloadCodeSet:
    """Accepts the workload's diagnoses on any date (the real set is not needed here)."""

    version = "WORKLOAD-1"

    def check(self, code: str, date_of_service: date) -> CodeVerdict:
        if code in DIAGNOSES:
            return CodeVerdict(code, True, self.version)
        return CodeVerdict(code, False, self.version, "icd10cm.unknown", "unknown code")


CODE_SET = WorkloadCodeSet()


def _money(value: Decimal) -> Money:
    return Money(value.quantize(CENT, ROUND_HALF_UP))


@dataclass
class WorkloadStats:
    encounters: int = 0
    saves: int = 0
    events: int = 0
    positions: list[int] = field(default_factory=list)


class EncounterLife:
    """One encounter's random life, advanced step by step (a generator of steps)."""

    def __init__(self, rng: random.Random, serial: int) -> None:
        self.rng = rng
        self.serial = serial
        self.enc: Encounter | None = None
        self.claim_seq = 0
        self.trace_seq = 0
        self.submitted: dict[str, list[tuple[int, Money]]] = {}  # line charges as submitted

    # ---------------------------------------------------------------- helpers
    def coder(self) -> Actor:
        return self.rng.choice(CODERS)

    def biller(self) -> Actor:
        return self.rng.choice(BILLERS)

    def new_claim_number(self) -> str:
        self.claim_seq += 1
        return f"W{self.serial:07d}-{self.claim_seq}"

    def remit(self, payer: str, paid_on: date) -> RemittanceRef:
        self.trace_seq += 1
        trace = f"T{self.serial}-{self.trace_seq}"
        return RemittanceRef(payer, trace, f"sha256:{trace}", paid_on)

    def charge(self, lo: int, hi: int) -> str:
        return f"{self.rng.randint(lo, hi)}.{self.rng.choice(('00', '50', '25', '99'))}"

    def scrub_submit(self, number: str) -> None:
        enc = self.enc
        assert enc is not None
        enc.scrub_claim(number, ruleset_version="workload", findings=[], actor=self.biller())
        enc.submit_claim(number, actor=self.biller(), interchange_control="000000001",
                         group_control="1", transaction_control="0001")

    def adjudicate(self, number: str, *, status: str, paid_on: date, deny: bool = False,
                   claim_level: bool = False, forwarded_from: Money | None = None) -> None:
        """Post a balanced remittance for the claim (every CAS rule of the domain holds)."""
        enc = self.enc
        assert enc is not None
        claim = enc.claims[number]
        lines = enc.claim_lines(claim)
        rng = self.rng
        results: list[LineResult] = []
        claim_adjs: list[Adjustment] = []
        total_paid = Money.zero()
        total_pr = Money.zero()
        charge = claim.submitted_charge or enc.claim_charge(claim)
        if forwarded_from is not None:  # a secondary: pays part of what the primary left
            paid = _money(forwarded_from.amount * Decimal(rng.choice(("0.5", "0.8", "1"))))
            pr = forwarded_from - paid
            prior = charge - forwarded_from
            if not prior.is_zero():
                claim_adjs.append(Adjustment("OA", "23", prior))
            if not pr.is_zero():
                claim_adjs.append(Adjustment("PR", "2", pr))
            total_paid, total_pr = paid, pr
        elif deny:
            for ln in lines:
                results.append(LineResult(ln.line_no, ln.procedure_code, ln.current_charge,
                                          Money.zero(), None, ln.units,
                                          (Adjustment("CO", "50", ln.current_charge),),
                                          ("N115",)))
        elif claim_level:
            allowed = _money(charge.amount * Decimal(rng.choice(("0.55", "0.6", "0.72"))))
            pr = _money(allowed.amount * Decimal(rng.choice(("0", "0.1", "0.2"))))
            total_paid, total_pr = allowed - pr, pr
            claim_adjs.append(Adjustment("CO", "45", charge - allowed))
            if not pr.is_zero():
                claim_adjs.append(Adjustment("PR", "1", pr))
        else:
            for ln in lines:
                c = ln.current_charge
                allowed = _money(c.amount * Decimal(rng.choice(("0.5", "0.7", "0.85", "1"))))
                pr = _money(allowed.amount * Decimal(rng.choice(("0", "0", "0.2", "0.5"))))
                reason = rng.choice(("1", "2", "3"))
                adjs = []
                if not (c - allowed).is_zero():
                    adjs.append(Adjustment("CO", "45", c - allowed))
                if rng.random() < 0.1 and (allowed - pr).amount >= Decimal("2"):
                    oa = Money(Decimal("1.00"))
                    adjs.append(Adjustment("OA", "94", oa))
                    allowed_paid = allowed - pr - oa
                else:
                    allowed_paid = allowed - pr
                if not pr.is_zero():
                    adjs.append(Adjustment("PR", reason, pr))
                results.append(LineResult(ln.line_no, ln.procedure_code, c, allowed_paid,
                                          allowed, ln.units, tuple(adjs)))
                total_paid = total_paid + allowed_paid
                total_pr = total_pr + pr
        enc.post_adjudication(
            number, status_code=status, charge=charge, paid=total_paid,
            patient_responsibility=total_pr, payer_icn=f"ICN{self.serial}-{self.trace_seq + 1}",
            adjudication_date=paid_on, remittance=self.remit(claim.payer_id, paid_on),
            claim_adjustments=claim_adjs, lines=results, actor=self.biller(),
            remarks=["MA01"] if rng.random() < 0.1 else [])

    def reverse(self, number: str, paid_on: date) -> None:
        """The payer takes back its last adjudication of the claim (CLP02=22, negated)."""
        enc = self.enc
        assert enc is not None
        claim = enc.claims[number]
        last = [a for a in claim.adjudications if not a.reversed and a.status_code != "22"][-1]
        line_results = []
        by_line: dict[int, list[Adjustment]] = {}
        for a in last.adjustments:
            if a.line_no is not None:
                by_line.setdefault(a.line_no, []).append(a)
        claim_adjs = [Adjustment(a.group, a.reason, -a.amount) for a in last.adjustments
                      if a.line_no is None]
        for ln in enc.claim_lines(claim):
            adjs = by_line.get(ln.line_no, [])
            cas = sum((a.amount for a in adjs), Money.zero())
            submitted = dict(self.submitted.get(number, ())).get(ln.line_no, ln.current_charge)
            if not adjs and claim_adjs:
                continue  # claim-level adjudication: no line results to reverse
            paid = submitted - cas
            line_results.append(LineResult(
                ln.line_no, ln.procedure_code, -submitted, -paid, None, ln.units,
                tuple(Adjustment(a.group, a.reason, -a.amount) for a in adjs)))
        enc.post_adjudication(
            number, status_code="22", charge=-last.charge, paid=-last.paid,
            patient_responsibility=-last.patient_responsibility, payer_icn="",
            adjudication_date=paid_on, remittance=self.remit(claim.payer_id, paid_on),
            claim_adjustments=claim_adjs, lines=line_results, actor=self.biller())

    # ---------------------------------------------------------------- the life
    def steps(self) -> Iterator[None]:
        rng = self.rng
        institutional = rng.random() < 0.1
        dos = date(2025, 10, 1) + timedelta(days=rng.randint(0, 330))
        dos_to = dos + timedelta(days=rng.randint(1, 4)) if institutional else dos
        primary = rng.choice(PAYERS)
        parties = [ResponsibleParty("primary", "business" if primary.startswith("EMP")
                                    else "insurer", primary, "Plan", "M-1")]
        has_secondary = rng.random() < 0.2
        if has_secondary:
            parties.append(ResponsibleParty("secondary", "insurer",
                                            rng.choice([p for p in PAYERS if p != primary]),
                                            "Plan 2", "M-2"))
        parties.append(ResponsibleParty("patient", "patient", "", "", ""))
        self.enc = enc = Encounter.open(
            facility_id=f"FAC-{rng.randint(1, 4):02d}", patient_ref=f"PT-W{rng.randint(1, 400)}",
            service_from=dos, service_to=dos_to, place_of_service="21" if institutional else "11",
            responsible_parties=parties, actor=self.biller(),
            claim_type="institutional" if institutional else "professional")
        yield

        # coding
        codes = rng.sample(DIAGNOSES, rng.randint(1, 3))
        for c in codes:
            enc.code_diagnosis(c, code_set=CODE_SET, actor=self.coder())
        yield
        n_lines = rng.randint(1, 4)
        for _ in range(n_lines):
            pointers = sorted(rng.sample(range(1, len(enc.diagnoses) + 1),
                                         rng.randint(1, len(enc.diagnoses))))[:4]
            if institutional:
                enc.add_service_line(procedure_code=rng.choice(("", "", *PROCEDURES)) or None,
                                     revenue_code=rng.choice(REVENUE),
                                     charge=self.charge(100, 5000), units=rng.randint(1, 3),
                                     pointers=pointers, actor=self.coder(), line_date=dos)
            else:
                enc.add_service_line(procedure_code=rng.choice(PROCEDURES),
                                     charge=self.charge(15, 400), units=rng.randint(1, 4),
                                     modifiers=rng.sample(MODIFIERS, rng.randint(0, 2)),
                                     pointers=pointers, actor=self.coder())
        if rng.random() < 0.3:
            enc.add_supply(procedure_code=rng.choice(SUPPLIES), charge=self.charge(5, 120),
                           units=rng.randint(1, 10), pointers=[1], actor=self.coder(),
                           revenue_code="0272" if institutional else "")
        yield

        # corrections before billing
        if rng.random() < 0.25 and len(enc.diagnoses) < 4:  # a new principal diagnosis
            extra = rng.choice([d for d in DIAGNOSES if d not in
                                [x.code for x in enc.diagnoses]])
            enc.code_diagnosis(extra, code_set=CODE_SET, actor=self.coder(), position=1)
        if rng.random() < 0.3:
            pos = rng.randint(1, len(enc.diagnoses))
            new = rng.choice([d for d in DIAGNOSES if d not in [x.code for x in enc.diagnoses]])
            enc.revise_diagnosis(pos, new, code_set=CODE_SET, actor=self.coder(),
                                 reason="specificity")
        if rng.random() < 0.15:  # code one nobody points at, then remove it
            extra = rng.choice([d for d in DIAGNOSES if d not in
                                [x.code for x in enc.diagnoses]])
            enc.code_diagnosis(extra, code_set=CODE_SET, actor=self.coder())
            yield
            enc.remove_diagnosis(len(enc.diagnoses), actor=self.coder(), reason="not supported")
        active = enc.active_lines()
        if rng.random() < 0.3:
            ln = rng.choice(active)
            if ln.procedure_code and ln.kind == "service" and rng.random() < 0.5:
                enc.revise_service_line(ln.line_no, actor=self.coder(), reason="MDM moderate",
                                        procedure_code=rng.choice(
                                            [p for p in PROCEDURES if p != ln.procedure_code]))
            else:
                enc.revise_service_line(ln.line_no, actor=self.coder(), reason="fee schedule",
                                        charge=str(ln.charge.amount + rng.randint(1, 40)))
        if rng.random() < 0.2:
            ln = rng.choice(active)
            enc.adjust_charge(ln.line_no, "-5.00" if ln.current_charge.amount > 10 else "5.00",
                              actor=self.biller(), reason="courtesy")
            if rng.random() < 0.5:
                yield
                enc.reverse_charge_adjustment(ln.line_no, 0, actor=self.biller(),
                                              reason="entered in error")
        if rng.random() < 0.15:
            n = enc.add_service_line(procedure_code=None if institutional else "36415",
                                     revenue_code="0300" if institutional else "",
                                     charge="15.00", pointers=[1], actor=self.coder())
            yield
            enc.remove_service_line(n, actor=self.coder(), reason="duplicate")
        yield

        # billing
        number = self.new_claim_number()
        enc.create_claim(number, actor=self.biller())
        self.scrub_submit(number)
        self.submitted[number] = [(ln.line_no, ln.current_charge)
                                  for ln in enc.claim_lines(enc.claims[number])]
        yield
        if rng.random() < 0.1:
            enc.acknowledge_claim(number, source="277CA", accepted=False, category="A7",
                                  actor=self.biller(), message="invalid subscriber")
            yield
            self.scrub_submit(number)
            yield
        enc.acknowledge_claim(number, source="999", accepted=True, category="A1",
                              actor=self.biller())
        yield
        paid_on = dos_to + timedelta(days=rng.randint(14, 45))
        outcome = rng.random()
        forward = False
        if outcome < 0.15:  # denial, then an appeal
            self.adjudicate(number, status="4", paid_on=paid_on, deny=True)
            yield
            if rng.random() < 0.7:
                enc.file_appeal(number, filed_on=paid_on + timedelta(days=10),
                                actor=self.biller(), reason="medical necessity documented",
                                documents=["notes"])
                yield
                if rng.random() < 0.6:
                    enc.decide_appeal(number, outcome="overturned",
                                      decided_on=paid_on + timedelta(days=40),
                                      actor=self.biller(), reason="payer letter")
                    yield
                    self.adjudicate(number, status="1", paid_on=paid_on + timedelta(days=50))
                else:
                    enc.decide_appeal(number, outcome="upheld",
                                      decided_on=paid_on + timedelta(days=40),
                                      actor=self.biller(), reason="payer letter")
        elif institutional or outcome < 0.22:
            self.adjudicate(number, status="1", paid_on=paid_on, claim_level=True)
        else:
            forward = has_secondary and rng.random() < 0.7
            self.adjudicate(number, status="19" if forward else "1", paid_on=paid_on)
            if forward:
                yield
                forwarded = enc.balance("secondary")
                if forwarded.is_positive():
                    second = self.new_claim_number()
                    enc.create_claim(second, bucket="secondary", actor=self.biller())
                    self.scrub_submit(second)
                    yield
                    self.adjudicate(second, status="2", paid_on=paid_on + timedelta(days=20),
                                    forwarded_from=forwarded)
        yield

        claim = enc.claims[number]
        if claim.status == "paid" and rng.random() < 0.12 and not forward:
            # corrected claim: recode, replacement (7), payer reverses the original (22)
            ln = enc.claim_lines(claim)[0]
            if ln.kind == "service":
                enc.revise_service_line(ln.line_no, actor=self.coder(), reason="MDM moderate",
                                        charge=str((ln.charge.amount + Decimal(50)).quantize(
                                            CENT)))
                yield
                replacement = self.new_claim_number()
                enc.create_claim(replacement, frequency="7", original_icn=claim.payer_icn,
                                 actor=self.biller())
                self.scrub_submit(replacement)
                self.submitted[replacement] = [
                    (x.line_no, x.current_charge)
                    for x in enc.claim_lines(enc.claims[replacement])]
                yield
                self.reverse(number, paid_on + timedelta(days=60))
                yield
                self.adjudicate(replacement, status="1", paid_on=paid_on + timedelta(days=61))
                yield
        elif claim.status == "paid" and rng.random() < 0.04 and not forward:
            void = self.new_claim_number()
            enc.create_claim(void, frequency="8", original_icn=claim.payer_icn,
                             actor=self.biller())
            yield
            self.reverse(number, paid_on + timedelta(days=30))
            yield
        if claim.payer_icn and rng.random() < 0.08:
            try:
                enc.post_provider_adjustment(number, reason_code=rng.choice(("WO", "L6")),
                                             reference=f"REF{self.serial}",
                                             amount=rng.choice(("12.50", "-3.10")),
                                             remittance_key=f"PLB{self.serial}",
                                             actor=self.biller())
            except RuleViolation:
                pass  # refused: it would leave a payer balance below zero (or over-recoup)
            else:
                yield

        # the patient's part
        due = enc.patient_balance()
        if due.is_positive() and rng.random() < 0.8:
            enc.issue_statement(statement_date=paid_on + timedelta(days=20),
                                actor=self.biller())
            yield
            choice = rng.random()
            if choice < 0.5:
                enc.record_patient_payment(str(due), method="card",
                                           received_on=paid_on + timedelta(days=30),
                                           actor=self.biller())
            elif choice < 0.7:
                part = _money(due.amount / 2)
                if part.is_positive():
                    enc.record_patient_payment(str(part), method="check",
                                               received_on=paid_on + timedelta(days=30),
                                               actor=self.biller())
            elif choice < 0.85:
                enc.record_patient_payment(str(due + Money(Decimal("20.00"))), method="cash",
                                           received_on=paid_on + timedelta(days=30),
                                           actor=self.biller())
                yield
                credit = -enc.patient_balance()
                if credit.is_positive():
                    enc.issue_refund(str(credit), method="check",
                                     issued_on=paid_on + timedelta(days=35), actor=self.biller(),
                                     reason="overpayment")
            yield
            left = enc.patient_balance()
            if left.is_positive() and rng.random() < 0.3:
                enc.write_off(str(left), bucket="patient", category="small_balance",
                              approver_id="mgr-1", actor=self.biller(), reason="small balance",
                              claim_number=number)
                yield
        if rng.random() < 0.15:
            did = f"D{self.serial}"
            enc.grant_access(f"G{self.serial}", grantee_id=ADVOCATE.id,
                             authorization_ref=f"AUTH-{self.serial}", valid_until=GRANT_UNTIL,
                             at=GRANT_AT, actor=self.biller())
            yield
            enc.open_dispute(did, line_nos=[enc.active_lines()[0].line_no], category="charge",
                             description="charge above estimate", actor=ADVOCATE, at=GRANT_AT)
            yield
            enc.add_dispute_note(did, note="called the payer", actor=ADVOCATE, at=GRANT_AT)
            yield
            if rng.random() < 0.7:
                enc.resolve_dispute(did, outcome=rng.choice(("upheld", "rejected")),
                                    actor=self.biller(), reason="reviewed")
                yield
                if rng.random() < 0.6:  # the advocate's work is done: access ends
                    enc.revoke_access(f"G{self.serial}", actor=self.biller(),
                                      reason="dispute resolved")
                    yield


def run_workload(save: Callable[..., Any], *, encounters: int, seed: int = 1,
                 concurrency: int = 40, serial_start: int = 0,
                 max_events: int | None = None) -> WorkloadStats:
    """Drive ``encounters`` random lives, saving each round's pending events with one call of
    ``save(*encounters)`` (e.g. ``app.save``). Returns counts and the positions written."""
    rng = random.Random(seed)
    stats = WorkloadStats()
    waiting = iter(range(serial_start, serial_start + encounters))
    active: list[tuple[EncounterLife, Iterator[None]]] = []
    exhausted = False
    while True:
        while not exhausted and len(active) < concurrency:
            serial = next(waiting, None)
            if serial is None:
                exhausted = True
                break
            life = EncounterLife(random.Random(rng.random()), serial)
            active.append((life, life.steps()))
            stats.encounters += 1
        if not active:
            break
        still = []
        for life, steps in active:
            if next(steps, StopIteration) is not StopIteration:
                still.append((life, steps))
        touched = [life.enc for life, _ in active if life.enc is not None and
                   life.enc.pending_events]
        active = still
        if touched:
            count = sum(len(e.pending_events) for e in touched)
            recordings = save(*touched)
            stats.saves += 1
            stats.events += count
            if recordings:
                stats.positions.append(recordings[-1].notification.id)
        if max_events is not None and stats.events >= max_events:
            break
    return stats
