"""The parts an encounter is made of. Plain dataclasses: they are stored inside events and
snapshots by the ledger's transcoder (``ledger.persistence.transcoding``), which knows each by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from ledger.domain.values import Money

SEQUENCES = ("primary", "secondary", "tertiary")
PARTY_KINDS = ("insurer", "business", "patient")
ADJUSTMENT_GROUPS = ("CO", "OA", "PI", "PR")
FREQUENCIES = ("1", "7", "8")
WRITE_OFF_REASONS = ("contractual", "timely_filing", "small_balance", "bad_debt", "charity",
                     "administrative")
CLAIM_STATUSES = ("draft", "scrubbed", "submitted", "accepted", "rejected", "adjudicated",
                  "denied", "in_appeal", "paid", "closed", "replaced", "voided")
# CLP02 claim status codes (835): what each does to the claim. One table, imported by the
# aggregate, the importer and the read models.
CLAIM_STATUS_FOR_CODE = {"1": "paid", "2": "paid", "3": "paid", "19": "paid", "20": "paid",
                         "21": "paid", "4": "denied", "23": "closed", "25": "adjudicated"}
ADJUDICATION_CODES = frozenset({"1", "2", "3", "4", "19", "20", "21", "22", "23", "25"})
FORWARDED_CODES = frozenset({"19", "20", "21"})
# A second adjudication with one of these codes, by the same payer, with no reversal in
# between (and no open appeal), is a suspected duplicate payment, never income.
FINAL_CODES = frozenset({"1", "2", "3", "4", "19", "20", "21"})
REVERSAL_CODE = "22"
# CARC 23: "the impact of prior payer(s) adjudication": on a secondary/tertiary claim it is
# the part of the charge the earlier payers settled; it was never in this payer's bucket.
PRIOR_PAYER_CARC = "23"
# PLB03-1 reasons that name a claim in PLB03-2 (payer ICN or patient control number)
CLAIM_LINKED_PLB = frozenset({"WO", "FB", "72", "J1", "50", "51", "90", "AH", "B2", "B3",
                              "BD", "BN", "C5", "CR", "CW", "E3", "FC", "GO", "HM", "IP",
                              "IR", "IS", "L3", "LE", "LS", "OA", "OB", "PI", "PL", "RA",
                              "RE", "SL", "TL", "WU"})
CLAIM_KEY_SEP = "~"


def books_adjustment(group: str, reason: str, bucket: str, first_bucket: str) -> bool:
    """Whether a CAS adjustment moves its claim's payer bucket: CO/OA/PI do, except CARC 23
    (prior payers' impact) on a claim that is not the first payer's, which never was in that
    payer's bucket; PR never does (it moves to the next party with the PR assignment)."""
    if group == "PR":
        return False
    return not (reason == PRIOR_PAYER_CARC and bucket != first_bucket)


def claim_key(clm01: str, suffix: str) -> str:
    """The ledger's key of a claim that shares its CLM01 with an earlier one (a replacement,
    a void, a secondary claim): ``CLM01~suffix``. The CLM01 itself stays on the claim."""
    return f"{clm01}{CLAIM_KEY_SEP}{suffix}"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it. ``id`` is a staff or system id, never a patient identifier."""

    id: str
    role: str


@dataclass(frozen=True, slots=True)
class ResponsibleParty:
    """One party responsible for paying, in coordination-of-benefits order.

    ``bucket`` is where its share of the balance is kept: primary/secondary/tertiary for
    insurers and businesses, ``patient`` for the patient (self-pay or the remainder).
    """

    bucket: str
    kind: str
    payer_id: str
    name: str = ""
    member_id: str = ""  # PHI: kept in the (encryptable) event state only


@dataclass(slots=True)
class Diagnosis:
    code: str  # ICD-10-CM without the dot
    poa: str
    code_set_version: str


@dataclass(slots=True)
class ServiceLine:
    line_no: int
    kind: str  # service | supply
    procedure_code: str
    modifiers: list[str]
    units: Decimal
    unit_type: str  # UN or MJ
    charge: Money
    pointers: list[int]
    line_date: date
    rendering_npi: str = ""
    revenue_code: str = ""
    ndc: str = ""
    ndc_quantity: Decimal | None = None
    description: str = ""
    removed: bool = False
    charge_adjustments: list[Money] = field(default_factory=list)
    paid: Money = field(default_factory=Money.zero)
    allowed: Money = field(default_factory=Money.zero)
    adjustments: list[Adjustment] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    adjustment_total: Money = field(default_factory=Money.zero)  # Σ charge_adjustments

    @property
    def current_charge(self) -> Money:
        return self.charge + self.adjustment_total

    def add_charge_adjustment(self, amount: Money) -> None:
        self.charge_adjustments.append(amount)
        self.adjustment_total = self.adjustment_total + amount


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A CAS adjustment: group (CO/OA/PI/PR), CARC reason, amount (negative on reversals)."""

    group: str
    reason: str
    amount: Money
    quantity: Decimal | None = None
    line_no: int | None = None  # None: claim-level


@dataclass(frozen=True, slots=True)
class LineResult:
    """One adjudicated line of a remittance (SVC loop)."""

    line_no: int
    procedure_code: str
    submitted: Money
    paid: Money
    allowed: Money | None
    units: Decimal
    adjustments: tuple[Adjustment, ...] = ()
    remarks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RemittanceRef:
    """Identifies a remittance (835): payer id TRN03, trace TRN02, hash of the file."""

    payer_id: str
    trace_number: str
    file_hash: str
    payment_date: date

    @property
    def key(self) -> str:
        return f"{self.payer_id}|{self.trace_number}|{self.file_hash}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One scrubber finding."""

    rule_id: str
    severity: str  # error | warning
    message: str
    line_no: int | None = None


@dataclass(slots=True)
class Adjudication:
    """What one remittance said about one claim (kept on the claim for its history)."""

    seq: int
    status_code: str
    charge: Money
    paid: Money
    patient_responsibility: Money
    payer_icn: str
    adjudication_date: date
    remittance_key: str
    adjustments: list[Adjustment]
    reversed: bool = False
    lines: list[LineResult] = field(default_factory=list)  # SVC results, as posted
    reversed_by: int | None = None  # seq of the reversal (22) that negated this one
    trace_number: str = ""
    pr_to: str = ""  # the bucket its patient responsibility went to (patient / next payer)


@dataclass(slots=True)
class Claim:
    number: str
    payer_id: str
    bucket: str
    frequency: str
    original_icn: str
    line_nos: list[int]
    status: str = "draft"
    scrub_passed: bool = False
    scrub_revision: int = -1
    scrub_ruleset: str = ""
    scrub_findings: list[Finding] = field(default_factory=list)
    submitted_charge: Money | None = None
    submissions: int = 0
    payer_icn: str = ""
    paid: Money = field(default_factory=Money.zero)
    allowed: Money = field(default_factory=Money.zero)
    patient_responsibility: Money = field(default_factory=Money.zero)
    adjudications: list[Adjudication] = field(default_factory=list)
    denial_deadline: date | None = None
    denial_seq: int | None = None
    appeal_open: bool = False
    appeals: int = 0
    reopened: Money = field(default_factory=Money.zero)
    replaced_by: str = ""
    replaces: str = ""
    remarks: list[str] = field(default_factory=list)
    clm01: str = ""  # the claim number on the wire (CLM01/CLP01); "" = same as number
    crossover: bool = False  # created because the prior payer forwarded it (COB)
    charge: Money | None = None  # what this claim's payer is billed for (secondary: the charge)
    liability: Money = field(default_factory=Money.zero)  # booked into its bucket for it
    adjusted: Money = field(default_factory=Money.zero)  # CO/OA/PI booked off its bucket
    prior_payer_impact: Money = field(default_factory=Money.zero)  # CAS 23, not booked
    forwarded: Money = field(default_factory=Money.zero)  # PR moved to the next payer
    to_patient: Money = field(default_factory=Money.zero)  # PR moved to the patient
    void_settled: Money = field(default_factory=Money.zero)  # open balance removed by a void
    recouped: Money = field(default_factory=Money.zero)  # PLB amounts taken back (WO, …)
    plb: list[ProviderAdjustmentRef] = field(default_factory=list)
    line_paid: dict[str, Money] = field(default_factory=dict)  # per line, this claim only
    line_allowed: dict[str, Money] = field(default_factory=dict)
    line_adjusted: dict[str, Money] = field(default_factory=dict)  # CO/OA/PI incl. CAS 23
    line_patient: dict[str, Money] = field(default_factory=dict)  # PR
    drg: str = ""  # the DRG the payer adjudicated an institutional claim by (835 CLP11)

    @property
    def wire_number(self) -> str:
        return self.clm01 or self.number

    @property
    def open_balance(self) -> Money:
        """What this claim still has open in its payer's bucket (never below zero)."""
        if self.status == "voided":
            return Money.zero()
        left = (self.liability - self.paid - self.adjusted - self.forwarded - self.to_patient
                - self.void_settled + self.recouped)
        return left if left.is_positive() else Money.zero()

    @property
    def owed_back(self) -> Money:
        """A voided claim's payment not yet returned to the payer (by a reversal or PLB)."""
        if self.status != "voided":
            return Money.zero()
        left = self.paid - self.recouped
        return left if left.is_positive() else Money.zero()

    def active_adjudications(self) -> list[Adjudication]:
        return [a for a in self.adjudications if not a.reversed and a.status_code != "22"]


@dataclass(frozen=True, slots=True)
class ProviderAdjustmentRef:
    """One PLB adjustment posted to a claim: reason (PLB03-1), reference (PLB03-2), amount
    (positive = taken from the provider, e.g. WO recoupment; negative = paid, e.g. L6)."""

    reason: str
    reference: str
    amount: Money
    remittance_key: str = ""


@dataclass(slots=True)
class Dispute:
    dispute_id: str
    line_nos: list[int]
    category: str
    advocate_id: str
    status: str = "open"
    notes: int = 0
    outcome: str = ""


@dataclass(slots=True)
class AccessGrant:
    """An advocate's access to one encounter, given on the patient's behalf.

    ``authorization_ref`` is the patient's authorization (a surrogate reference to the signed
    form, never PHI); ``basis`` says how it came: ``staff`` (billing staff or an admin recorded
    it) or ``patient_authorization`` (an authorization imported through the API)."""

    grant_id: str
    grantee_id: str
    authorization_ref: str
    basis: str
    valid_until: datetime
    granted_by: str
    revoked: bool = False
    revoked_by: str = ""

    def active_at(self, moment: datetime) -> bool:
        return not self.revoked and moment < self.valid_until
