"""One handler per command: it calls the one domain method that does the work, adding what the
service supplies (the actor, the code set, the scrubber's edit tables, the appeal window).
``HANDLERS`` is the table the service dispatches on: ``{AddServiceLine: add_service_line}``.

A handler runs on a loaded encounter inside the writer (or the retry loop); it records events
on it and returns the command's value (a line number, findings, an amount due, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger.domain import commands as c
from ledger.domain.codeset import DiagnosisCodeSet
from ledger.domain.encounter import Encounter
from ledger.domain.model import Actor
from ledger.domain.scrubber import EditTables, scrub


@dataclass(frozen=True)
class Context:
    """What the service supplies to every handler."""

    actor: Actor
    code_set: DiagnosisCodeSet
    edit_tables: EditTables
    appeal_window_days: int


Handler = Callable[[Encounter, Any, Context], Any]


def code_diagnosis(enc: Encounter, cmd: c.CodeDiagnosis, ctx: Context) -> None:
    return enc.code_diagnosis(code_set=ctx.code_set, actor=ctx.actor, **cmd.arguments())


def revise_diagnosis(enc: Encounter, cmd: c.ReviseDiagnosis, ctx: Context) -> None:
    return enc.revise_diagnosis(code_set=ctx.code_set, actor=ctx.actor, **cmd.arguments())


def scrub_claim(enc: Encounter, cmd: c.ScrubClaim, ctx: Context) -> Any:
    claim = enc._claim(cmd.claim_number)
    findings = scrub(enc, claim, ctx.code_set, ctx.edit_tables)
    enc.scrub_claim(cmd.claim_number, ruleset_version=ctx.edit_tables.ruleset_version,
                    findings=findings, actor=ctx.actor)
    return findings


def post_adjudication(enc: Encounter, cmd: c.PostAdjudication, ctx: Context) -> bool:
    arguments = cmd.arguments()
    if arguments["appeal_window_days"] is None:
        arguments["appeal_window_days"] = ctx.appeal_window_days
    return enc.post_adjudication(actor=ctx.actor, **arguments)


def _method(method: Callable[..., Any]) -> Handler:
    """A handler for a command that needs nothing from the service but the actor."""

    def handle(enc: Encounter, cmd: Any, ctx: Context) -> Any:
        return method(enc, actor=ctx.actor, **cmd.arguments())

    handle.__name__ = method.__name__
    return handle


E = Encounter
HANDLERS: dict[type, Handler] = {
    c.CodeDiagnosis: code_diagnosis,
    c.ReviseDiagnosis: revise_diagnosis,
    c.RemoveDiagnosis: _method(E.remove_diagnosis),
    c.AddServiceLine: _method(E.add_service_line),
    c.ReviseServiceLine: _method(E.revise_service_line),
    c.RemoveServiceLine: _method(E.remove_service_line),
    c.AddSupply: _method(E.add_supply),
    c.AdjustCharge: _method(E.adjust_charge),
    c.ReverseChargeAdjustment: _method(E.reverse_charge_adjustment),
    c.CreateClaim: _method(E.create_claim),
    c.ScrubClaim: scrub_claim,
    c.SubmitClaim: _method(E.submit_claim),
    c.AcknowledgeClaim: _method(E.acknowledge_claim),
    c.PostAdjudication: post_adjudication,
    c.PostProviderAdjustment: _method(E.post_provider_adjustment),
    c.RecordDenial: _method(E.record_denial),
    c.FileAppeal: _method(E.file_appeal),
    c.DecideAppeal: _method(E.decide_appeal),
    c.IssueStatement: _method(E.issue_statement),
    c.RecordPatientPayment: _method(E.record_patient_payment),
    c.IssueRefund: _method(E.issue_refund),
    c.WriteOff: _method(E.write_off),
    c.OpenDispute: _method(E.open_dispute),
    c.AddDisputeNote: _method(E.add_dispute_note),
    c.ResolveDispute: _method(E.resolve_dispute),
    c.GrantAccess: _method(E.grant_access),
    c.RevokeAccess: _method(E.revoke_access),
}
