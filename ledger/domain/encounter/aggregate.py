"""The Encounter aggregate: every service, supply, code and billing action of one patient
encounter, as immutable events.

Each public method is one user action: it checks every rule first and only then triggers
events, so a refused command records nothing. Event ``apply`` methods are re-run on replay:
they hold no I/O, no clock, no randomness, and copy what they are given.

Money model (per encounter, kept per bucket): every charge first sits with the first
responsible party. A payer's payment and its CO/OA/PI adjustments reduce that payer's bucket;
its PR adjustments move the amount to the patient (or, when the payer forwards the claim,
to the next payer). Patient payments reduce the patient bucket (below zero is a credit,
i.e. a refund liability); refunds and write-offs are booked against a bucket. So for the
encounter: total charge = payments + adjustments + write-offs - refunds + open balances.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from eventsourcing.domain import Aggregate

from ledger.domain.codeset import DiagnosisCodeSet
from ledger.domain.errors import (
    IllegalTransition,
    InvalidCode,
    InvalidValue,
    NotFound,
    RuleViolation,
)
from ledger.domain.model import (
    ADJUDICATION_CODES,
    ADJUSTMENT_GROUPS,
    CLAIM_STATUS_FOR_CODE,
    FINAL_CODES,
    FORWARDED_CODES,
    FREQUENCIES,
    PARTY_KINDS,
    REVERSAL_CODE,
    SEQUENCES,
    WRITE_OFF_REASONS,
    AccessGrant,
    Actor,
    Adjudication,
    Adjustment,
    Claim,
    Diagnosis,
    Dispute,
    Finding,
    LineResult,
    ProviderAdjustmentRef,
    RemittanceRef,
    ResponsibleParty,
    ServiceLine,
    books_adjustment,
    claim_key,
)
from ledger.domain.values import (
    Money,
    check_date,
    check_storable,
    hcpcs_level2_format,
    icd10cm_dotted,
    icd10cm_format,
    modifiers_format,
    ndc_format,
    npi_format,
    place_of_service_format,
    positive_units,
    procedure_code_format,
    revenue_code_format,
)

MAX_DIAGNOSES = {"professional": 12, "institutional": 25}
ADVOCATE_ROLE = "advocate"
GRANTOR_ROLES = frozenset({"biller", "admin"})
GRANT_BASES = ("staff", "patient_authorization")
POSTABLE_STATUSES = {"submitted", "accepted", "adjudicated", "denied", "in_appeal", "paid",
                     "closed"}


DRG_RE = re.compile(r"[0-9A-Z]{1,4}")  # MS-DRG / APR-DRG codes (835 CLP11)

def _require_reason(reason: str, what: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidValue("reason", "reason.required", f"reason: a reason is required to {what}")
    return reason.strip()


class DuplicatePayment(RuleViolation):
    """A second paid/denied adjudication of a claim by its payer with no reversal in between:
    not posted; the importer puts it in the exceptions queue with both traces."""

    def __init__(self, claim_number: str, earlier_remittance: str, earlier_trace: str) -> None:
        super().__init__("status_code", "payment.duplicate",
                         f"claim {claim_number[:40]}: already adjudicated by this payer "
                         f"(trace {earlier_trace[:30]}) with no reversal since; a second "
                         "payment is a suspected duplicate")
        self.earlier_remittance = earlier_remittance
        self.earlier_trace = earlier_trace


def _positive_money(value: Any, field: str) -> Money:
    amount = Money.parse(value, field)
    if not amount.is_positive():
        raise InvalidValue(field, "money.positive", f"{field}: must be greater than 0")
    return amount


class Encounter(Aggregate):
    """One patient encounter and all the claims billed for it."""

    # read by snapshots taken before issue 12 (they lack the attribute): nothing voided
    voided = Money.zero()

    # ------------------------------------------------------------------ events
    class Event(Aggregate.Event):
        actor_id: str
        actor_role: str
        reason: str

    class Opened(Event, Aggregate.Created):
        facility_id: str
        patient_ref: str
        service_from: date
        service_to: date
        place_of_service: str
        claim_type: str
        responsible_parties: list[ResponsibleParty]

    class DiagnosisCoded(Event):
        position: int
        code: str
        poa: str
        code_set_version: str

        def apply(self, enc: Encounter) -> None:
            enc.diagnoses.insert(self.position - 1,
                                 Diagnosis(self.code, self.poa, self.code_set_version))
            if self.position <= len(enc.diagnoses) - 1:  # inserted before others: shift pointers
                enc._shift_pointers(self.position, +1)
            enc.content_revision += 1

    class DiagnosisRevised(Event):
        position: int
        old_code: str
        new_code: str
        code_set_version: str

        def apply(self, enc: Encounter) -> None:
            d = enc.diagnoses[self.position - 1]
            d.code = self.new_code
            d.code_set_version = self.code_set_version
            enc.content_revision += 1

    class DiagnosisRemoved(Event):
        position: int
        code: str

        def apply(self, enc: Encounter) -> None:
            del enc.diagnoses[self.position - 1]
            enc._shift_pointers(self.position + 1, -1)
            enc.content_revision += 1

    class ServiceLineAdded(Event):
        line: ServiceLine

        def apply(self, enc: Encounter) -> None:
            line = _copy_line(self.line)
            enc.lines[str(line.line_no)] = line
            enc.next_line_no = max(enc.next_line_no, line.line_no + 1)
            enc._book(enc.first_bucket, line.charge)
            enc.content_revision += 1

    class SupplyAdded(ServiceLineAdded):
        pass

    class ServiceLineRevised(Event):
        line_no: int
        before: dict[str, Any]
        after: dict[str, Any]

        def apply(self, enc: Encounter) -> None:
            line = enc.lines[str(self.line_no)]
            old_charge = line.current_charge
            for name, value in self.after.items():
                setattr(line, name, list(value) if isinstance(value, list) else value)
            enc._book(enc.first_bucket, line.current_charge - old_charge)
            enc.content_revision += 1

    class ServiceLineRemoved(Event):
        line_no: int

        def apply(self, enc: Encounter) -> None:
            line = enc.lines[str(self.line_no)]
            line.removed = True
            enc._book(enc.first_bucket, -line.current_charge)
            enc.content_revision += 1

    class ChargeAdjusted(Event):
        line_no: int
        amount: Money

        def apply(self, enc: Encounter) -> None:
            enc.lines[str(self.line_no)].add_charge_adjustment(self.amount)
            enc._book(enc.first_bucket, self.amount)
            enc.content_revision += 1

    class ChargeReversed(Event):
        line_no: int
        adjustment_index: int
        amount: Money  # the negation of the reversed adjustment

        def apply(self, enc: Encounter) -> None:
            enc.lines[str(self.line_no)].add_charge_adjustment(self.amount)
            enc._book(enc.first_bucket, self.amount)
            enc.content_revision += 1

    class ClaimCreated(Event):
        claim_number: str
        payer_id: str
        bucket: str
        frequency: str
        original_icn: str
        line_nos: list[int]
        replaces: str
        clm01: str = ""  # CLM01 when the claim's key differs from it (same-CLM01 corrections)
        crossover: bool = False  # created from a forwarding primary: submitted by the payer
        liability: Money | None = None  # what its bucket holds for it when created

        def apply(self, enc: Encounter) -> None:
            claim = Claim(self.claim_number, self.payer_id, self.bucket, self.frequency,
                          self.original_icn, list(self.line_nos), replaces=self.replaces)
            claim.clm01 = getattr(self, "clm01", "") or ""
            claim.crossover = bool(getattr(self, "crossover", False))
            claim.charge = enc.claim_charge(claim)
            liability = getattr(self, "liability", None)
            claim.liability = liability if liability is not None else claim.charge
            enc.claims[self.claim_number] = claim
            if self.replaces:
                original = enc.claims[self.replaces]
                original.replaced_by = self.claim_number
                original.status = "voided" if self.frequency == "8" else "replaced"
            if claim.crossover:
                claim.status = "submitted"
                claim.submitted_charge = claim.charge
                claim.submissions = 1

    class ClaimVoidSettled(Event):
        """A voided claim's open payer balance removed: a void never leaves a receivable."""

        claim_number: str
        amount: Money

        def apply(self, enc: Encounter) -> None:
            claim = enc.claims[self.claim_number]
            enc._book(claim.bucket, -self.amount)
            claim.void_settled = claim.void_settled + self.amount
            enc.voided = getattr(enc, "voided", Money.zero()) + self.amount

    class ClaimScrubbed(Event):
        claim_number: str
        ruleset_version: str
        passed: bool
        findings: list[Finding]
        content_revision: int

        def apply(self, enc: Encounter) -> None:
            claim = enc.claims[self.claim_number]
            claim.scrub_passed = self.passed
            claim.scrub_revision = self.content_revision
            claim.scrub_ruleset = self.ruleset_version
            claim.scrub_findings = list(self.findings)
            if claim.status in ("draft", "scrubbed", "rejected"):
                claim.status = "scrubbed" if self.passed else "draft"

    class ClaimSubmitted(Event):
        claim_number: str
        interchange_control: str
        group_control: str
        transaction_control: str
        batch_hash: str
        total_charge: Money
        diagnoses: list[str]
        lines: list[dict[str, Any]]

        def apply(self, enc: Encounter) -> None:
            claim = enc.claims[self.claim_number]
            claim.status = "submitted"
            claim.submitted_charge = self.total_charge
            claim.submissions += 1

    class ClaimAcknowledged(Event):
        claim_number: str
        source: str  # 999 | 277CA
        accepted: bool
        category: str
        message: str

        def apply(self, enc: Encounter) -> None:
            claim = enc.claims[self.claim_number]
            if claim.status in ("submitted", "accepted"):
                claim.status = "accepted" if self.accepted else "rejected"

    class RemittanceReceived(Event):
        claim_number: str
        remittance_key: str
        payer_id: str
        trace_number: str
        file_hash: str
        payment_date: date

        def apply(self, enc: Encounter) -> None:
            enc.remittances.append(f"{self.remittance_key}|{self.claim_number}")

    class ClaimAdjudicated(Event):
        claim_number: str
        status_code: str
        charge: Money
        paid: Money
        patient_responsibility: Money
        payer_icn: str
        adjudication_date: date
        remittance_key: str
        claim_adjustments: list[Adjustment]
        remarks: list[str]
        reverses_seq: int | None
        trace_number: str = ""
        drg_code: str = ""  # CLP11 (issue 18): the DRG an institutional claim was paid by

        def apply(self, enc: Encounter) -> None:
            claim = enc.claims[self.claim_number]
            if getattr(self, "drg_code", ""):
                claim.drg = self.drg_code
            adjudication = Adjudication(
                len(claim.adjudications) + 1, self.status_code, self.charge, self.paid,
                self.patient_responsibility, self.payer_icn, self.adjudication_date,
                self.remittance_key, list(self.claim_adjustments))
            adjudication.trace_number = getattr(self, "trace_number", "") or ""
            claim.adjudications.append(adjudication)
            claim.paid = claim.paid + self.paid
            claim.patient_responsibility = claim.patient_responsibility + \
                self.patient_responsibility
            claim.remarks.extend(self.remarks)
            if self.payer_icn and self.reverses_seq is None:
                claim.payer_icn = self.payer_icn
            enc._book(claim.bucket, -self.paid)
            for adj in self.claim_adjustments:
                enc._book_adjustment(claim, adj)
            if self.reverses_seq is not None:
                reversed_one = claim.adjudications[self.reverses_seq - 1]
                reversed_one.reversed = True
                reversed_one.reversed_by = adjudication.seq
                adjudication.reversed = True
                if claim.status not in ("replaced", "voided"):
                    claim.status = "closed" if claim.replaced_by else "submitted"
            else:
                claim.status = CLAIM_STATUS_FOR_CODE.get(self.status_code, "adjudicated")
                if claim.status == "paid" and not self.paid.is_positive():
                    claim.status = "adjudicated"
                if claim.appeal_open and self.status_code != "4":
                    claim.appeal_open = False

    class LineAdjudicated(Event):
        claim_number: str
        result: LineResult

        def apply(self, enc: Encounter) -> None:
            claim = enc.claims[self.claim_number]
            line = enc.lines[str(self.result.line_no)]
            key = str(self.result.line_no)
            line.paid = line.paid + self.result.paid
            claim.line_paid[key] = claim.line_paid.get(key, Money.zero()) + self.result.paid
            if self.result.allowed is not None:
                line.allowed = line.allowed + self.result.allowed
                claim.allowed = claim.allowed + self.result.allowed
                claim.line_allowed[key] = claim.line_allowed.get(key, Money.zero()) + \
                    self.result.allowed
            line.adjustments.extend(self.result.adjustments)
            line.remarks.extend(self.result.remarks)
            latest = claim.adjudications[-1]
            latest.lines.append(self.result)  # per claim line money: ledger.domain.figures
            for adj in self.result.adjustments:
                latest.adjustments.append(Adjustment(adj.group, adj.reason, adj.amount,
                                                     adj.quantity, self.result.line_no))
                book = claim.line_patient if adj.group == "PR" else claim.line_adjusted
                book[key] = book.get(key, Money.zero()) + adj.amount
                enc._book_adjustment(claim, adj)

    class PatientResponsibilityAssigned(Event):
        claim_number: str
        deductible: Money
        coinsurance: Money
        copay: Money
        other: Money
        to_bucket: str

        def apply(self, enc: Encounter) -> None:
            claim = enc.claims[self.claim_number]
            total = self.deductible + self.coinsurance + self.copay + self.other
            enc._book(claim.bucket, -total)
            enc._book(self.to_bucket, total)
            if claim.adjudications and not claim.adjudications[-1].pr_to:
                claim.adjudications[-1].pr_to = self.to_bucket
            if self.to_bucket == "patient":
                claim.to_patient = claim.to_patient + total
            else:
                claim.forwarded = claim.forwarded + total
                for other in enc.claims.values():  # the next payer's live claim owes it
                    if other.bucket == self.to_bucket and other.wire_number == \
                            claim.wire_number and not other.replaced_by:
                        other.liability = other.liability + total
            for name in ("deductible", "coinsurance", "copay", "other"):
                enc.patient_share[name] = enc.patient_share.get(name, Money.zero()) + \
                    getattr(self, name)

    class ClaimForwardedToSecondary(Event):
        claim_number: str
        to_bucket: str
        to_payer_id: str
        amount: Money

        def apply(self, enc: Encounter) -> None:
            pass  # the amount moved with PatientResponsibilityAssigned.to_bucket

    class ProviderAdjustmentPosted(Event):
        claim_number: str
        plb_reason: str
        reference: str
        amount: Money  # positive reduces the payment (e.g. WO recoupment), negative adds (L6)
        remittance_key: str
        books: bool = False  # True (issue 12 on): the amount moves the claim's payer bucket

        def apply(self, enc: Encounter) -> None:
            enc.provider_adjustments.append(self.amount)
            if not getattr(self, "books", False):
                return  # before issue 12: kept beside the buckets only
            claim = enc.claims[self.claim_number]
            claim.recouped = claim.recouped + self.amount
            claim.plb.append(ProviderAdjustmentRef(self.plb_reason, self.reference, self.amount,
                                                   self.remittance_key))
            if claim.status != "voided":
                # a payment taken back (WO, FB…) is open again with that payer; a negative
                # claim-linked PLB is extra payment on the claim
                enc._book(claim.bucket, self.amount)

    class DenialRecorded(Event):
        claim_number: str
        carc: list[str]
        rarc: list[str]
        deadline: date
        adjudication_seq: int | None

        def apply(self, enc: Encounter) -> None:
            claim = enc.claims[self.claim_number]
            claim.denial_deadline = self.deadline
            claim.denial_seq = self.adjudication_seq
            claim.status = "denied"

    class AppealFiled(Event):
        claim_number: str
        level: int
        filed_on: date
        documents: list[str]
        reopened: list[Adjustment]

        def apply(self, enc: Encounter) -> None:
            claim = enc.claims[self.claim_number]
            claim.appeal_open = True
            claim.appeals += 1
            claim.status = "in_appeal"
            for adj in self.reopened:
                enc._book(claim.bucket, adj.amount)
                claim.reopened = claim.reopened + adj.amount

    class AppealDecided(Event):
        claim_number: str
        outcome: str  # overturned | upheld | partial
        decided_on: date
        reapplied: list[Adjustment]

        def apply(self, enc: Encounter) -> None:
            claim = enc.claims[self.claim_number]
            for adj in self.reapplied:
                enc._book(claim.bucket, -adj.amount)
                claim.reopened = claim.reopened - adj.amount
            if self.outcome == "upheld":
                claim.appeal_open = False
                claim.status = "denied"

    class StatementIssued(Event):
        statement_no: int
        statement_date: date
        amount_due: Money
        deductible: Money
        coinsurance: Money
        copay: Money
        other: Money

        def apply(self, enc: Encounter) -> None:
            enc.statements.append(self.statement_date)

    class PatientPaymentReceived(Event):
        amount: Money
        method: str
        received_on: date
        balance_after: Money

        def apply(self, enc: Encounter) -> None:
            enc._book("patient", -self.amount)
            enc.patient_paid = enc.patient_paid + self.amount

    class RefundIssued(Event):
        amount: Money
        method: str
        issued_on: date
        balance_after: Money

        def apply(self, enc: Encounter) -> None:
            enc._book("patient", self.amount)
            enc.refunded = enc.refunded + self.amount

    class WriteOffPosted(Event):
        bucket: str
        claim_number: str
        amount: Money
        category: str
        approver_id: str

        def apply(self, enc: Encounter) -> None:
            enc._book(self.bucket, -self.amount)
            enc.written_off = enc.written_off + self.amount

    class DisputeOpened(Event):
        dispute_id: str
        line_nos: list[int]
        category: str
        advocate_id: str
        description: str

        def apply(self, enc: Encounter) -> None:
            enc.disputes[self.dispute_id] = Dispute(self.dispute_id, list(self.line_nos),
                                                    self.category, self.advocate_id)

    class DisputeNoteAdded(Event):
        dispute_id: str
        note: str

        def apply(self, enc: Encounter) -> None:
            enc.disputes[self.dispute_id].notes += 1

    class DisputeResolved(Event):
        dispute_id: str
        outcome: str

        def apply(self, enc: Encounter) -> None:
            d = enc.disputes[self.dispute_id]
            d.status = "resolved"
            d.outcome = self.outcome

    # Access follows the patient's consent: an advocate reads or works this encounter only
    # through an unexpired, unrevoked grant (added after the first release; encounters and
    # snapshots from before have no grants).
    class AccessGranted(Event):
        grant_id: str
        grantee_id: str
        authorization_ref: str
        basis: str
        valid_until: datetime

        def apply(self, enc: Encounter) -> None:
            enc.access_grants()[self.grant_id] = AccessGrant(
                self.grant_id, self.grantee_id, self.authorization_ref, self.basis,
                self.valid_until, self.actor_id)

    class AccessRevoked(Event):
        grant_id: str
        grantee_id: str

        def apply(self, enc: Encounter) -> None:
            g = enc.access_grants()[self.grant_id]
            g.revoked = True
            g.revoked_by = self.actor_id

    # ------------------------------------------------------------------ construction
    def __init__(
        self,
        facility_id: str,
        patient_ref: str,
        service_from: date,
        service_to: date,
        place_of_service: str,
        claim_type: str,
        responsible_parties: list[ResponsibleParty],
        actor_id: str,
        actor_role: str,
        reason: str,
    ) -> None:
        self.facility_id = facility_id
        self.patient_ref = patient_ref
        self.service_from = service_from
        self.service_to = service_to
        self.place_of_service = place_of_service
        self.claim_type = claim_type
        self.parties: list[ResponsibleParty] = list(responsible_parties)
        self.diagnoses: list[Diagnosis] = []
        self.lines: dict[str, ServiceLine] = {}
        self.next_line_no = 1
        self.claims: dict[str, Claim] = {}
        self.buckets: dict[str, Money] = {}
        self.patient_share: dict[str, Money] = {}
        self.patient_paid = Money.zero()
        self.refunded = Money.zero()
        self.written_off = Money.zero()
        self.statements: list[date] = []
        self.remittances: list[str] = []
        self.disputes: dict[str, Dispute] = {}
        self.grants: dict[str, AccessGrant] = {}
        self.provider_adjustments: list[Money] = []
        self.content_revision = 0
        self.voided = Money.zero()

    # Every new event's values must fit the read models' columns (ledger.domain.values);
    # checked before the event exists, never on replay.
    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        check_storable(kwargs)
        super().trigger_event(event_class, **kwargs)

    @classmethod
    def _create(cls, event_class: Any, **kwargs: Any) -> Any:
        check_storable(kwargs)
        return super()._create(event_class, **kwargs)

    @classmethod
    def open(
        cls,
        *,
        facility_id: str,
        patient_ref: str,
        service_from: date,
        service_to: date | None,
        place_of_service: str,
        responsible_parties: list[ResponsibleParty],
        actor: Actor,
        claim_type: str = "professional",
        encounter_id: Any = None,
        today: date | None = None,
    ) -> Encounter:
        """Open an encounter. ``patient_ref`` is a surrogate id, never a name or MRN.
        ``today`` (from the caller's clock): dates of service at most a year after it."""
        if not isinstance(facility_id, str) or not facility_id.strip():
            raise InvalidValue("facility_id", "required", "facility_id: required")
        if not isinstance(patient_ref, str) or not patient_ref.strip():
            raise InvalidValue("patient_ref", "required", "patient_ref: required")
        if not isinstance(service_from, date):
            raise InvalidValue("service_from", "date", "service_from: must be a date")
        service_to = service_to or service_from
        if not isinstance(service_to, date) or service_to < service_from:
            raise InvalidValue("service_to", "dates.order",
                               "service_to: must not be before service_from")
        check_date(service_from, "service_from", today)
        check_date(service_to, "service_to", today)
        if claim_type not in MAX_DIAGNOSES:
            raise InvalidValue("claim_type", "claim_type.enum",
                               "claim_type: must be professional or institutional")
        place_of_service_format(place_of_service)
        _check_parties(responsible_parties)
        kwargs: dict[str, Any] = {}
        if encounter_id is not None:
            kwargs["id"] = encounter_id
        return cls._create(
            cls.Opened,
            facility_id=facility_id.strip(),
            patient_ref=patient_ref.strip(),
            service_from=service_from,
            service_to=service_to,
            place_of_service=place_of_service,
            claim_type=claim_type,
            responsible_parties=list(responsible_parties),
            actor_id=actor.id,
            actor_role=actor.role,
            reason="",
            **kwargs,
        )

    # ------------------------------------------------------------------ helpers
    @property
    def first_bucket(self) -> str:
        return self.parties[0].bucket

    def _book(self, bucket: str, amount: Money) -> None:
        self.buckets[bucket] = self.buckets.get(bucket, Money.zero()) + amount

    def balance(self, bucket: str) -> Money:
        return self.buckets.get(bucket, Money.zero())

    def _books(self, claim: Claim, adj: Adjustment) -> bool:
        """Whether a CAS adjustment moves the claim's payer bucket: CO/OA/PI do, except CARC 23
        (prior payers' impact) on a claim that is not the first payer's; PR moves money to
        the next party through PatientResponsibilityAssigned instead."""
        return books_adjustment(adj.group, adj.reason, claim.bucket, self.first_bucket)

    def _book_adjustment(self, claim: Claim, adj: Adjustment) -> None:
        if adj.group == "PR":
            return
        if self._books(claim, adj):
            self._book(claim.bucket, -adj.amount)
            claim.adjusted = claim.adjusted + adj.amount
        else:
            claim.prior_payer_impact = claim.prior_payer_impact + adj.amount

    def find_claim(self, clm01: str, payer_ids: set[str] | frozenset[str] = frozenset(),
                   ) -> Claim | None:
        """The live claim with this CLM01 (the latest version: not replaced or voided), to
        the payer named (any of ``payer_ids``; all when empty)."""
        found = None
        for c in self.claims.values():
            if c.wire_number != clm01 or c.replaced_by or c.status == "voided":
                continue
            if payer_ids and c.payer_id not in payer_ids:
                continue
            if c.frequency == "8":
                continue
            found = c
        return found

    def claims_for(self, clm01: str) -> list[Claim]:
        return [c for c in self.claims.values() if c.wire_number == clm01]

    def _shift_pointers(self, from_position: int, delta: int) -> None:
        for line in self.lines.values():
            line.pointers = [p + delta if p >= from_position else p for p in line.pointers]

    def _party(self, bucket: str) -> ResponsibleParty | None:
        for p in self.parties:
            if p.bucket == bucket:
                return p
        return None

    def _claim(self, claim_number: str) -> Claim:
        claim = self.claims.get(claim_number)
        if claim is None:
            raise NotFound("claim_number", "claim.exists",
                           f"claim_number: no claim {claim_number[:40]!r} on this encounter")
        return claim

    def _line(self, line_no: int, field: str = "line_no") -> ServiceLine:
        line = self.lines.get(str(line_no))
        if line is None or line.removed:
            raise NotFound(field, "line.exists", f"{field}: no active line {line_no}")
        return line

    def active_lines(self) -> list[ServiceLine]:
        return [ln for ln in self.lines.values() if not ln.removed]

    def claim_lines(self, claim: Claim) -> list[ServiceLine]:
        return [self.lines[str(n)] for n in claim.line_nos if not self.lines[str(n)].removed]

    def claim_charge(self, claim: Claim) -> Money:
        return sum((ln.current_charge for ln in self.claim_lines(claim)), Money.zero())

    @property
    def total_charge(self) -> Money:
        return sum((ln.current_charge for ln in self.active_lines()), Money.zero())

    def patient_balance(self) -> Money:
        return self.balance("patient")

    def _actor(self, actor: Actor) -> dict[str, str]:
        if not isinstance(actor, Actor) or not actor.id or not actor.role:
            raise InvalidValue("actor", "actor.required", "actor: id and role are required")
        return {"actor_id": actor.id, "actor_role": actor.role}

    def _check_pointers(self, pointers: Any, field: str = "pointers") -> list[int]:
        if pointers is None:
            pointers = []
        if not isinstance(pointers, list | tuple):
            raise InvalidValue(field, "pointers.list", f"{field}: must be a list of positions")
        if len(pointers) > 4:
            raise InvalidValue(field, "pointers.max4", f"{field}: at most 4 diagnosis pointers")
        out = []
        for i, p in enumerate(pointers):
            if isinstance(p, bool) or not isinstance(p, int):
                raise InvalidValue(f"{field}[{i}]", "pointer.type",
                                   f"{field}[{i}]: a pointer is a diagnosis position number")
            if not 1 <= p <= len(self.diagnoses):
                raise RuleViolation(f"{field}[{i}]", "pointer.exists",
                                    f"{field}[{i}]: points at diagnosis {p}, but the encounter "
                                    f"has {len(self.diagnoses)} diagnoses")
            out.append(p)
        if len(set(out)) != len(out):
            raise InvalidValue(field, "pointers.unique", f"{field}: a pointer appears twice")
        return out

    def _check_line_date(self, line_date: Any) -> date:
        if line_date is None:
            return self.service_from
        if not isinstance(line_date, date):
            raise InvalidValue("line_date", "date", "line_date: must be a date")
        if not self.service_from <= line_date <= self.service_to:
            raise RuleViolation("line_date", "line_date.within_encounter",
                                "line_date: must fall within the encounter's dates of service")
        return line_date

    def _coding_allowed(self) -> None:
        # Coding changes are allowed at any time: a change after submission is what a
        # corrected (frequency 7) claim is for. Voided encounters do not exist: claims are voided.
        return None

    # ------------------------------------------------------------------ coding commands
    def code_diagnosis(self, code: Any, *, code_set: DiagnosisCodeSet, actor: Actor,
                       position: int | None = None, poa: str = "",
                       reason: str = "") -> None:
        """Assign an ICD-10-CM diagnosis at ``position`` (1 = principal; default: next)."""
        who = self._actor(actor)
        undotted = icd10cm_format(code)
        limit = MAX_DIAGNOSES[self.claim_type]
        if len(self.diagnoses) >= limit:
            raise RuleViolation("code", "diagnoses.max",
                                f"code: at most {limit} diagnoses on a {self.claim_type} claim")
        if any(d.code == undotted for d in self.diagnoses):
            raise RuleViolation("code", "diagnosis.duplicate",
                                f"code: {icd10cm_dotted(undotted)} is already coded")
        if position is None:
            position = len(self.diagnoses) + 1
        if isinstance(position, bool) or not isinstance(position, int) or \
                not 1 <= position <= len(self.diagnoses) + 1:
            raise InvalidValue("position", "position.range",
                               f"position: must be between 1 and {len(self.diagnoses) + 1}")
        if poa not in ("", "Y", "N", "U", "W", "1"):
            raise InvalidValue("poa", "poa.enum", "poa: present-on-admission is Y, N, U, W or 1")
        verdict = code_set.check(undotted, self.service_from)
        if not verdict.billable:
            raise InvalidCode("code", verdict.rule, f"code: {verdict.message}")
        self.trigger_event(self.DiagnosisCoded, position=position, code=undotted, poa=poa,
                           code_set_version=verdict.version, reason=reason, **who)

    def revise_diagnosis(self, position: int, new_code: Any, *, code_set: DiagnosisCodeSet,
                         actor: Actor, reason: str) -> None:
        who = self._actor(actor)
        reason = _require_reason(reason, "revise a diagnosis")
        if isinstance(position, bool) or not isinstance(position, int) or \
                not 1 <= position <= len(self.diagnoses):
            raise NotFound("position", "diagnosis.exists", f"position: no diagnosis {position}")
        undotted = icd10cm_format(new_code, "new_code")
        old = self.diagnoses[position - 1].code
        if undotted == old:
            raise RuleViolation("new_code", "revision.changes",
                                "new_code: the revision must change the code")
        if any(d.code == undotted for d in self.diagnoses):
            raise RuleViolation("new_code", "diagnosis.duplicate",
                                f"new_code: {icd10cm_dotted(undotted)} is already coded")
        verdict = code_set.check(undotted, self.service_from)
        if not verdict.billable:
            raise InvalidCode("new_code", verdict.rule, f"new_code: {verdict.message}")
        self.trigger_event(self.DiagnosisRevised, position=position, old_code=old,
                           new_code=undotted, code_set_version=verdict.version, reason=reason,
                           **who)

    def remove_diagnosis(self, position: int, *, actor: Actor, reason: str) -> None:
        who = self._actor(actor)
        reason = _require_reason(reason, "remove a diagnosis")
        if isinstance(position, bool) or not isinstance(position, int) or \
                not 1 <= position <= len(self.diagnoses):
            raise NotFound("position", "diagnosis.exists", f"position: no diagnosis {position}")
        for line in self.active_lines():
            if position in line.pointers:
                raise RuleViolation("position", "diagnosis.pointed_at",
                                    f"position: line {line.line_no} points at diagnosis "
                                    f"{position}; re-point or remove the line first")
        self.trigger_event(self.DiagnosisRemoved, position=position,
                           code=self.diagnoses[position - 1].code, reason=reason, **who)

    def _build_line(self, *, kind: str, procedure_code: Any, charge: Any, units: Any,
                    pointers: Any, modifiers: Any, unit_type: str, line_date: Any,
                    rendering_npi: Any, revenue_code: Any, ndc: Any, ndc_quantity: Any,
                    description: str) -> ServiceLine:
        if kind == "supply":
            code = hcpcs_level2_format(procedure_code)
        else:
            code = procedure_code_format(procedure_code) if procedure_code else ""
        if not code and not revenue_code:
            raise InvalidValue("procedure_code", "required",
                               "procedure_code: required (or revenue_code on institutional lines)")
        if self.claim_type == "institutional":
            rev = revenue_code_format(revenue_code)
        else:
            if not code:
                raise InvalidValue("procedure_code", "required", "procedure_code: required")
            rev = revenue_code_format(revenue_code) if revenue_code else ""
        amount = Money.parse(charge, "charge")
        if amount.is_negative():
            raise InvalidValue("charge", "money.non_negative", "charge: must not be negative")
        qty = positive_units(units)
        if unit_type not in ("UN", "MJ", "DA"):
            raise InvalidValue("unit_type", "unit_type.enum", "unit_type: UN, MJ or DA")
        npi = npi_format(rendering_npi, "rendering_npi") if rendering_npi else ""
        ndc_code = ndc_format(ndc) if ndc else ""
        ndc_qty = positive_units(ndc_quantity, "ndc_quantity") if ndc_quantity is not None \
            else None
        return ServiceLine(
            line_no=self.next_line_no, kind=kind, procedure_code=code,
            modifiers=list(modifiers_format(modifiers)), units=qty, unit_type=unit_type,
            charge=amount, pointers=self._check_pointers(pointers),
            line_date=self._check_line_date(line_date), rendering_npi=npi, revenue_code=rev,
            ndc=ndc_code, ndc_quantity=ndc_qty, description=str(description or "")[:80],
        )

    def add_service_line(self, *, procedure_code: Any, charge: Any, actor: Actor,
                         units: Any = 1, pointers: Any = None, modifiers: Any = None,
                         unit_type: str = "UN", line_date: Any = None, rendering_npi: Any = "",
                         revenue_code: Any = "", ndc: Any = "", ndc_quantity: Any = None,
                         description: str = "", reason: str = "") -> int:
        """Add a service line; returns its line number."""
        who = self._actor(actor)
        line = self._build_line(kind="service", procedure_code=procedure_code, charge=charge,
                                units=units, pointers=pointers, modifiers=modifiers,
                                unit_type=unit_type, line_date=line_date,
                                rendering_npi=rendering_npi, revenue_code=revenue_code, ndc=ndc,
                                ndc_quantity=ndc_quantity, description=description)
        if self.claim_type == "professional" and len(self.active_lines()) >= 50:
            raise RuleViolation("procedure_code", "lines.max50",
                                "procedure_code: a professional claim holds at most 50 lines")
        self.trigger_event(self.ServiceLineAdded, line=line, reason=reason, **who)
        return line.line_no

    def add_supply(self, *, procedure_code: Any, charge: Any, actor: Actor, units: Any = 1,
                   pointers: Any = None, modifiers: Any = None, line_date: Any = None,
                   revenue_code: Any = "", ndc: Any = "", ndc_quantity: Any = None,
                   description: str = "", reason: str = "") -> int:
        """Add a supply (HCPCS Level II: A/E/J/L… codes); returns its line number."""
        who = self._actor(actor)
        line = self._build_line(kind="supply", procedure_code=procedure_code, charge=charge,
                                units=units, pointers=pointers, modifiers=modifiers,
                                unit_type="UN", line_date=line_date, rendering_npi="",
                                revenue_code=revenue_code, ndc=ndc, ndc_quantity=ndc_quantity,
                                description=description)
        self.trigger_event(self.SupplyAdded, line=line, reason=reason, **who)
        return line.line_no

    REVISABLE = ("procedure_code", "modifiers", "units", "charge", "pointers", "rendering_npi",
                 "revenue_code", "ndc", "ndc_quantity", "line_date", "description")

    def revise_service_line(self, line_no: int, *, actor: Actor, reason: str,
                            **changes: Any) -> None:
        """Change fields of a line (code, modifiers, units, charge, pointers…) with a reason."""
        who = self._actor(actor)
        reason = _require_reason(reason, "revise a line")
        line = self._line(line_no)
        unknown = set(changes) - set(self.REVISABLE)
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidValue(name, "line.field", f"{name}: not a revisable line field")
        if not changes:
            raise InvalidValue("changes", "revision.changes", "changes: nothing to revise")
        merged = {name: getattr(line, name) for name in self.REVISABLE}
        merged.update(changes)
        candidate = self._build_line(
            kind=line.kind, procedure_code=merged["procedure_code"], charge=merged["charge"],
            units=merged["units"], pointers=merged["pointers"], modifiers=merged["modifiers"],
            unit_type=line.unit_type, line_date=merged["line_date"],
            rendering_npi=merged["rendering_npi"], revenue_code=merged["revenue_code"],
            ndc=merged["ndc"], ndc_quantity=merged["ndc_quantity"],
            description=merged["description"])
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for name in changes:
            old, new = getattr(line, name), getattr(candidate, name)
            if old != new:
                before[name], after[name] = old, new
        if not after:
            raise RuleViolation("changes", "revision.changes",
                                "changes: the revision does not change the line")
        self.trigger_event(self.ServiceLineRevised, line_no=line.line_no, before=before,
                           after=after, reason=reason, **who)

    def remove_service_line(self, line_no: int, *, actor: Actor, reason: str) -> None:
        who = self._actor(actor)
        reason = _require_reason(reason, "remove a line")
        line = self._line(line_no)
        for claim in self.claims.values():
            if line.line_no in claim.line_nos and claim.status not in ("draft", "scrubbed",
                                                                       "voided", "closed"):
                if not line.paid.is_zero():
                    raise RuleViolation("line_no", "line.paid",
                                        f"line_no: line {line_no} has payments posted; reverse "
                                        "them or correct the claim instead")
        self.trigger_event(self.ServiceLineRemoved, line_no=line.line_no, reason=reason, **who)

    def adjust_charge(self, line_no: int, amount: Any, *, actor: Actor, reason: str) -> None:
        """Add (or, negative, subtract) an amount to a line's charge."""
        who = self._actor(actor)
        reason = _require_reason(reason, "adjust a charge")
        line = self._line(line_no)
        delta = Money.parse(amount, "amount")
        if delta.is_zero():
            raise InvalidValue("amount", "money.non_zero", "amount: must not be zero")
        if (line.current_charge + delta).is_negative():
            raise RuleViolation("amount", "charge.non_negative",
                                "amount: the line's charge would become negative")
        self.trigger_event(self.ChargeAdjusted, line_no=line.line_no, amount=delta,
                           reason=reason, **who)

    def reverse_charge_adjustment(self, line_no: int, index: int, *, actor: Actor,
                                  reason: str) -> None:
        who = self._actor(actor)
        reason = _require_reason(reason, "reverse a charge adjustment")
        line = self._line(line_no)
        if not 0 <= index < len(line.charge_adjustments):
            raise NotFound("index", "adjustment.exists", f"index: no charge adjustment {index}")
        amount = -line.charge_adjustments[index]
        if (line.current_charge + amount).is_negative():
            raise RuleViolation("index", "charge.non_negative",
                                "index: the line's charge would become negative")
        self.trigger_event(self.ChargeReversed, line_no=line.line_no, adjustment_index=index,
                           amount=amount, reason=reason, **who)

    # ------------------------------------------------------------------ claims
    def create_claim(self, claim_number: Any, *, actor: Actor, bucket: str = "primary",
                     frequency: str = "1", original_icn: str = "",
                     line_nos: list[int] | None = None, reason: str = "") -> str:
        """Create a claim (1 original, 7 replacement, 8 void) to the party of ``bucket``.

        A replacement or void names the claim it corrects by the payer's ICN of the original
        (REF*F8) and/or by carrying the same CLM01: the original is then ``replaced`` /
        ``voided`` and points at the new claim (``replaced_by``). When the CLM01 is the
        original's, the new claim is kept under the key ``CLM01~r<n>`` / ``CLM01~v<n>`` (its
        CLM01 unchanged). Returns the new claim's key."""
        who = self._actor(actor)
        if not isinstance(claim_number, str) or not 1 <= len(claim_number.strip()) <= 38:
            raise InvalidValue("claim_number", "claim_number.format",
                               "claim_number: 1 to 38 characters (CLM01)")
        claim_number = claim_number.strip()
        if frequency not in FREQUENCIES:
            raise InvalidValue("frequency", "frequency.enum", "frequency: must be 1, 7 or 8")
        party = self._party(bucket)
        if party is None or party.kind == "patient":
            raise RuleViolation("bucket", "claim.payer",
                                f"bucket: no insurer or business is responsible as {bucket!r}")
        replaces = ""
        key, clm01 = claim_number, ""
        if frequency in ("7", "8"):
            if not isinstance(original_icn, str) or not original_icn.strip():
                raise RuleViolation("original_icn", "frequency.original_icn",
                                    f"original_icn: frequency {frequency} requires the payer's "
                                    "claim number (ICN) of the original claim")
            original_icn = original_icn.strip()
            original = self._original_of(claim_number, original_icn, bucket)
            if original is not None:
                if original.replaced_by or original.status == "voided":
                    raise RuleViolation("original_icn", "claim.already_replaced",
                                        "original_icn: that claim was already replaced or "
                                        "voided")
                replaces = original.number
            if claim_number in self.claims:
                if original is None or original.wire_number != claim_number:
                    raise RuleViolation("claim_number", "claim.unique",
                                        "claim_number: a claim with this number already exists"
                                        " and is not the one this correction names")
                n = len(self.claims_for(claim_number)) + 1
                key, clm01 = claim_key(claim_number, f"{'v' if frequency == '8' else 'r'}{n}"), \
                    claim_number
        elif original_icn:
            raise RuleViolation("original_icn", "frequency.original_icn",
                                "original_icn: only replacement (7) or void (8) claims carry one")
        elif claim_number in self.claims:
            raise RuleViolation("claim_number", "claim.unique",
                                "claim_number: a claim with this number already exists")
        if line_nos is None:
            chosen = [ln.line_no for ln in self.active_lines()]
        else:
            chosen = []
            for i, n in enumerate(line_nos):
                self._line(n, f"line_nos[{i}]")
                chosen.append(n)
        if not chosen and frequency != "8":
            raise RuleViolation("line_nos", "claim.lines", "line_nos: a claim needs a line")
        liability = None if bucket == self.first_bucket else self.balance(bucket)
        self.trigger_event(self.ClaimCreated, claim_number=key, payer_id=party.payer_id,
                           bucket=bucket, frequency=frequency, original_icn=original_icn,
                           line_nos=chosen, replaces=replaces, clm01=clm01,
                           liability=liability, reason=reason, **who)
        if frequency == "8" and replaces:
            self._settle_void(self.claims[replaces], who)
        return key

    def _original_of(self, clm01: str, icn: str, bucket: str) -> Claim | None:
        """The claim a correction names: by the payer's ICN, else by the same CLM01."""
        for c in self.claims.values():
            if c.bucket == bucket and c.payer_icn and c.payer_icn == icn and \
                    not c.replaced_by and c.status != "voided":
                return c
        for c in self.claims.values():
            if c.bucket == bucket and c.payer_icn and c.payer_icn == icn:
                return c
        return self.find_claim(clm01, {self._party(bucket).payer_id}  # type: ignore[union-attr]
                               ) if clm01 in {c.wire_number for c in self.claims.values()} \
            else None

    def _raw_open(self, claim: Claim) -> Money:
        return (claim.liability - claim.paid - claim.adjusted - claim.forwarded
                - claim.to_patient - claim.void_settled)

    def _settle_void(self, claim: Claim, who: dict[str, str]) -> None:
        amount = min(self._raw_open(claim), self.balance(claim.bucket))
        if amount.is_positive():
            self.trigger_event(self.ClaimVoidSettled, claim_number=claim.number, amount=amount,
                               reason="void", **who)

    def create_crossover_claim(self, primary_number: str, *, bucket: str,
                               actor: Actor) -> str:
        """The next payer's claim, created when the prior payer forwarded the claim (COB
        crossover) or its remittance arrives first: same CLM01 and lines, key
        ``CLM01~<bucket>``, already submitted (the prior payer sent it)."""
        who = self._actor(actor)
        primary = self._claim(primary_number)
        party = self._party(bucket)
        if party is None or party.kind == "patient" or bucket == primary.bucket:
            raise RuleViolation("bucket", "claim.payer",
                                f"bucket: no next payer is responsible as {bucket!r}")
        key = claim_key(primary.wire_number, bucket)
        if key in self.claims:
            raise RuleViolation("claim_number", "claim.unique",
                                "claim_number: the crossover claim already exists")
        self.trigger_event(self.ClaimCreated, claim_number=key, payer_id=party.payer_id,
                           bucket=bucket, frequency="1", original_icn="",
                           line_nos=list(primary.line_nos), replaces="",
                           clm01=primary.wire_number, crossover=True,
                           liability=self.balance(bucket), reason="COB crossover", **who)
        return key

    def scrub_claim(self, claim_number: str, *, ruleset_version: str,
                    findings: list[Finding], actor: Actor) -> bool:
        """Record a scrub run (findings from the scrubber). Returns whether it passed."""
        who = self._actor(actor)
        claim = self._claim(claim_number)
        if claim.status not in ("draft", "scrubbed", "rejected"):
            raise IllegalTransition("claim_number", "claim.scrub_state",
                                    f"claim_number: a {claim.status} claim cannot be scrubbed")
        passed = not any(f.severity == "error" for f in findings)
        self.trigger_event(self.ClaimScrubbed, claim_number=claim.number,
                           ruleset_version=ruleset_version, passed=passed,
                           findings=list(findings), content_revision=self.content_revision,
                           reason="", **who)
        return passed

    def submit_claim(self, claim_number: str, *, actor: Actor, interchange_control: str = "",
                     group_control: str = "", transaction_control: str = "",
                     batch_hash: str = "") -> None:
        who = self._actor(actor)
        claim = self._claim(claim_number)
        if claim.status not in ("scrubbed", "rejected", "draft"):
            raise IllegalTransition("claim_number", "claim.submit_state",
                                    f"claim_number: a {claim.status} claim cannot be submitted")
        if not claim.scrub_passed or claim.scrub_revision != self.content_revision:
            raise RuleViolation("claim_number", "submit.requires_passing_scrub",
                                "claim_number: the claim has no passing scrub of its current "
                                "content; scrub it first")
        lines = [
            {"line_no": ln.line_no, "procedure_code": ln.procedure_code,
             "modifiers": list(ln.modifiers), "units": ln.units,
             "charge": ln.current_charge, "pointers": list(ln.pointers),
             "revenue_code": ln.revenue_code}
            for ln in self.claim_lines(claim)
        ]
        self.trigger_event(self.ClaimSubmitted, claim_number=claim.number,
                           interchange_control=interchange_control, group_control=group_control,
                           transaction_control=transaction_control, batch_hash=batch_hash,
                           total_charge=self.claim_charge(claim),
                           diagnoses=[d.code for d in self.diagnoses], lines=lines, reason="",
                           **who)

    def acknowledge_claim(self, claim_number: str, *, source: str, accepted: bool,
                          category: str, actor: Actor, message: str = "") -> None:
        """Record a 999 / 277CA acknowledgement. A rejected claim is fixed, re-scrubbed and
        resubmitted as frequency 1 (it never reached adjudication)."""
        who = self._actor(actor)
        claim = self._claim(claim_number)
        if source not in ("999", "277CA"):
            raise InvalidValue("source", "ack.source", "source: 999 or 277CA")
        if claim.status not in ("submitted", "accepted"):
            raise IllegalTransition("claim_number", "ack.requires_submitted",
                                    f"claim_number: a {claim.status} claim was not awaiting an "
                                    "acknowledgement")
        self.trigger_event(self.ClaimAcknowledged, claim_number=claim.number, source=source,
                           accepted=bool(accepted), category=str(category)[:10],
                           message=str(message)[:200], reason="", **who)
        if not accepted:
            # resubmission needs a fresh scrub
            pass

    def post_adjudication(
        self,
        claim_number: str,
        *,
        status_code: str,
        charge: Money,
        paid: Money,
        patient_responsibility: Money,
        payer_icn: str,
        adjudication_date: date,
        remittance: RemittanceRef,
        claim_adjustments: list[Adjustment],
        lines: list[LineResult],
        actor: Actor,
        remarks: list[str] | None = None,
        appeal_window_days: int = 120,
        drg_code: str = "",
    ) -> bool:
        """Post one claim of a remittance (CLP loop). Checks the 835 balancing rules first.

        Returns False (and records nothing) when this remittance was already posted to this
        claim: posting the same remittance twice posts nothing the second time.
        """
        who = self._actor(actor)
        claim = self._claim(claim_number)
        if drg_code and not DRG_RE.fullmatch(str(drg_code)):
            raise InvalidValue("drg_code", "drg.format",
                               "drg_code: a DRG code of 1 to 4 digits or capital letters")
        key = f"{remittance.key}|{claim.number}"
        if key in self.remittances:
            return False
        if status_code not in ADJUDICATION_CODES:
            raise InvalidValue("status_code", "clp02.enum",
                               f"status_code: {status_code!r} is not a CLP02 claim status")
        if claim.status not in POSTABLE_STATUSES and status_code != "22":
            raise IllegalTransition("claim_number", "remittance.requires_submitted",
                                    f"claim_number: a {claim.status} claim was never "
                                    "submitted; a remittance cannot be posted to it")
        charge = Money.parse(charge, "charge")
        paid = Money.parse(paid, "paid")
        patient_responsibility = Money.parse(patient_responsibility, "patient_responsibility")
        for adj in claim_adjustments:
            _check_adjustment(adj, "claim_adjustments")
        line_total = Money.zero()
        seen_lines: set[int] = set()
        for i, res in enumerate(lines):
            field = f"lines[{i}]"
            if res.line_no not in claim.line_nos:
                raise RuleViolation(f"{field}.line_no", "remittance.line_on_claim",
                                    f"{field}.line_no: line {res.line_no} is not on the claim")
            if res.line_no in seen_lines and status_code != "22":
                raise RuleViolation(f"{field}.line_no", "remittance.line_once",
                                    f"{field}.line_no: line {res.line_no} appears twice")
            seen_lines.add(res.line_no)
            cas = Money.zero()
            for adj in res.adjustments:
                _check_adjustment(adj, f"{field}.adjustments")
                cas = cas + adj.amount
            if res.submitted - res.paid != cas:
                raise RuleViolation(f"{field}", "835.line_balance",
                                    f"{field}: submitted {res.submitted} - paid {res.paid} must "
                                    f"equal the line's adjustments {cas} (SVC02-SVC03=ΣCAS)")
            line_total = line_total + cas
        claim_cas = sum((a.amount for a in claim_adjustments), Money.zero())
        if charge - paid != claim_cas + line_total:
            raise RuleViolation("charge", "835.claim_balance",
                                f"charge: {charge} - paid {paid} must equal claim and line "
                                f"adjustments {claim_cas + line_total} (CLP03-CLP04=ΣCAS)")
        all_adjustments = list(claim_adjustments) + [a for r in lines for a in r.adjustments]
        pr_total = sum((a.amount for a in all_adjustments if a.group == "PR"), Money.zero())
        if patient_responsibility != pr_total:
            raise RuleViolation("patient_responsibility", "835.patient_responsibility",
                                f"patient_responsibility: {patient_responsibility} must equal "
                                f"the PR adjustments {pr_total} (CLP05=ΣPR)")
        reverses_seq = None
        if status_code == REVERSAL_CODE:
            original = self._reversed_adjudication(claim, charge, paid, patient_responsibility,
                                                   str(payer_icn or ""), all_adjustments)
            reverses_seq = original.seq
            lines = _negated_allowed(lines, original)
        else:
            if not paid.is_zero() and paid.is_negative():
                raise RuleViolation("paid", "835.paid_non_negative",
                                    "paid: a negative payment is only legal on a reversal (22)")
            if status_code in FINAL_CODES and not claim.appeal_open:
                for earlier in claim.active_adjudications():
                    if earlier.status_code in FINAL_CODES:
                        raise DuplicatePayment(claim.wire_number, earlier.remittance_key,
                                               earlier.trace_number)
            claim_charge = claim.submitted_charge or self.claim_charge(claim)
            if claim.paid + paid > claim_charge:
                raise RuleViolation("paid", "payments.not_above_charge",
                                    f"paid: payer payments would exceed the claim charge "
                                    f"{claim_charge}")
            for i, res in enumerate(lines):
                line = self.lines[str(res.line_no)]
                before = claim.line_paid.get(str(res.line_no), Money.zero())
                if before + res.paid > line.current_charge:
                    raise RuleViolation(f"lines[{i}].paid", "payments.line_not_above_charge",
                                        f"lines[{i}].paid: line {res.line_no} would be paid "
                                        f"{before + res.paid}, more than its charge "
                                        f"{line.current_charge}")
        # where the patient-responsibility goes: the next payer in COB order, else the patient
        next_party = self._next_payer(claim.bucket)
        to_bucket = next_party.bucket if next_party is not None and \
            status_code != REVERSAL_CODE else "patient"
        if status_code == REVERSAL_CODE:
            to_bucket = self._reversal_pr_bucket(claim, reverses_seq)
        booked = paid + sum((a.amount for a in all_adjustments
                             if self._books(claim, a)), Money.zero()) + pr_total
        after = self.balance(claim.bucket) - booked
        if after.is_negative():
            raise RuleViolation("paid", "balance.payer_negative",
                                f"paid: posting would leave the {claim.bucket} payer balance at "
                                f"{after}; the remittance does not fit this claim")
        if to_bucket != "patient" and (self.balance(to_bucket) + pr_total).is_negative():
            raise RuleViolation("patient_responsibility", "balance.payer_negative",
                                f"patient_responsibility: the {to_bucket} payer balance would "
                                "go below zero")
        self.trigger_event(self.RemittanceReceived, claim_number=claim.number,
                           remittance_key=remittance.key, payer_id=remittance.payer_id,
                           trace_number=remittance.trace_number, file_hash=remittance.file_hash,
                           payment_date=remittance.payment_date, reason="", **who)
        self.trigger_event(self.ClaimAdjudicated, claim_number=claim.number,
                           status_code=status_code, charge=charge, paid=paid,
                           patient_responsibility=patient_responsibility,
                           payer_icn=str(payer_icn or ""), adjudication_date=adjudication_date,
                           remittance_key=remittance.key,
                           claim_adjustments=list(claim_adjustments),
                           remarks=list(remarks or []), reverses_seq=reverses_seq,
                           trace_number=remittance.trace_number, reason="",
                           **({"drg_code": str(drg_code)} if drg_code else {}), **who)
        for res in lines:
            self.trigger_event(self.LineAdjudicated, claim_number=claim.number, result=res,
                               reason="", **who)
        if not pr_total.is_zero():
            shares = {"1": Money.zero(), "2": Money.zero(), "3": Money.zero()}
            other = Money.zero()
            for a in all_adjustments:
                if a.group == "PR":
                    if a.reason in shares:
                        shares[a.reason] = shares[a.reason] + a.amount
                    else:
                        other = other + a.amount
            self.trigger_event(self.PatientResponsibilityAssigned, claim_number=claim.number,
                               deductible=shares["1"], coinsurance=shares["2"],
                               copay=shares["3"], other=other, to_bucket=to_bucket, reason="",
                               **who)
            if to_bucket != "patient" and status_code != REVERSAL_CODE:
                target = self._party(to_bucket)
                self.trigger_event(self.ClaimForwardedToSecondary, claim_number=claim.number,
                                   to_bucket=to_bucket,
                                   to_payer_id=target.payer_id if target else "",
                                   amount=pr_total, reason="", **who)
                if status_code in FORWARDED_CODES and self.find_claim(
                        claim.wire_number, {target.payer_id} if target else set()) is None:
                    self.create_crossover_claim(claim.number, bucket=to_bucket, actor=actor)
        if claim.status == "voided":
            self._settle_void(claim, who)
        if status_code == "4":
            carcs = sorted({a.reason for a in all_adjustments})
            rarcs = sorted({r for res in lines for r in res.remarks} | set(remarks or []))
            self.trigger_event(
                self.DenialRecorded, claim_number=claim.number, carc=carcs, rarc=rarcs,
                deadline=adjudication_date + timedelta(days=appeal_window_days),
                adjudication_seq=len(claim.adjudications), reason="", **who)
        return True

    def _reversal_pr_bucket(self, claim: Claim, seq: int | None) -> str:
        """A reversal takes the PR back from where the original put it."""
        if seq is not None and claim.adjudications[seq - 1].pr_to:
            return claim.adjudications[seq - 1].pr_to
        return "patient"

    def _next_payer(self, bucket: str) -> ResponsibleParty | None:
        names = [p.bucket for p in self.parties]
        if bucket not in names:
            return None
        for p in self.parties[names.index(bucket) + 1:]:
            if p.kind != "patient":
                return p
        return None

    def _reversed_adjudication(self, claim: Claim, charge: Money, paid: Money, pr: Money,
                               icn: str, adjustments: list[Adjustment]) -> Adjudication:
        """The adjudication a reversal (22) names: posted, not yet reversed, whose charge,
        paid, patient responsibility and every CAS (by group and reason) it negates; the
        payer's ICN (CLP07) picks between equal candidates."""
        totals: dict[tuple[str, str], Money] = {}
        for a in adjustments:
            totals[(a.group, a.reason)] = totals.get((a.group, a.reason), Money.zero()) - a.amount
        fits = []
        for adj in claim.active_adjudications():
            if adj.paid != -paid or adj.charge != -charge or adj.patient_responsibility != -pr:
                continue
            theirs: dict[tuple[str, str], Money] = {}
            for a in adj.adjustments:
                theirs[(a.group, a.reason)] = theirs.get((a.group, a.reason), Money.zero()) + \
                    a.amount
            if {k: v for k, v in theirs.items() if not v.is_zero()} != \
                    {k: v for k, v in totals.items() if not v.is_zero()}:
                continue
            fits.append(adj)
        if not fits:
            raise RuleViolation("status_code", "reversal.pairs_with_original",
                                "status_code: a reversal (22) must negate a posted, unreversed "
                                "adjudication of this claim (paid, charge, PR and every CAS)")
        by_icn = [a for a in fits if icn and a.payer_icn == icn]
        return (by_icn or fits)[-1]

    def post_provider_adjustment(self, claim_number: str, *, reason_code: str, reference: str,
                                 amount: Any, remittance_key: str, actor: Actor) -> None:
        """A PLB adjustment that names this claim (PLB03-2: its ICN or claim number): WO
        recoupment, FB forwarding balance, 72, J1… A positive amount is money the payer takes
        back: on a voided claim it settles what was owed back; on a live claim it is open with
        the payer again. A negative amount is extra payment on the claim."""
        who = self._actor(actor)
        claim = self._claim(claim_number)
        value = Money.parse(amount, "amount")
        if value.is_zero():
            raise InvalidValue("amount", "money.non_zero", "amount: must not be zero")
        if not isinstance(reason_code, str) or not 2 <= len(reason_code) <= 2:
            raise InvalidValue("reason_code", "plb.reason", "reason_code: a 2-character PLB code")
        if claim.status == "voided":
            if value > claim.owed_back:
                raise RuleViolation("amount", "plb.not_above_owed",
                                    f"amount: {value} is more than the voided claim's payment "
                                    f"still owed back ({claim.owed_back})")
        elif (self.balance(claim.bucket) + value).is_negative():
            raise RuleViolation("amount", "balance.payer_negative",
                                f"amount: the {claim.bucket} payer balance would go below zero")
        self.trigger_event(self.ProviderAdjustmentPosted, claim_number=claim.number,
                           plb_reason=reason_code, reference=str(reference)[:50], amount=value,
                           remittance_key=remittance_key, books=True, reason="", **who)

    # ------------------------------------------------------------------ denials and appeals
    def file_appeal(self, claim_number: str, *, filed_on: date, actor: Actor, reason: str,
                    documents: list[str] | None = None) -> None:
        """Appeal a denial: the denied amount goes back to the payer's open balance."""
        who = self._actor(actor)
        reason = _require_reason(reason, "file an appeal")
        claim = self._claim(claim_number)
        if claim.status != "denied":
            raise IllegalTransition("claim_number", "appeal.requires_denial",
                                    f"claim_number: a {claim.status} claim has no denial to "
                                    "appeal")
        if claim.denial_deadline is not None and filed_on > claim.denial_deadline:
            raise RuleViolation("filed_on", "appeal.deadline",
                                f"filed_on: the appeal deadline was {claim.denial_deadline}")
        # reopen what the denial adjusted off (non-PR, claim and line level)
        reopened: list[Adjustment] = []
        if claim.denial_seq is not None:
            denial = claim.adjudications[claim.denial_seq - 1]
            reopened = [a for a in denial.adjustments if a.group != "PR"]
        level = claim.appeals + 1
        self.trigger_event(self.AppealFiled, claim_number=claim.number, level=level,
                           filed_on=filed_on, documents=list(documents or []),
                           reopened=reopened, reason=reason, **who)

    def record_denial(self, claim_number: str, *, carc: list[str], deadline: date,
                      actor: Actor, rarc: list[str] | None = None, reason: str = "") -> None:
        """Record a denial received outside an 835 (a letter, a portal), with its appeal
        deadline. Denials that arrive in an 835 (CLP02=4) are recorded by the posting."""
        who = self._actor(actor)
        claim = self._claim(claim_number)
        if claim.status not in ("submitted", "accepted", "adjudicated", "paid"):
            raise IllegalTransition("claim_number", "denial.requires_submitted",
                                    f"claim_number: a {claim.status} claim cannot be denied")
        codes = [c for c in (carc or []) if isinstance(c, str) and 1 <= len(c) <= 5]
        if not codes or len(codes) != len(carc):
            raise InvalidValue("carc", "denial.carc", "carc: one or more CARC codes")
        if not isinstance(deadline, date):
            raise InvalidValue("deadline", "date", "deadline: must be a date")
        self.trigger_event(self.DenialRecorded, claim_number=claim.number, carc=list(codes),
                           rarc=list(rarc or []), deadline=deadline, adjudication_seq=None,
                           reason=reason, **who)

    def decide_appeal(self, claim_number: str, *, outcome: str, decided_on: date,
                      actor: Actor, reason: str = "") -> None:
        who = self._actor(actor)
        claim = self._claim(claim_number)
        if not claim.appeal_open:
            raise IllegalTransition("claim_number", "appeal.open",
                                    "claim_number: the claim has no open appeal")
        if outcome not in ("overturned", "upheld", "partial"):
            raise InvalidValue("outcome", "appeal.outcome",
                               "outcome: overturned, upheld or partial")
        reapplied: list[Adjustment] = []
        if outcome == "upheld" and claim.denial_seq is not None:
            denial = claim.adjudications[claim.denial_seq - 1]
            reapplied = [a for a in denial.adjustments if a.group != "PR"]
        self.trigger_event(self.AppealDecided, claim_number=claim.number, outcome=outcome,
                           decided_on=decided_on, reapplied=reapplied, reason=reason, **who)

    # ------------------------------------------------------------------ patient account
    def issue_statement(self, *, statement_date: date, actor: Actor) -> Money:
        """Bill the patient what the payers assigned them (PR), less what they paid."""
        who = self._actor(actor)
        due = self.patient_balance()
        if not due.is_positive():
            raise RuleViolation("statement_date", "statement.nothing_owed",
                                "statement_date: the patient owes nothing on this encounter")
        s = self.patient_share
        self.trigger_event(self.StatementIssued, statement_no=len(self.statements) + 1,
                           statement_date=statement_date, amount_due=due,
                           deductible=s.get("deductible", Money.zero()),
                           coinsurance=s.get("coinsurance", Money.zero()),
                           copay=s.get("copay", Money.zero()),
                           other=s.get("other", Money.zero()), reason="", **who)
        return due

    def record_patient_payment(self, amount: Any, *, method: str, received_on: date,
                               actor: Actor) -> Money:
        who = self._actor(actor)
        value = _positive_money(amount, "amount")
        if method not in ("cash", "check", "card", "ach", "other"):
            raise InvalidValue("method", "payment.method",
                               "method: cash, check, card, ach or other")
        after = self.patient_balance() - value
        self.trigger_event(self.PatientPaymentReceived, amount=value, method=method,
                           received_on=received_on, balance_after=after, reason="", **who)
        return after

    def issue_refund(self, amount: Any, *, method: str, issued_on: date, actor: Actor,
                     reason: str) -> Money:
        who = self._actor(actor)
        reason = _require_reason(reason, "issue a refund")
        value = _positive_money(amount, "amount")
        credit = -self.patient_balance()
        if value > credit:
            raise RuleViolation("amount", "refund.not_above_credit",
                                f"amount: the refund {value} exceeds the patient's credit "
                                f"{max(credit, Money.zero())}")
        after = self.patient_balance() + value
        self.trigger_event(self.RefundIssued, amount=value, method=str(method)[:20],
                           issued_on=issued_on, balance_after=after, reason=reason, **who)
        return after

    def write_off(self, amount: Any, *, bucket: str, category: str, approver_id: str,
                  actor: Actor, reason: str, claim_number: str = "") -> None:
        who = self._actor(actor)
        reason = _require_reason(reason, "write off")
        value = _positive_money(amount, "amount")
        if category not in WRITE_OFF_REASONS:
            raise InvalidValue("category", "write_off.category",
                               f"category: one of {', '.join(WRITE_OFF_REASONS)}")
        if bucket not in self.buckets:
            raise NotFound("bucket", "bucket.exists", f"bucket: no balance kept as {bucket!r}")
        if value > self.balance(bucket):
            raise RuleViolation("amount", "write_off.not_above_balance",
                                f"amount: exceeds the open {bucket} balance {self.balance(bucket)}")
        if not approver_id:
            raise InvalidValue("approver_id", "required", "approver_id: required")
        if claim_number:
            self._claim(claim_number)
        self.trigger_event(self.WriteOffPosted, bucket=bucket, claim_number=claim_number,
                           amount=value, category=category, approver_id=approver_id,
                           reason=reason, **who)

    # ------------------------------------------------------------------ access grants
    def access_grants(self) -> dict[str, AccessGrant]:
        grants = self.__dict__.get("grants")
        if grants is None:  # an encounter (or snapshot) from before grants existed
            grants = self.__dict__["grants"] = {}
        return grants

    def grant_for(self, user_id: str, at: datetime) -> AccessGrant | None:
        """The grant through which ``user_id`` may access this encounter at ``at``."""
        for g in self.access_grants().values():
            if g.grantee_id == user_id and g.active_at(at):
                return g
        return None

    def require_access(self, actor: Actor, at: datetime | None) -> None:
        """An advocate acts on this encounter only through an active grant; without one the
        encounter is answered as not found (its existence is not confirmed)."""
        if actor.role != ADVOCATE_ROLE:
            return
        if at is None or self.grant_for(actor.id, at) is None:
            raise NotFound("encounter_id", "encounter.exists", "encounter_id: no such encounter")

    def grant_access(self, grant_id: str, *, grantee_id: str, authorization_ref: str,
                     valid_until: datetime, at: datetime, actor: Actor,
                     basis: str = "staff", patient_ref: str | None = None,
                     reason: str = "") -> AccessGrant:
        """Give an advocate access to this encounter until ``valid_until``, on the patient's
        behalf (``authorization_ref``). Billing staff and admins only. For an imported
        patient authorization (``basis='patient_authorization'``) the authorization's
        patient must be this encounter's patient."""
        who = self._actor(actor)
        if actor.role not in GRANTOR_ROLES:
            raise RuleViolation("actor", "grant.grantor",
                                "actor: only billing staff or an admin record access grants")
        if not grant_id or grant_id in self.access_grants():
            raise RuleViolation("grant_id", "grant.unique", "grant_id: must be new")
        if not isinstance(grantee_id, str) or not grantee_id.strip():
            raise InvalidValue("grantee_id", "required", "grantee_id: required")
        if grantee_id == actor.id:
            raise RuleViolation("grantee_id", "grant.self", "grantee_id: no one grants themself")
        if not isinstance(authorization_ref, str) or not authorization_ref.strip():
            raise InvalidValue("authorization_ref", "required",
                               "authorization_ref: the patient's authorization reference")
        if basis not in GRANT_BASES:
            raise InvalidValue("basis", "grant.basis", "basis: staff or patient_authorization")
        if basis == "patient_authorization" and patient_ref != self.patient_ref:
            raise RuleViolation("patient_ref", "grant.patient_matches",
                                "patient_ref: the authorization is not this encounter's patient")
        if not isinstance(valid_until, datetime) or valid_until.tzinfo is None:
            raise InvalidValue("valid_until", "grant.valid_until",
                               "valid_until: a moment with a timezone offset")
        if valid_until <= at:
            raise InvalidValue("valid_until", "grant.future", "valid_until: must be in the future")
        if self.grant_for(grantee_id, at) is not None:
            raise RuleViolation("grantee_id", "grant.active_exists",
                                "grantee_id: already has an active grant on this encounter")
        self.trigger_event(self.AccessGranted, grant_id=grant_id, grantee_id=grantee_id,
                           authorization_ref=authorization_ref.strip()[:80], basis=basis,
                           valid_until=valid_until, reason=str(reason or "")[:500], **who)
        return self.access_grants()[grant_id]

    def revoke_access(self, grant_id: str, *, actor: Actor, reason: str) -> AccessGrant:
        """Withdraw a grant (the patient revoked the authorization, the advocate's work is
        done). Billing staff and admins only; a reason is required."""
        who = self._actor(actor)
        if actor.role not in GRANTOR_ROLES:
            raise RuleViolation("actor", "grant.grantor",
                                "actor: only billing staff or an admin revoke access grants")
        reason = _require_reason(reason, "revoke an access grant")
        g = self.access_grants().get(grant_id)
        if g is None:
            raise NotFound("grant_id", "grant.exists", "grant_id: no such grant")
        if g.revoked:
            raise IllegalTransition("grant_id", "grant.active", "grant_id: already revoked")
        self.trigger_event(self.AccessRevoked, grant_id=grant_id, grantee_id=g.grantee_id,
                           reason=reason, **who)
        return g

    # ------------------------------------------------------------------ disputes
    def open_dispute(self, dispute_id: str, *, line_nos: list[int], category: str,
                     description: str, actor: Actor, advocate_id: str | None = None,
                     at: datetime | None = None) -> None:
        """Open a dispute. An advocate opens it for themself, and only on an encounter
        granted to them (``at`` is the moment the grant is checked against); staff may
        assign it to an advocate who holds an active grant, else it is theirs."""
        who = self._actor(actor)
        self.require_access(actor, at)
        if actor.role == ADVOCATE_ROLE and advocate_id not in (None, actor.id):
            raise RuleViolation("advocate_id", "dispute.advocate_self",
                                "advocate_id: an advocate opens disputes assigned to themself")
        assignee = advocate_id or actor.id
        if not dispute_id or dispute_id in self.disputes:
            raise RuleViolation("dispute_id", "dispute.unique", "dispute_id: must be new")
        if not line_nos:
            raise InvalidValue("line_nos", "dispute.lines", "line_nos: name the disputed lines")
        for i, n in enumerate(line_nos):
            if str(n) not in self.lines:
                raise NotFound(f"line_nos[{i}]", "line.exists", f"line_nos[{i}]: no line {n}")
        if category not in ("charge", "coding", "coverage", "balance", "other"):
            raise InvalidValue("category", "dispute.category",
                               "category: charge, coding, coverage, balance or other")
        if assignee != actor.id and at is not None and self.grant_for(assignee, at) is None:
            raise RuleViolation("advocate_id", "dispute.advocate_grant",
                                "advocate_id: the advocate holds no active grant here")
        self.trigger_event(self.DisputeOpened, dispute_id=dispute_id, line_nos=list(line_nos),
                           category=category, advocate_id=assignee,
                           description=str(description)[:2000], reason="", **who)

    def _open_dispute(self, dispute_id: str, actor: Actor, at: datetime | None) -> Dispute:
        self.require_access(actor, at)
        d = self.disputes.get(dispute_id)
        if d is None or (actor.role == "advocate" and d.advocate_id != actor.id):
            # an advocate works only the disputes assigned to them
            raise NotFound("dispute_id", "dispute.exists", "dispute_id: no such dispute")
        if d.status != "open":
            raise IllegalTransition("dispute_id", "dispute.open", "dispute_id: already resolved")
        return d

    def add_dispute_note(self, dispute_id: str, *, note: str, actor: Actor,
                         at: datetime | None = None) -> None:
        who = self._actor(actor)
        self._open_dispute(dispute_id, actor, at)
        if not note or not note.strip():
            raise InvalidValue("note", "required", "note: required")
        self.trigger_event(self.DisputeNoteAdded, dispute_id=dispute_id,
                           note=note.strip()[:4000], reason="", **who)

    def resolve_dispute(self, dispute_id: str, *, outcome: str, actor: Actor,
                        reason: str, at: datetime | None = None) -> None:
        who = self._actor(actor)
        self._open_dispute(dispute_id, actor, at)
        reason = _require_reason(reason, "resolve a dispute")
        if outcome not in ("upheld", "adjusted", "rejected", "withdrawn"):
            raise InvalidValue("outcome", "dispute.outcome",
                               "outcome: upheld, adjusted, rejected or withdrawn")
        if actor.role == "advocate" and outcome != "withdrawn":
            raise RuleViolation("outcome", "dispute.advocate_outcome",
                                "outcome: an advocate may only withdraw a dispute; billing "
                                "staff decide the others")
        self.trigger_event(self.DisputeResolved, dispute_id=dispute_id, outcome=outcome,
                           reason=reason, **who)


# Encounter.Opened carries everything __init__ needs; the library calls __init__ on replay.


def _copy_line(line: ServiceLine) -> ServiceLine:
    return ServiceLine(
        line_no=line.line_no, kind=line.kind, procedure_code=line.procedure_code,
        modifiers=list(line.modifiers), units=line.units, unit_type=line.unit_type,
        charge=line.charge, pointers=list(line.pointers), line_date=line.line_date,
        rendering_npi=line.rendering_npi, revenue_code=line.revenue_code, ndc=line.ndc,
        ndc_quantity=line.ndc_quantity, description=line.description,
    )


def _check_parties(parties: Any) -> None:
    if not isinstance(parties, list | tuple) or not parties:
        raise InvalidValue("responsible_parties", "parties.required",
                           "responsible_parties: at least one, in COB order")
    seen: set[str] = set()
    for i, p in enumerate(parties):
        field = f"responsible_parties[{i}]"
        if not isinstance(p, ResponsibleParty):
            raise InvalidValue(field, "party.type", f"{field}: not a responsible party")
        if p.kind not in PARTY_KINDS:
            raise InvalidValue(f"{field}.kind", "party.kind",
                               f"{field}.kind: insurer, business or patient")
        expected = "patient" if p.kind == "patient" else (SEQUENCES[i] if i < 3 else "")
        if p.bucket != expected:
            raise InvalidValue(f"{field}.bucket", "party.cob_order",
                               f"{field}.bucket: must be {expected or 'at most tertiary'} "
                               "(COB order: payers first, the patient last)")
        if p.kind == "patient" and i != len(parties) - 1:
            raise InvalidValue(field, "party.patient_last", f"{field}: the patient comes last")
        if p.kind != "patient" and not p.payer_id:
            raise InvalidValue(f"{field}.payer_id", "required", f"{field}.payer_id: required")
        if p.bucket in seen:
            raise InvalidValue(f"{field}.bucket", "party.unique", f"{field}: duplicate")
        seen.add(p.bucket)


def _negated_allowed(lines: list[LineResult], original: Adjudication) -> list[LineResult]:
    """A reversal's SVC rarely repeats AMT*B6: it negates the allowed amount the original
    posted for that line."""
    allowed = {r.line_no: r.allowed for r in original.lines}
    out = []
    for res in lines:
        if res.allowed is None and allowed.get(res.line_no) is not None:
            res = LineResult(res.line_no, res.procedure_code, res.submitted, res.paid,
                             -allowed[res.line_no], res.units, tuple(res.adjustments),  # type: ignore[operator]
                             tuple(res.remarks))
        out.append(res)
    return out


def _check_adjustment(adj: Adjustment, field: str) -> None:
    if adj.group not in ADJUSTMENT_GROUPS:
        raise InvalidValue(f"{field}.group", "cas.group",
                           f"{field}.group: {adj.group!r} is not a 5010 CAS group (CO, OA, PI, PR)")
    if not isinstance(adj.amount, Money):
        raise InvalidValue(f"{field}.amount", "money.type", f"{field}.amount: must be money")
    if not adj.reason or len(adj.reason) > 5:
        raise InvalidValue(f"{field}.reason", "cas.reason", f"{field}.reason: a CARC code")


__all__ = ["Encounter", "Decimal"]
