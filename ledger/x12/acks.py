"""999 (005010X231A1) and 277CA (005010X214) reading.

Neither ``x12sdk`` (no X231/X214 maps) nor ``oxedi`` (835 only) reads these, so they are
read from ``ledger.x12.tokenizer`` segments. A 999 accepts or rejects whole 837 transaction
sets (matched by GS06 group control + ST02 transaction control); a 277CA accepts or rejects
single claims (TRN*2 = CLM01 at the patient level, STC01-1 = claim status category).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.x12.model import Issue
from ledger.x12.tokenizer import Tokens, components

ACCEPTED_999 = {"A", "E"}  # accepted; accepted with errors noted
ACCEPTED_277 = {"A1", "A2", "A5"}
REJECTED_277 = {"A3", "A4", "A6", "A7", "A8"}


@dataclass(slots=True)
class Ack:
    """One acknowledgement: of a transaction set (999) or of one claim (277CA)."""

    source: str  # 999 | 277CA
    accepted: bool
    category: str  # IK501 code or STC01-1 category
    message: str
    group_control: str = ""
    transaction_control: str = ""
    claim_number: str = ""
    payer_icn: str = ""


@dataclass(slots=True)
class ParsedAcks:
    kind: str
    acks: list[Ack] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)


def read_999(tokens: Tokens) -> ParsedAcks:
    out = ParsedAcks("999")
    group = ""
    current: Ack | None = None
    errors = 0
    for seg in tokens.segments:
        if seg.id == "AK1":
            group = seg.get(2).strip()
        elif seg.id == "AK2":
            current = Ack("999", False, "", "", group, seg.get(2).strip())
            errors = 0
        elif seg.id in ("IK3", "IK4") and current is not None:
            errors += 1
        elif seg.id == "IK5" and current is not None:
            code = seg.get(1).strip()
            current.category = code
            current.accepted = code in ACCEPTED_999
            current.message = f"999 IK5 {code}" + (f", {errors} segment/element error(s)"
                                                    if errors else "")
            out.acks.append(current)
            current = None
    if not out.acks:
        out.issues.append(Issue("999.no_transaction_response",
                                "file: the 999 has no AK2/IK5 transaction set response"))
    return out


def read_277ca(tokens: Tokens) -> ParsedAcks:
    out = ParsedAcks("277CA")
    level = ""
    current: Ack | None = None
    for seg in tokens.segments:
        if seg.id == "HL":
            level = seg.get(3).strip()
            current = None
        elif level == "PT" and seg.id == "TRN" and seg.get(1) == "2":
            current = Ack("277CA", False, "", "", claim_number=seg.get(2).strip())
        elif level == "PT" and seg.id == "STC" and current is not None and not current.category:
            comp = components(seg.get(1), tokens.delimiters)
            category = comp[0].strip()
            status = comp[1].strip() if len(comp) > 1 else ""
            if category in ACCEPTED_277 or category in REJECTED_277:
                current.category = category
                current.accepted = category in ACCEPTED_277
                current.message = f"277CA {category}" + (f":{status}" if status else "")
                out.acks.append(current)
            else:
                out.issues.append(Issue("277ca.category", f"STC01-1: category {category[:3]!r} "
                                        "is neither an acceptance nor a rejection", "warning",
                                        claim=current.claim_number, segment=seg.position))
        elif level == "PT" and seg.id == "REF" and seg.get(1) == "1K" and current is not None:
            current.payer_icn = seg.get(2).strip()
    if not out.acks:
        out.issues.append(Issue("277ca.no_claim_status",
                                "file: the 277CA has no claim-level (HL*PT) status"))
    return out
