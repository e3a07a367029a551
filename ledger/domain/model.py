"""The parts an encounter is made of. Plain dataclasses: they are stored inside events and
snapshots by the ledger's transcoder (``ledger.transcoding``), which knows each by name.
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
                  "denied", "in_appeal", "paid", "closed", "voided")


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
