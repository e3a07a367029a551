"""Request bodies. Money is a JSON string with at most two decimals ("180.00"), never a JSON
number; pydantic refuses numbers for these fields. Code formats and business rules are checked
by the domain, which names the field and the rule."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)
from pydantic_core import PydanticCustomError

from ledger.domain.commands import Command
from ledger.domain.values import (
    EARLIEST_DATE,
    FUTURE_ALLOWANCE,
    MAX_AMOUNT,
    MAX_AMOUNT_DIGITS,
    text_is_clean,
)

_MONEY = rf"\d{{1,{MAX_AMOUNT_DIGITS}}}(\.\d{{1,2}})?$"
_MONEY_LIMIT = f"at most {MAX_AMOUNT} in absolute value (the read models' precision)"
MoneyStr = Annotated[str, Field(pattern=rf"^-?{_MONEY}", examples=["180.00"],
                                description=f"US dollars as a string, at most 2 decimals, "
                                f"{_MONEY_LIMIT}")]
PositiveMoneyStr = Annotated[str, Field(pattern=rf"^{_MONEY}", examples=["30.00"],
                                        description=f"US dollars, {_MONEY_LIMIT}")]
UnitsStr = Annotated[str, Field(pattern=r"^\d{1,5}(\.\d{1,3})?$", examples=["1", "1.5"])]
Code = Annotated[str, Field(min_length=1, max_length=12)]
Text = Annotated[str, Field(max_length=500)]
Reason = Annotated[str, Field(min_length=1, max_length=500, examples=["specificity"])]


def _date_in_range(value: date) -> date:
    latest = date.today() + FUTURE_ALLOWANCE
    if not EARLIEST_DATE <= value <= latest:
        raise PydanticCustomError("date.range", "must be between {earliest} and {latest}",
                                  {"earliest": EARLIEST_DATE.isoformat(),
                                   "latest": latest.isoformat()})
    return value


def _iso_date_only(value: Any) -> Any:
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise PydanticCustomError("date.format", "must be a date written YYYY-MM-DD")


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A filter's date: an ISO date string only (never a number: 0 is not a date).
IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
# An ISO date string only (never a number: 0 is not a date), 1900-01-01 to a year from today.
BillingDate = Annotated[date, BeforeValidator(_iso_date_only), AfterValidator(_date_in_range),
                        Field(description="YYYY-MM-DD, from 1900-01-01 to a year from today")]


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        if not text_is_clean(value):
            raise PydanticCustomError("text.control_characters",
                                      "must not contain NUL or other control characters")
    elif isinstance(value, list):
        for item in value:
            _clean(item)
    return value


C = TypeVar("C", bound=Command)


def examples(*bodies: dict[str, Any]) -> ConfigDict:
    """A request body's configuration: unknown fields refused, ``bodies`` its examples."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(bodies)})


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        """No NUL or other control character in any text field (PostgreSQL text cannot
        hold NUL; a read model must be able to store every value an event carries)."""
        return _clean(value)

    def command_kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=False)

    def to(self, command: type[C], encounter_id: UUID, **path: Any) -> C:
        """The typed command this body asks for on ``encounter_id`` (``path``: the route's
        other path parameters)."""
        return command(encounter_id=encounter_id, **path, **self.command_kwargs())


class Party(Body):
    bucket: Literal["primary", "secondary", "tertiary", "patient"]
    kind: Literal["insurer", "business", "patient"]
    payer_id: Annotated[str, Field(max_length=80)] = ""
    name: Annotated[str, Field(max_length=120)] = ""
    member_id: Annotated[str, Field(max_length=80)] = ""


class OpenEncounter(Body):
    model_config = examples({
        "facility_id": "FAC-01", "patient_ref": "PT-1001", "service_from": "2026-03-10",
        "place_of_service": "11", "claim_type": "professional",
        "responsible_parties": [
            {"bucket": "primary", "kind": "insurer", "payer_id": "PAYER-A",
             "name": "Plan A", "member_id": "MEM-0001"},
            {"bucket": "patient", "kind": "patient"}]})
    facility_id: Annotated[str, Field(min_length=1, max_length=80)]
    patient_ref: Annotated[str, Field(min_length=1, max_length=80,
                                      description="surrogate patient id, never a name or MRN")]
    service_from: BillingDate
    service_to: BillingDate | None = None
    place_of_service: Annotated[str, Field(min_length=2, max_length=2)]
    claim_type: Literal["professional", "institutional"] = "professional"
    responsible_parties: Annotated[list[Party], Field(min_length=1, max_length=4)]


class CodeDiagnosis(Body):
    model_config = examples({"code": "R10.9", "position": 1})
    code: Code
    position: Annotated[int, Field(ge=1, le=25)] | None = None
    poa: Literal["", "Y", "N", "U", "W", "1"] = ""
    reason: Text = ""


class ReviseDiagnosis(Body):
    model_config = examples({"new_code": "R10.31", "reason": "specificity"})
    new_code: Code
    reason: Reason


class ReasonOnly(Body):
    model_config = examples({"reason": "not documented"})
    reason: Reason


class _LineBody(Body):
    """What a service line and a supply line both carry (as ``ledger.domain.commands``)."""

    procedure_code: Annotated[str, Field(max_length=12)] | None = None
    charge: MoneyStr
    units: UnitsStr = "1"
    pointers: Annotated[list[Annotated[int, Field(ge=1, le=25)]], Field(max_length=12)] = []
    modifiers: Annotated[list[Annotated[str, Field(max_length=4)]], Field(max_length=8)] = []
    line_date: BillingDate | None = None
    revenue_code: Annotated[str, Field(max_length=4)] = ""
    ndc: Annotated[str, Field(max_length=13)] = ""
    ndc_quantity: UnitsStr | None = None
    description: Annotated[str, Field(max_length=80)] = ""
    reason: Text = ""


class AddLine(_LineBody):
    model_config = examples(
        {"procedure_code": "99214", "charge": "180.00", "units": "1", "pointers": [1, 2],
         "rendering_npi": "1234567893"})
    unit_type: Literal["UN", "MJ", "DA"] = "UN"
    rendering_npi: Annotated[str, Field(max_length=10)] = ""


class AddSupply(_LineBody):
    model_config = examples(
        {"procedure_code": "A4550", "charge": "25.00", "units": "1", "pointers": [1]})
    procedure_code: Annotated[str, Field(max_length=12)]


class ReviseLine(Body):
    model_config = examples(
        {"procedure_code": "99214", "charge": "180.00", "reason": "MDM moderate"})
    reason: Reason
    procedure_code: Annotated[str, Field(max_length=12)] | None = None
    charge: MoneyStr | None = None
    units: UnitsStr | None = None
    pointers: Annotated[list[Annotated[int, Field(ge=1, le=25)]], Field(max_length=12)] | None \
        = None
    modifiers: Annotated[list[Annotated[str, Field(max_length=4)]], Field(max_length=8)] | None \
        = None
    line_date: BillingDate | None = None
    rendering_npi: Annotated[str, Field(max_length=10)] | None = None
    revenue_code: Annotated[str, Field(max_length=4)] | None = None
    ndc: Annotated[str, Field(max_length=13)] | None = None
    ndc_quantity: UnitsStr | None = None
    description: Annotated[str, Field(max_length=80)] | None = None

    def command_kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None
                or k in ("ndc_quantity",)}


class AdjustCharge(Body):
    model_config = examples({"amount": "-20.00", "reason": "price correction"})
    amount: MoneyStr
    reason: Reason


class CreateClaim(Body):
    model_config = examples(
        {"claim_number": "S1-0001", "bucket": "primary", "frequency": "1"},
        {"claim_number": "S7-0001R", "frequency": "7", "original_icn": "A0004"})
    claim_number: Annotated[str, Field(min_length=1, max_length=38)]
    bucket: Literal["primary", "secondary", "tertiary"] = "primary"
    frequency: Literal["1", "7", "8"] = "1"
    original_icn: Annotated[str, Field(max_length=50)] = ""
    line_nos: Annotated[list[int], Field(max_length=50)] | None = None
    reason: Text = ""


class SubmitClaim(Body):
    model_config = examples({"interchange_control": "000000001"})
    interchange_control: Annotated[str, Field(max_length=9)] = ""
    group_control: Annotated[str, Field(max_length=9)] = ""
    transaction_control: Annotated[str, Field(max_length=9)] = ""
    batch_hash: Annotated[str, Field(max_length=80)] = ""


class Acknowledge(Body):
    model_config = examples(
        {"source": "277CA", "accepted": False, "category": "A7", "message": "invalid NPI"})
    source: Literal["999", "277CA"]
    accepted: bool
    category: Annotated[str, Field(max_length=10)] = ""
    message: Annotated[str, Field(max_length=200)] = ""


class CasAdjustment(Body):
    group: Literal["CO", "OA", "PI", "PR"]
    reason: Annotated[str, Field(min_length=1, max_length=5)]
    amount: MoneyStr
    quantity: UnitsStr | None = None


class LineAdjudication(Body):
    line_no: Annotated[int, Field(ge=1)]
    procedure_code: Annotated[str, Field(max_length=12)]
    submitted: MoneyStr
    paid: MoneyStr
    allowed: MoneyStr | None = None
    units: UnitsStr = "1"
    adjustments: Annotated[list[CasAdjustment], Field(max_length=99)] = []
    remarks: Annotated[list[Annotated[str, Field(max_length=8)]], Field(max_length=20)] = []


class Remittance(Body):
    payer_id: Annotated[str, Field(min_length=1, max_length=80)]
    trace_number: Annotated[str, Field(min_length=1, max_length=80)]
    file_hash: Annotated[str, Field(min_length=1, max_length=100)]
    payment_date: BillingDate


class PostAdjudication(Body):
    model_config = examples({
        "status_code": "1", "charge": "240.00", "paid": "114.82",
        "patient_responsibility": "30.00", "payer_icn": "ICN-S1",
        "adjudication_date": "2026-04-20",
        "remittance": {"payer_id": "PAYER-A", "trace_number": "TRN-S1",
                       "file_hash": "sha256:abc", "payment_date": "2026-04-20"},
        "lines": [{"line_no": 1, "procedure_code": "99214", "submitted": "180.00",
                   "paid": "98.50", "allowed": "128.50",
                   "adjustments": [{"group": "CO", "reason": "45", "amount": "51.50"},
                                   {"group": "PR", "reason": "3", "amount": "30.00"}]}]})
    status_code: Literal["1", "2", "3", "4", "19", "20", "21", "22", "23", "25"]
    charge: MoneyStr
    paid: MoneyStr
    patient_responsibility: MoneyStr = "0.00"
    payer_icn: Annotated[str, Field(max_length=50)] = ""
    adjudication_date: BillingDate
    remittance: Remittance
    claim_adjustments: Annotated[list[CasAdjustment], Field(max_length=99)] = []
    lines: Annotated[list[LineAdjudication], Field(max_length=999)] = []
    remarks: Annotated[list[Annotated[str, Field(max_length=8)]], Field(max_length=20)] = []
    drg_code: Annotated[str, Field(max_length=4, pattern=r"^[0-9A-Z]{0,4}$",
                                   description="CLP11: the DRG the claim was paid by")] = ""


class ProviderAdjustment(Body):
    model_config = examples(
        {"reason_code": "L6", "reference": "INT-1", "amount": "-1.25",
         "remittance_key": "PAYER-A|TRN-1|sha256:abc"})
    reason_code: Annotated[str, Field(min_length=2, max_length=2)]
    reference: Annotated[str, Field(max_length=50)] = ""
    amount: MoneyStr
    remittance_key: Annotated[str, Field(max_length=300)] = ""


class RecordDenial(Body):
    model_config = examples(
        {"carc": ["50"], "rarc": ["N115"], "deadline": "2026-08-18",
         "reason": "denial letter"})
    carc: Annotated[list[Annotated[str, Field(max_length=5)]], Field(min_length=1, max_length=10)]
    rarc: Annotated[list[Annotated[str, Field(max_length=8)]], Field(max_length=10)] = []
    deadline: BillingDate
    reason: Text = ""


class FileAppeal(Body):
    model_config = examples(
        {"filed_on": "2026-05-01", "reason": "medical necessity documented",
         "documents": ["progress-notes"]})
    filed_on: BillingDate
    reason: Reason
    documents: Annotated[list[Annotated[str, Field(max_length=120)]], Field(max_length=20)] = []


class DecideAppeal(Body):
    model_config = examples({"outcome": "overturned", "decided_on": "2026-06-01"})
    outcome: Literal["overturned", "upheld", "partial"]
    decided_on: BillingDate
    reason: Text = ""


class IssueStatement(Body):
    model_config = examples({"statement_date": "2026-05-01"})
    statement_date: BillingDate


class PatientPayment(Body):
    model_config = examples({"amount": "150.00", "method": "card", "received_on": "2026-05-10"})
    amount: PositiveMoneyStr
    method: Literal["cash", "check", "card", "ach", "other"]
    received_on: BillingDate


class Refund(Body):
    model_config = examples(
        {"amount": "30.00", "method": "check", "issued_on": "2026-05-12",
         "reason": "overpayment"})
    amount: PositiveMoneyStr
    method: Annotated[str, Field(min_length=1, max_length=20)]
    issued_on: BillingDate
    reason: Reason


class WriteOff(Body):
    model_config = examples(
        {"amount": "5.00", "bucket": "patient", "category": "small_balance",
         "approver_id": "mgr-1", "reason": "under threshold"})
    amount: PositiveMoneyStr
    bucket: Literal["primary", "secondary", "tertiary", "patient"]
    category: Literal["contractual", "timely_filing", "small_balance", "bad_debt", "charity",
                      "administrative"]
    approver_id: Annotated[str, Field(min_length=1, max_length=80)]
    reason: Reason
    claim_number: Annotated[str, Field(max_length=38)] = ""


class OpenDispute(Body):
    """The dispute is assigned to the caller (the token's user): there is no advocate_id."""
    model_config = examples(
        {"line_nos": [1], "category": "charge",
         "description": "charge higher than the estimate"})
    line_nos: Annotated[list[int], Field(min_length=1, max_length=50)]
    category: Literal["charge", "coding", "coverage", "balance", "other"]
    description: Annotated[str, Field(max_length=2000)] = ""


class GrantAccess(Body):
    model_config = examples(
        {"grantee_id": "advocate-1", "authorization_ref": "AUTH-2026-0042",
         "valid_until": "2026-12-31T23:59:59Z", "basis": "staff",
         "reason": "patient asked for help with the bill"},
        {"grantee_id": "advocate-1", "authorization_ref": "HIPAA-AUTH-77",
         "valid_until": "2026-09-30T00:00:00Z", "basis": "patient_authorization",
         "patient_ref": "PT-1001"})
    grantee_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,80}$",
                                     description="the advocate's user id")]
    authorization_ref: Annotated[str, Field(
        pattern=r"^[A-Za-z0-9._:/-]{1,80}$",
        description="the patient's authorization (a surrogate reference, never PHI)")]
    valid_until: AwareDatetime
    basis: Literal["staff", "patient_authorization"] = "staff"
    patient_ref: Annotated[str | None, Field(
        max_length=80, description="the authorization's patient (patient_authorization: "
        "must be this encounter's)")] = None
    reason: Text = ""


class RevokeAccess(Body):
    model_config = examples({"reason": "patient withdrew the authorization"})
    reason: Reason


class DisputeNote(Body):
    model_config = examples({"note": "called the payer"})
    note: Annotated[str, Field(min_length=1, max_length=4000)]


class ResolveDispute(Body):
    model_config = examples({"outcome": "adjusted", "reason": "courtesy adjustment"})
    outcome: Literal["upheld", "adjusted", "rejected", "withdrawn"]
    reason: Reason


class CommandResponse(BaseModel):
    encounter_id: str
    version: int
    position: int | None = Field(None, description="log position of the last event written")
    result: Any = None
