"""What the X12 readers produce and the reports they write: plain dataclasses.

Report messages name segments, claims (CLP01/CLM01, the provider's claim number), lines and
rules; never patient names or member ids.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from ledger.domain.values import CENT, Money


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding about a file: ``severity`` error blocks posting, warning does not."""

    rule: str
    message: str
    severity: str = "error"
    transaction: int | None = None  # 1-based ST..SE in the file
    claim: str = ""  # CLP01 / CLM01
    line: int | None = None  # 1-based SVC / LX within the claim
    segment: int | None = None  # 1-based segment position in the file

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


class MalformedElement(Exception):
    def __init__(self, element: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.element = element
        self.rule = rule
        self.message = message


def money(value: str, element: str, *, required: bool = True) -> Money:
    """An X12 amount (R type: ``12``, ``12.5``, ``-9.00``, ``.5``) as Money, exact to cents."""
    text = (value or "").strip()
    if not text:
        if required:
            raise MalformedElement(element, "x12.element_required",
                                   f"{element}: required amount is missing")
        return Money.zero()
    try:
        amount = Decimal(text)
        cents = amount.quantize(CENT)
    except InvalidOperation:  # not a number, or not finite
        raise MalformedElement(element, "x12.amount_format",
                               f"{element}: not an amount") from None
    if cents != amount or abs(cents) >= _LIMIT:
        raise MalformedElement(element, "x12.amount_format",
                               f"{element}: not an amount exact to the cent")
    # validated here (finite, exact to the cent): skip Money's re-validation, 240,000 times
    # for a 20,000-claim file
    m = object.__new__(Money)
    object.__setattr__(m, "amount", cents)
    return m


_LIMIT = Decimal(10) ** 12


def decimal_or(value: str, element: str, default: Decimal) -> Decimal:
    text = (value or "").strip()
    if not text:
        return default
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise MalformedElement(element, "x12.number_format", f"{element}: not a number") from None
    if not d.is_finite():
        raise MalformedElement(element, "x12.number_format", f"{element}: not a number")
    return d


def x12_date(value: str, element: str, *, required: bool = False) -> date | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise MalformedElement(element, "x12.element_required", f"{element}: date missing")
        return None
    if len(text) == 6 and text.isdigit():
        text = "20" + text
    if len(text) != 8 or not text.isdigit():
        raise MalformedElement(element, "x12.date_format", f"{element}: not a CCYYMMDD date")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise MalformedElement(element, "x12.date_format", f"{element}: not a date") from None


# ---------------------------------------------------------------- 835
@dataclass(slots=True)
class Cas:
    group: str
    reason: str
    amount: Money
    quantity: Decimal | None = None


@dataclass(slots=True)
class ServicePayment:
    position: int  # 1-based within the claim
    segment: int
    qualifier: str
    procedure_code: str
    modifiers: list[str]
    charge: Money
    paid: Money
    revenue_code: str = ""
    units: Decimal = Decimal(1)
    original_code: str = ""  # SVC06: the code as submitted, when the payer changed it
    allowed: Money | None = None  # AMT*B6
    control_number: str = ""  # REF*6R
    service_date: date | None = None
    adjustments: list[Cas] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ClaimPayment:
    position: int  # 1-based within the transaction
    segment: int
    claim_number: str
    status: str
    charge: Money
    paid: Money
    patient_responsibility: Money
    filing_indicator: str = ""
    payer_icn: str = ""
    frequency: str = ""
    adjustments: list[Cas] = field(default_factory=list)  # claim-level CAS
    drg_code: str = ""  # CLP11
    services: list[ServicePayment] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)  # MOA / MIA remark codes


@dataclass(slots=True)
class ProviderAdjustment:
    segment: int
    provider_id: str
    fiscal_date: date | None
    reason: str
    reference: str
    amount: Money


@dataclass(slots=True)
class Remittance:
    """One 835 transaction set (ST..SE): one payment (BPR/TRN) and the claims it settles."""

    index: int
    segment: int
    control_number: str = ""
    handling: str = ""
    total_paid: Money = field(default_factory=Money.zero)
    method: str = ""
    payment_date: date | None = None
    production_date: date | None = None
    trace_number: str = ""
    payer_id: str = ""  # TRN03
    payer_ids: set[str] = field(default_factory=set)  # TRN03, N1*PR N104, REF*2U
    payer_name: str = ""
    claims: list[ClaimPayment] = field(default_factory=list)
    provider_adjustments: list[ProviderAdjustment] = field(default_factory=list)
    content_hash: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.payer_id, self.trace_number, self.content_hash)


@dataclass(slots=True)
class ParsedFile:
    kind: str
    version: str
    file_hash: str
    has_isa: bool
    remittances: list[Remittance] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    interchange_control: str = ""
    group_control: str = ""

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]
