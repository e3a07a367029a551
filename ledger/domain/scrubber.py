"""The claim scrubber: rules run over a claim before submission. Pure functions over the
encounter's state; code-set lookups come in through the ``DiagnosisCodeSet`` interface and
the edit tables (NCCI procedure-to-procedure pairs, medically unlikely edits, and optionally
a HCPCS Level II code set), which ``ledger.codes.edits`` fills from CMS files.

Each rule yields ``Finding``s (rule id, severity, line, message); error-level findings block
submission. ``RULES`` lists every rule id the scrubber can report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from ledger.domain.codeset import CodeVerdict, DiagnosisCodeSet
from ledger.domain.model import Claim, Finding, ServiceLine
from ledger.domain.values import HCPCS_RE, Money, icd10cm_dotted, npi_is_valid

if TYPE_CHECKING:
    from ledger.domain.encounter import Encounter

RULESET_VERSION = "ledger-scrub-2026.11.2"
NCCI_BYPASS_MODIFIERS = {"25", "59", "XE", "XS", "XP", "XU"}
DISTINCT_SERVICE_MODIFIERS = {"59", "XE", "XS", "XP", "XU"}
MAX_DIAGNOSES = {"professional": 12, "institutional": 25}

RULES: dict[str, str] = {
    "DX001": "missing principal diagnosis",
    "DX002": "diagnosis unknown or not billable (a category, or missing characters)",
    "DX003": "diagnosis not valid on the date of service",
    "DX004": "more than 12 diagnoses on a professional claim (25 institutional)",
    "CLM001": "claim has no lines",
    "CLM002": "replacement (7) or void (8) without the original payer ICN",
    "CLM003": "claim total differs from the sum of its lines",
    "LN001": "line has no diagnosis pointer",
    "LN002": "pointer to a missing diagnosis",
    "LN003": "more than 4 diagnosis pointers",
    "LN004": "more than 4 modifiers",
    "LN005": "units not greater than 0",
    "LN006": "charge not greater than 0",
    "LN007": "rendering NPI fails its check digit",
    "LN008": "drug J-code without an NDC",
    "LN009": "duplicate line",
    "LN010": "NDC without an NDC quantity (warning)",
    "PX001": "HCPCS Level II code not in the loaded HCPCS file",
    "PX002": "HCPCS Level II code not valid on the date of service",
    "NCCI001": "NCCI procedure-to-procedure pair that no modifier bypasses (indicator 0)",
    "NCCI002": "NCCI procedure-to-procedure pair without 25/59/XE/XS/XP/XU (indicator 1)",
    "MUE001": "units above the medically unlikely edit",
}


# ---------------------------------------------------------------- edit tables
@dataclass(frozen=True, slots=True)
class PTPEdit:
    """An NCCI procedure-to-procedure pair: column 2 is not paid with column 1 on the same
    day by the same provider, unless the modifier indicator is 1 and a bypass modifier is
    present. ``effective``/``deleted`` bound the dates of service it applies to."""

    column1: str
    column2: str
    modifier_indicator: str  # "0" never, "1" allowed with a bypass modifier, "9" n/a
    effective: date | None = None
    deleted: date | None = None  # the edit does not apply on or after this date
    rationale: str = ""

    def in_force(self, on: date) -> bool:
        return (self.effective is None or self.effective <= on) and \
            (self.deleted is None or on < self.deleted)


@dataclass(frozen=True, slots=True)
class MUELimit:
    """A medically unlikely edit: most units of a code one provider bills for one patient.

    ``adjudication`` (MAI) 1 = per line; 2 (policy) and 3 (clinical) = per date of service,
    summed over the claim's lines."""

    code: str
    units: int
    adjudication: str = "1"
    rationale: str = ""

    @property
    def per_date_of_service(self) -> bool:
        return self.adjudication in ("2", "3")


class ProcedureCodeSet(Protocol):
    version: str

    def check(self, code: str, date_of_service: date) -> CodeVerdict:
        """Verdict for a procedure code on a date of service (billable = may be billed)."""
        ...


class EditTables:
    """The edit tables a scrub runs against: NCCI PTP pairs, MUE limits, optionally a HCPCS
    code set. In memory here; ``ledger.codes.edits.CMSEditTables`` reads CMS files.

    ``ptp`` maps (column 1, column 2) to an edit or several (an edit deleted and added again);
    ``mue`` maps a code to a limit (a bare int is a per-line limit). ``version`` names the
    tables and is recorded on ``ClaimScrubbed`` beside the rule-set version.
    """

    def __init__(self, ptp: Mapping[tuple[str, str], PTPEdit | Sequence[PTPEdit]] | None = None,
                 mue: Mapping[str, int | MUELimit] | None = None, version: str = "",
                 procedure_codes: ProcedureCodeSet | None = None) -> None:
        self.ptp: dict[tuple[str, str], tuple[PTPEdit, ...]] = {
            key: (value,) if isinstance(value, PTPEdit) else tuple(value)
            for key, value in (ptp or {}).items()}
        self.mue: dict[str, MUELimit] = {
            code: value if isinstance(value, MUELimit) else MUELimit(code, int(value))
            for code, value in (mue or {}).items()}
        self.version = version
        self.procedure_codes = procedure_codes

    @property
    def ruleset_version(self) -> str:
        """What a scrub with these tables records on ``ClaimScrubbed``: the rule-set version,
        ``+`` the tables' version when they have one."""
        return RULESET_VERSION + (f"+{self.version}" if self.version else "")

    def ptp_edits(self, column1: str, column2: str) -> Sequence[PTPEdit]:
        return self.ptp.get((column1, column2), ())

    def ptp_edit(self, column1: str, column2: str, on: date) -> PTPEdit | None:
        """The edit for the pair in force on ``on``, if any."""
        for edit in self.ptp_edits(column1, column2):
            if edit.in_force(on):
                return edit
        return None

    def mue_limit(self, code: str) -> MUELimit | None:
        return self.mue.get(code)


Rule = Callable[["Encounter", Claim, DiagnosisCodeSet, EditTables], Iterator[Finding]]


def _error(rule_id: str, message: str, line_no: int | None = None) -> Finding:
    return Finding(rule_id, "error", message, line_no)


def _warning(rule_id: str, message: str, line_no: int | None = None) -> Finding:
    return Finding(rule_id, "warning", message, line_no)


def is_evaluation_and_management(code: str) -> bool:
    """CPT E/M codes (99202-99499): the codes modifier 25 is appended to."""
    return code.isdigit() and len(code) == 5 and 99202 <= int(code) <= 99499


# ---------------------------------------------------------------- diagnosis rules
def missing_principal(enc: Encounter, claim: Claim, cs: DiagnosisCodeSet,
                      tables: EditTables) -> Iterator[Finding]:
    if not enc.diagnoses:
        yield _error("DX001", "no principal diagnosis coded (position 1 is empty)")


def diagnosis_billable(enc: Encounter, claim: Claim, cs: DiagnosisCodeSet,
                       tables: EditTables) -> Iterator[Finding]:
    for i, dx in enumerate(enc.diagnoses, start=1):
        verdict = cs.check(dx.code, enc.service_from)
        if not verdict.billable:
            rule = "DX003" if verdict.rule == "icd10cm.dos" else "DX002"
            yield _error(rule, f"diagnosis {i} ({icd10cm_dotted(dx.code)}): {verdict.message}")


def diagnosis_count(enc: Encounter, claim: Claim, cs: DiagnosisCodeSet,
                    tables: EditTables) -> Iterator[Finding]:
    limit = MAX_DIAGNOSES.get(enc.claim_type, 12)
    if len(enc.diagnoses) > limit:
        yield _error("DX004", f"{len(enc.diagnoses)} diagnoses; at most {limit} on a "
                     f"{enc.claim_type} claim")


# ---------------------------------------------------------------- claim rules
def claim_has_lines(enc: Encounter, claim: Claim, cs: DiagnosisCodeSet,
                    tables: EditTables) -> Iterator[Finding]:
    if not enc.claim_lines(claim) and claim.frequency != "8":
        yield _error("CLM001", "the claim has no lines")


def frequency_rules(enc: Encounter, claim: Claim, cs: DiagnosisCodeSet,
                    tables: EditTables) -> Iterator[Finding]:
    if claim.frequency in ("7", "8") and not claim.original_icn:
        kind = "replacement" if claim.frequency == "7" else "void"
        yield _error("CLM002", f"a {kind} claim (frequency {claim.frequency}) needs the "
                     "original claim's payer ICN (REF*F8)")


def total_matches(enc: Encounter, claim: Claim, cs: DiagnosisCodeSet,
                  tables: EditTables) -> Iterator[Finding]:
    # CLM02 is written from enc.claim_charge; it must equal the sum of the SV102/SV203 the
    # 837 carries, i.e. each line's charge after its adjustments.
    lines_total = Money.zero()
    for ln in enc.claim_lines(claim):
        lines_total = lines_total + ln.current_charge
    stated = enc.claim_charge(claim)
    if stated != lines_total:
        yield _error("CLM003", f"claim total {stated} differs from the sum of its lines "
                     f"{lines_total}")


# ---------------------------------------------------------------- line rules
def line_rules(enc: Encounter, claim: Claim, cs: DiagnosisCodeSet,
               tables: EditTables) -> Iterator[Finding]:
    seen: dict[tuple, int] = {}
    for ln in enc.claim_lines(claim):
        n, code = ln.line_no, ln.procedure_code or ln.revenue_code
        if not ln.pointers and enc.claim_type == "professional":
            yield _error("LN001", f"line {n} ({code}) has no diagnosis pointer", n)
        for p in ln.pointers:
            if not 1 <= p <= len(enc.diagnoses):
                yield _error("LN002", f"line {n} ({code}): pointer {p} points at a missing "
                             f"diagnosis (the claim has {len(enc.diagnoses)})", n)
        if len(ln.pointers) > 4:
            yield _error("LN003", f"line {n} ({code}): {len(ln.pointers)} diagnosis pointers; "
                         "at most 4", n)
        if len(ln.modifiers) > 4:
            yield _error("LN004", f"line {n} ({code}): {len(ln.modifiers)} modifiers; at most 4",
                         n)
        if ln.units <= 0:
            yield _error("LN005", f"line {n} ({code}): units must be greater than 0", n)
        if not ln.current_charge.is_positive():
            yield _error("LN006", f"line {n} ({code}): charge {ln.current_charge} must be "
                         "greater than 0", n)
        if ln.rendering_npi and not npi_is_valid(ln.rendering_npi):
            yield _error("LN007", f"line {n} ({code}): rendering NPI fails its check digit "
                         "(Luhn with prefix 80840)", n)
        if HCPCS_RE.match(ln.procedure_code) and ln.procedure_code.startswith("J"):
            if not ln.ndc:
                yield _error("LN008", f"line {n}: drug code {ln.procedure_code} needs the NDC "
                             "of the drug given (11 digits, 5-4-2)", n)
        if ln.ndc and ln.ndc_quantity is None:
            yield _warning("LN010", f"line {n} ({code}): NDC {ln.ndc} has no NDC quantity", n)
        key = (ln.procedure_code, tuple(ln.modifiers), ln.line_date, ln.revenue_code,
               ln.rendering_npi, ln.ndc)
        if key in seen:
            yield _error("LN009", f"line {n} ({code}) duplicates line {seen[key]} (same code, "
                         "modifiers, date, provider and NDC)", n)
        else:
            seen[key] = n


def procedure_codes_valid(enc: Encounter, claim: Claim, cs: DiagnosisCodeSet,
                          tables: EditTables) -> Iterator[Finding]:
    codes = tables.procedure_codes
    if codes is None:
        return
    for ln in enc.claim_lines(claim):
        if not ln.procedure_code:
            continue
        verdict = codes.check(ln.procedure_code, ln.line_date)
        if not verdict.billable:
            rule = "PX002" if verdict.rule.endswith(".dos") else "PX001"
            yield _error(rule, f"line {ln.line_no}: {verdict.message}", ln.line_no)


def ncci_pairs(enc: Encounter, claim: Claim, cs: DiagnosisCodeSet,
               tables: EditTables) -> Iterator[Finding]:
    lines = [ln for ln in enc.claim_lines(claim) if ln.procedure_code]
    for a in lines:
        for b in lines:
            if a is b or a.procedure_code == b.procedure_code or a.line_date != b.line_date:
                continue
            if a.rendering_npi and b.rendering_npi and a.rendering_npi != b.rendering_npi:
                continue  # different providers: PTP edits are per provider
            edit = tables.ptp_edit(a.procedure_code, b.procedure_code, a.line_date)
            if edit is None or edit.modifier_indicator == "9":
                continue
            pair = (f"{b.procedure_code} (line {b.line_no}) with {a.procedure_code} "
                    f"(line {a.line_no})")
            if edit.modifier_indicator == "0":
                yield _error("NCCI001", f"{pair}: NCCI pair (column 1 {a.procedure_code}, "
                             f"column 2 {b.procedure_code}) with modifier indicator 0: "
                             f"{b.procedure_code} is not paid with {a.procedure_code} on the "
                             "same day, whatever the modifier", b.line_no)
            elif edit.modifier_indicator == "1" and not _bypassed(a, b):
                if is_evaluation_and_management(b.procedure_code):
                    advice = (f"append modifier 25 to {b.procedure_code} if the E/M was "
                              "significant and separately identifiable, or 59/XE/XS/XP/XU")
                else:
                    advice = f"append 59 or XE/XS/XP/XU to {b.procedure_code} if distinct"
                yield _error("NCCI002", f"{pair}: NCCI pair (column 1 {a.procedure_code}, "
                             f"column 2 {b.procedure_code}, modifier indicator 1) needs a "
                             f"modifier (25, 59, XE, XS, XP or XU): {advice}", b.line_no)


def _bypassed(a: ServiceLine, b: ServiceLine) -> bool:
    mods = set(a.modifiers) | set(b.modifiers)
    if mods & DISTINCT_SERVICE_MODIFIERS:
        return True
    # 25 describes an E/M service: it bypasses the pair only on the E/M line
    return any("25" in ln.modifiers and is_evaluation_and_management(ln.procedure_code)
               for ln in (a, b))


def units_within_mue(enc: Encounter, claim: Claim, cs: DiagnosisCodeSet,
                     tables: EditTables) -> Iterator[Finding]:
    per_day: dict[tuple[str, date], list[ServiceLine]] = {}
    for ln in enc.claim_lines(claim):
        limit = tables.mue_limit(ln.procedure_code) if ln.procedure_code else None
        if limit is None:
            continue
        if limit.per_date_of_service:
            per_day.setdefault((ln.procedure_code, ln.line_date), []).append(ln)
        elif ln.units > limit.units:
            yield _error("MUE001", f"line {ln.line_no}: {ln.units} units of "
                         f"{ln.procedure_code} exceed its medically unlikely edit of "
                         f"{limit.units} per line", ln.line_no)
    for (code, day), group in per_day.items():
        limit = tables.mue_limit(code)
        assert limit is not None
        total = sum((ln.units for ln in group), Decimal(0))
        if total > limit.units:
            where = ", ".join(str(ln.line_no) for ln in group)
            yield _error("MUE001", f"line{'s' if len(group) > 1 else ''} {where}: {total} units "
                         f"of {code} on {day} exceed its medically unlikely edit of "
                         f"{limit.units} per date of service", group[-1].line_no)


RULE_FUNCTIONS: tuple[Rule, ...] = (
    missing_principal, diagnosis_billable, diagnosis_count, claim_has_lines, frequency_rules,
    total_matches, line_rules, procedure_codes_valid, ncci_pairs, units_within_mue)


def scrub(enc: Encounter, claim: Claim, code_set: DiagnosisCodeSet,
          tables: EditTables | None = None) -> list[Finding]:
    """Every finding of every rule for ``claim`` (empty: the claim is clean)."""
    tables = tables if tables is not None else EditTables()
    findings: list[Finding] = []
    for rule in RULE_FUNCTIONS:
        findings.extend(rule(enc, claim, code_set, tables))
    return findings
