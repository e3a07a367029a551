"""Claims of an encounter: create (original, corrected, replacement, void, crossover), scrub,
submit and acknowledge."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledger.domain.errors import IllegalTransition, InvalidValue, RuleViolation
from ledger.domain.model import FREQUENCIES, Actor, Claim, Finding, claim_key
from ledger.domain.values import Money

if TYPE_CHECKING:  # the aggregate mixes this class in; only annotations name it
    from ledger.domain.encounter.aggregate import Encounter


class Claims:
    """Claim commands; a mixin of ``Encounter``."""

    def create_claim(self: Encounter, claim_number: Any, *, actor: Actor, bucket: str = "primary",
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

    def _original_of(self: Encounter, clm01: str, icn: str, bucket: str) -> Claim | None:
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

    def _raw_open(self: Encounter, claim: Claim) -> Money:
        return (claim.liability - claim.paid - claim.adjusted - claim.forwarded
                - claim.to_patient - claim.void_settled)

    def _settle_void(self: Encounter, claim: Claim, who: dict[str, str]) -> None:
        amount = min(self._raw_open(claim), self.balance(claim.bucket))
        if amount.is_positive():
            self.trigger_event(self.ClaimVoidSettled, claim_number=claim.number, amount=amount,
                               reason="void", **who)

    def create_crossover_claim(self: Encounter, primary_number: str, *, bucket: str,
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

    def scrub_claim(self: Encounter, claim_number: str, *, ruleset_version: str,
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

    def submit_claim(self: Encounter,
                     claim_number: str, *, actor: Actor, interchange_control: str = "",
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

    def acknowledge_claim(self: Encounter, claim_number: str, *, source: str, accepted: bool,
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
