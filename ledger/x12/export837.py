"""837P (005010X222A1) export of a scrubbed claim, and pyx12 as the conformance gate.

The encounter holds no names or addresses (the patient is a surrogate reference): what the
837P needs beyond the encounter (submitter, receiver, billing provider, subscriber
demographics) comes in an ``ExportContext`` from the practice system. ``export_837p`` builds
the interchange and, unless told not to, runs pyx12's validator (the engine of ``x12valid``)
on it and refuses to return a file that fails.

Frequency 1 (original), 7 (replacement) and 8 (void) are written in CLM05-3; 7 and 8 carry
the original's payer claim number in REF*F8. Line control numbers (REF*6R) are the line
numbers, so a remittance's SVC loops map back to the lines.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ledger.domain.errors import RuleViolation
from ledger.domain.values import Money

_FORBIDDEN = str.maketrans({c: " " for c in "*~:^|\\>\r\n"})


@dataclass(frozen=True)
class Address:
    line1: str
    city: str
    state: str
    zip: str


@dataclass(frozen=True)
class ExportContext:
    """Who sends, who receives, and the demographics the ledger does not keep."""

    sender_id: str
    receiver_id: str
    submitter_name: str
    submitter_contact: str
    submitter_phone: str
    receiver_name: str
    billing_name: str
    billing_npi: str
    billing_tin: str
    billing_address: Address
    subscriber_last: str
    subscriber_first: str
    subscriber_address: Address
    subscriber_birth_date: date
    subscriber_gender: str  # F | M | U
    payer_name: str = ""
    group_number: str = ""
    claim_filing_indicator: str = "CI"
    usage: str = "T"  # ISA15: T test, P production


@dataclass(frozen=True)
class Export:
    text: str
    interchange_control: str
    group_control: str
    transaction_control: str


def _t(value: Any, limit: int) -> str:
    return str(value or "").translate(_FORBIDDEN).strip()[:limit]


def _amount(m: Money) -> str:
    text = f"{m.amount:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _units(u: Decimal) -> str:
    text = format(u.normalize(), "f")
    return text


def export_837p(enc: Any, claim_number: str, ctx: ExportContext, *, control_number: int = 1,
                now: datetime | None = None, validate: bool = True) -> Export:
    """The 837P interchange for one claim of ``enc`` (which must have a passing scrub of its
    current content)."""
    claim = enc._claim(claim_number)
    if enc.claim_type != "professional":
        raise RuleViolation("claim_number", "export.professional_only",
                            "claim_number: only professional claims export as 837P")
    if not claim.scrub_passed or claim.scrub_revision != enc.content_revision:
        raise RuleViolation("claim_number", "export.requires_passing_scrub",
                            "claim_number: the claim has no passing scrub of its current "
                            "content; scrub it first")
    if claim.bucket != "primary":
        raise RuleViolation("claim_number", "export.primary_only",
                            "claim_number: COB (secondary/tertiary) 837P export is not "
                            "supported yet; export the primary claim")
    party = enc._party(claim.bucket)
    now = now or datetime.now()
    isa13 = f"{control_number:09d}"
    gs06 = str(control_number)
    st02 = f"{control_number:04d}"[-9:]
    lines = enc.claim_lines(claim)
    segs: list[str] = []
    add = segs.append
    add(f"BHT*0019*00*{_t(claim.wire_number, 30)}*{now:%Y%m%d}*{now:%H%M}*CH")
    add(f"NM1*41*2*{_t(ctx.submitter_name, 60)}*****46*{_t(ctx.sender_id, 80)}")
    add(f"PER*IC*{_t(ctx.submitter_contact, 60)}*TE*{_t(ctx.submitter_phone, 20)}")
    add(f"NM1*40*2*{_t(ctx.receiver_name, 60)}*****46*{_t(ctx.receiver_id, 80)}")
    add("HL*1**20*1")
    add(f"NM1*85*2*{_t(ctx.billing_name, 60)}*****XX*{_t(ctx.billing_npi, 10)}")
    a = ctx.billing_address
    add(f"N3*{_t(a.line1, 55)}")
    add(f"N4*{_t(a.city, 30)}*{_t(a.state, 2)}*{_t(a.zip, 15)}")
    add(f"REF*EI*{_t(ctx.billing_tin, 9)}")
    add("HL*2*1*22*0")
    add(f"SBR*P*18*{_t(ctx.group_number, 50)}******{_t(ctx.claim_filing_indicator, 2)}")
    add(f"NM1*IL*1*{_t(ctx.subscriber_last, 60)}*{_t(ctx.subscriber_first, 35)}****MI*"
        f"{_t(party.member_id, 80)}")
    a = ctx.subscriber_address
    add(f"N3*{_t(a.line1, 55)}")
    add(f"N4*{_t(a.city, 30)}*{_t(a.state, 2)}*{_t(a.zip, 15)}")
    add(f"DMG*D8*{ctx.subscriber_birth_date:%Y%m%d}*{_t(ctx.subscriber_gender, 1)}")
    add(f"NM1*PR*2*{_t(ctx.payer_name or party.name or party.payer_id, 60)}*****PI*"
        f"{_t(party.payer_id, 80)}")
    total = Money.zero()
    for ln in lines:
        total = total + ln.current_charge
    # CLM01 is the claim number as billed: a same-CLM01 replacement keeps its original's
    add(f"CLM*{_t(claim.wire_number, 38)}*{_amount(total)}***{enc.place_of_service}:B:"
        f"{claim.frequency}*Y*A*Y*Y")
    if claim.frequency in ("7", "8"):
        add(f"REF*F8*{_t(claim.original_icn, 50)}")
    dx = [d.code for d in enc.diagnoses][:12]
    if dx:
        add("HI*" + "*".join(("ABK:" if i == 0 else "ABF:") + code
                             for i, code in enumerate(dx)))
    for n, ln in enumerate(lines, start=1):
        add(f"LX*{n}")
        proc = ":".join(["HC", ln.procedure_code, *ln.modifiers[:4]])
        pointers = ":".join(str(p) for p in ln.pointers[:4])
        unit_type = ln.unit_type if ln.unit_type in ("UN", "MJ") else "UN"
        add(f"SV1*{proc}*{_amount(ln.current_charge)}*{unit_type}*{_units(ln.units)}***"
            f"{pointers}")
        add(f"DTP*472*D8*{ln.line_date:%Y%m%d}")
        add(f"REF*6R*{ln.line_no}")
        if ln.ndc:
            add(f"LIN**N4*{ln.ndc}")
            add(f"CTP****{_units(ln.ndc_quantity or ln.units)}*UN")
    body = [f"ST*837*{st02}*005010X222A1", *segs]
    body.append(f"SE*{len(body) + 1}*{st02}")
    isa = (f"ISA*00*{'':10}*00*{'':10}*ZZ*{_t(ctx.sender_id, 15):<15}*ZZ*"
           f"{_t(ctx.receiver_id, 15):<15}*{now:%y%m%d}*{now:%H%M}*^*00501*{isa13}*0*"
           f"{_t(ctx.usage, 1)}*:")
    gs = (f"GS*HC*{_t(ctx.sender_id, 15)}*{_t(ctx.receiver_id, 15)}*{now:%Y%m%d}*{now:%H%M}*"
          f"{gs06}*X*005010X222A1")
    text = "~\n".join([isa, gs, *body, f"GE*1*{gs06}", f"IEA*1*{isa13}"]) + "~\n"
    if validate:
        ok, errors = x12valid(text)
        if not ok:
            raise RuleViolation("claim_number", "export.x12valid",
                                "claim_number: the 837P fails pyx12 validation: " +
                                "; ".join(errors[:3]))
    return Export(text, isa13, gs06, st02)


def x12valid(text: str) -> tuple[bool, list[str]]:
    """Validate X12 text with pyx12 (the engine of ``x12valid``): (ok, error messages).
    Writes no files (no 997/999 beside the input)."""
    import json

    import pyx12.params
    import pyx12.x12n_document

    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    out = io.StringIO()
    ok = pyx12.x12n_document.x12n_document(
        param=pyx12.params.params(), src_file=io.StringIO(text), fd_997=None, fd_html=None,
        fd_xmldoc=None, fd_json=out)
    errors: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for e in node.get("errors", []) or []:
                if isinstance(e, dict):
                    errors.append(f"{e.get('err_cde', '')} {e.get('err_str', '')}".strip())
            for v in node.values():
                if isinstance(v, list | dict):
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    try:
        walk(json.loads(out.getvalue() or "{}"))
    except ValueError:
        pass
    return bool(ok), errors
