"""The Encounter aggregate: every service, supply, code and billing action of one patient
encounter, as immutable events.

Each public method is one user action: it checks every rule first and only then triggers
events, so a refused command records nothing. Event ``apply`` methods are re-run on replay:
they hold no I/O, no clock, no randomness, and copy what they are given.

This module holds the aggregate's state, its events (nested classes: their topics are
``ledger.domain.encounter.aggregate:Encounter.<Name>``; the ones stored before the split are
registered in ``ledger.persistence.topics``) and the helpers the events use. The commands
live with their sub-domain, one mixin each: ``coding``, ``charges``, ``claims``,
``remittance``, ``appeals``, ``patient_account``, ``grants``, ``disputes``; ``rules`` holds
what several of them share.

Money model (per encounter, kept per bucket): every charge first sits with the first
responsible party. A payer's payment and its CO/OA/PI adjustments reduce that payer's bucket;
its PR adjustments move the amount to the patient (or, when the payer forwards the claim,
to the next payer). Patient payments reduce the patient bucket (below zero is a credit,
i.e. a refund liability); refunds and write-offs are booked against a bucket. So for the
encounter: total charge = payments + adjustments + write-offs - refunds + open balances.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from eventsourcing.domain import Aggregate

from ledger.domain.encounter.appeals import Appeals
from ledger.domain.encounter.charges import Charges
from ledger.domain.encounter.claims import Claims
from ledger.domain.encounter.coding import Coding
from ledger.domain.encounter.disputes import Disputes
from ledger.domain.encounter.grants import Grants
from ledger.domain.encounter.patient_account import PatientAccount
from ledger.domain.encounter.remittance import Remittance
from ledger.domain.encounter.rules import MAX_DIAGNOSES
from ledger.domain.errors import InvalidValue, NotFound
from ledger.domain.model import (
    CLAIM_STATUS_FOR_CODE,
    PARTY_KINDS,
    SEQUENCES,
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
    ResponsibleParty,
    ServiceLine,
    books_adjustment,
)
from ledger.domain.values import Money, check_date, check_storable, place_of_service_format


class Encounter(Coding, Charges, Claims, Remittance, Appeals, PatientAccount, Grants,
                Disputes, Aggregate):
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
            enc._adjust_charge(self.line_no, self.amount)

    class ChargeReversed(Event):
        line_no: int
        adjustment_index: int
        amount: Money  # the negation of the reversed adjustment

        def apply(self, enc: Encounter) -> None:
            enc._adjust_charge(self.line_no, self.amount)

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

    def _adjust_charge(self, line_no: int, amount: Money) -> None:
        """A charge adjustment (or the reversal of one, negated) on a line: kept on the line
        and booked to the first responsible party's bucket."""
        self.lines[str(line_no)].add_charge_adjustment(amount)
        self._book(self.first_bucket, amount)
        self.content_revision += 1

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

