"""What a user (or an import) asks of an encounter: one frozen dataclass per action, typed.

A command names its encounter and carries exactly the arguments of the one domain method that
handles it (``ledger/application/handlers.py`` holds the table); who asks (the actor) and what
the service supplies (the code set, the appeal window, the clock) are added by the handler.
Money is parsed once, here, when the command is made (``Money.parse``: a float is refused, the
problem names the field); dates, datetimes and the domain's value objects arrive typed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from ledger.domain.errors import NotFound
from ledger.domain.model import Adjustment, LineResult, RemittanceRef, ResponsibleParty
from ledger.domain.values import Money


@dataclass(frozen=True, kw_only=True)
class Command:
    """A command on one existing encounter."""

    encounter_id: UUID

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # the fields declared Money
            value = getattr(self, f.name)
            if f.type in ("Money", Money) and value is not None and type(value) is not Money:
                object.__setattr__(self, f.name, Money.parse(value, f.name))

    def arguments(self) -> dict[str, Any]:
        """The domain method's keyword arguments (everything but the encounter id)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "encounter_id"}


# ------------------------------------------------------------------------------- encounters
@dataclass(frozen=True, kw_only=True)
class OpenEncounter:
    """Open a new encounter (its id is made by the service unless given)."""

    facility_id: str
    patient_ref: str
    service_from: date
    place_of_service: str
    responsible_parties: list[ResponsibleParty]
    service_to: date | None = None
    claim_type: str = "professional"
    encounter_id: UUID | None = None

    def arguments(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


# ---------------------------------------------------------------------------------- coding
@dataclass(frozen=True, kw_only=True)
class CodeDiagnosis(Command):
    code: str
    position: int | None = None
    poa: str = ""
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class ReviseDiagnosis(Command):
    position: int
    new_code: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class RemoveDiagnosis(Command):
    position: int
    reason: str


# --------------------------------------------------------------------------------- charges
@dataclass(frozen=True, kw_only=True)
class _AddLine(Command):
    """What a service line and a supply line both carry."""

    procedure_code: Any
    charge: Money
    units: Any = 1
    pointers: Any = None
    modifiers: Any = None
    line_date: date | None = None
    revenue_code: Any = ""
    ndc: Any = ""
    ndc_quantity: Any = None
    description: str = ""
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class AddServiceLine(_AddLine):
    unit_type: str = "UN"
    rendering_npi: Any = ""


@dataclass(frozen=True, kw_only=True)
class AddSupply(_AddLine):
    pass


@dataclass(frozen=True, kw_only=True)
class ReviseServiceLine(Command):
    """Only the fields in ``changes`` change (a partial update)."""

    line_no: int
    reason: str
    changes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "charge" in self.changes and type(self.changes["charge"]) is not Money:
            object.__setattr__(self, "changes", {
                **self.changes, "charge": Money.parse(self.changes["charge"], "charge")})

    def arguments(self) -> dict[str, Any]:
        return {"line_no": self.line_no, "reason": self.reason, **self.changes}


@dataclass(frozen=True, kw_only=True)
class RemoveServiceLine(Command):
    line_no: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class AdjustCharge(Command):
    line_no: int
    amount: Money
    reason: str


@dataclass(frozen=True, kw_only=True)
class ReverseChargeAdjustment(Command):
    line_no: int
    index: int
    reason: str


# ---------------------------------------------------------------------------------- claims
@dataclass(frozen=True, kw_only=True)
class CreateClaim(Command):
    claim_number: str
    bucket: str = "primary"
    frequency: str = "1"
    original_icn: str = ""
    line_nos: list[int] | None = None
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class ScrubClaim(Command):
    """Run the scrubber's edits on a claim and record the findings."""

    claim_number: str


@dataclass(frozen=True, kw_only=True)
class SubmitClaim(Command):
    claim_number: str
    interchange_control: str = ""
    group_control: str = ""
    transaction_control: str = ""
    batch_hash: str = ""


@dataclass(frozen=True, kw_only=True)
class AcknowledgeClaim(Command):
    claim_number: str
    source: str
    accepted: bool
    category: str
    message: str = ""


# ------------------------------------------------------------------------------ remittance
@dataclass(frozen=True, kw_only=True)
class PostAdjudication(Command):
    claim_number: str
    status_code: str
    charge: Money
    paid: Money
    patient_responsibility: Money
    payer_icn: str
    adjudication_date: date
    remittance: RemittanceRef
    claim_adjustments: list[Adjustment]
    lines: list[LineResult]
    remarks: list[str] | None = None
    drg_code: str = ""
    appeal_window_days: int | None = None  # None: the service's setting


@dataclass(frozen=True, kw_only=True)
class PostProviderAdjustment(Command):
    claim_number: str
    reason_code: str
    reference: str
    amount: Money
    remittance_key: str


# --------------------------------------------------------------------------------- appeals
@dataclass(frozen=True, kw_only=True)
class RecordDenial(Command):
    claim_number: str
    carc: list[str]
    deadline: date
    rarc: list[str] | None = None
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class FileAppeal(Command):
    claim_number: str
    filed_on: date
    reason: str
    documents: list[str] | None = None


@dataclass(frozen=True, kw_only=True)
class DecideAppeal(Command):
    claim_number: str
    outcome: str
    decided_on: date
    reason: str = ""


# ------------------------------------------------------------------------- patient account
@dataclass(frozen=True, kw_only=True)
class IssueStatement(Command):
    statement_date: date


@dataclass(frozen=True, kw_only=True)
class RecordPatientPayment(Command):
    amount: Money
    method: str
    received_on: date


@dataclass(frozen=True, kw_only=True)
class IssueRefund(Command):
    amount: Money
    method: str
    issued_on: date
    reason: str


@dataclass(frozen=True, kw_only=True)
class WriteOff(Command):
    amount: Money
    bucket: str
    category: str
    approver_id: str
    reason: str
    claim_number: str = ""


# -------------------------------------------------------------------------------- disputes
@dataclass(frozen=True, kw_only=True)
class OpenDispute(Command):
    dispute_id: str
    line_nos: list[int]
    category: str
    description: str
    advocate_id: str | None = None
    at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class AddDisputeNote(Command):
    dispute_id: str
    note: str
    at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ResolveDispute(Command):
    dispute_id: str
    outcome: str
    reason: str
    at: datetime | None = None


# ---------------------------------------------------------------------------------- grants
@dataclass(frozen=True, kw_only=True)
class GrantAccess(Command):
    grant_id: str
    grantee_id: str
    authorization_ref: str
    valid_until: datetime
    at: datetime
    basis: str = "staff"
    patient_ref: str | None = None
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class RevokeAccess(Command):
    grant_id: str
    reason: str


def _commands(base: type[Command]) -> Iterator[type[Command]]:
    """Every command class above (``_AddLine``, only what two of them share, is none)."""
    for cls in base.__subclasses__():
        if not cls.__name__.startswith("_"):
            yield cls
        yield from _commands(cls)


def method_name(command: type[Command]) -> str:
    """The domain method a command class is handled by: its name in snake case
    (``AddServiceLine`` -> ``add_service_line``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", command.__name__).lower()


# The commands by their domain method's name, for callers that name them (scripts, tests).
BY_NAME: dict[str, type[Command]] = {method_name(cls): cls for cls in _commands(Command)}


def named(name: str, encounter_id: UUID, arguments: dict[str, Any]) -> Command:
    """The command a caller names by its domain method (``"add_service_line"``)."""
    cls = BY_NAME.get(name)
    if cls is None:
        raise NotFound("command", "command.exists", f"command: no command {name!r}")
    if cls is ReviseServiceLine:
        fixed = {k: arguments[k] for k in ("line_no", "reason") if k in arguments}
        changes = {k: v for k, v in arguments.items() if k not in fixed}
        return ReviseServiceLine(encounter_id=encounter_id, changes=changes, **fixed)
    return cls(encounter_id=encounter_id, **arguments)
