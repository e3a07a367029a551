"""835 (005010X221A1) reading and balancing.

Reading: ``oxedi`` (Rust, ~0.4 s for 20,000 claims) checks an enveloped file and reports
SNIP level 1-3 diagnostics, kept as warnings in the report. Its data comes out as Arrow tables
(needing pyarrow/polars, not in this stack) or as per-element Python objects, which cost more
than splitting the text ourselves, and it refuses files without an ISA header (payer-portal
extracts that start at ST) and component separators other than ISA16 (``HC>12345`` under
``:``). So the data is read from ``ledger.x12.tokenizer`` segments by the walker below,
for every file.

Balancing (``balance``) runs before anything is posted; every rule that fails becomes an
error ``Issue`` naming the transaction, claim (CLP01), line (SVC position) and rule:

- ``835.line_balance``      SVC02 - SVC03 = sum of the line's CAS amounts
- ``835.claim_balance``     CLP03 - CLP04 = sum of claim-level and line-level CAS
- ``835.patient_responsibility``  CLP05 = sum of PR adjustments (claim and lines)
- ``835.transaction_balance``     BPR02 = sum of CLP04 - sum of PLB amounts
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import Decimal

from ledger.domain.model import ADJUSTMENT_GROUPS
from ledger.domain.values import Money
from ledger.x12.model import (
    Cas,
    ClaimPayment,
    Issue,
    MalformedElement,
    ParsedFile,
    ProviderAdjustment,
    Remittance,
    ServicePayment,
    decimal_or,
    money,
    x12_date,
)
from ledger.x12.tokenizer import Delimiters, Segment, components, file_hash, tokenize

try:  # the fast path; the tokenizer covers what it refuses
    import oxedi
except ImportError:  # pragma: no cover - oxedi is a declared dependency
    oxedi = None


def read_835(data: bytes, *, use_oxedi: bool = True) -> ParsedFile:
    """Parse an 835 file into remittances and issues (envelope, malformed segments). Does
    not balance: call ``balance`` for that."""
    fhash = file_hash(data)
    issues: list[Issue] = []
    if use_oxedi and oxedi is not None and data.lstrip()[:3] == b"ISA":
        try:
            result = oxedi.parse(data)
        except Exception as exc:  # oxedi.ParseError: unreadable delimiters, size limit
            issues.append(Issue("x12.unreadable", f"file: the 835 validator refused it "
                                f"({type(exc).__name__})", "warning"))
            result = None
        if result is not None:
            for d in result.diagnostics:
                if d.kind == "BalanceMismatch":
                    continue  # our own balancing names these precisely
                issues.append(Issue(f"snip{d.level}.{d.kind}",
                                    f"segment {d.segment + 1 if d.segment is not None else '?'}"
                                    f": SNIP level {d.level} {d.kind}", "warning",
                                    segment=d.segment + 1 if d.segment is not None else None))
    tokens = tokenize(data)
    segments, delims = tokens.segments, tokens.delimiters
    has_isa = bool(segments) and segments[0].id == "ISA"
    for rule, message, pos in tokens.issues:
        issues.append(Issue(rule, message, segment=pos))
    parsed = ParsedFile("835", "", fhash, has_isa)
    if not has_isa:
        issues.append(Issue("x12.envelope.isa_missing",
                            "file: no ISA interchange header; an 835 is posted only from a "
                            "complete interchange (ISA/GS/ST..SE/GE/IEA)"))
    _walk(segments, delims, parsed, issues)
    parsed.issues = issues
    return parsed


def _walk(segments: list[Segment], delims: Delimiters, parsed: ParsedFile,
          issues: list[Issue]) -> None:
    remit: Remittance | None = None
    claim: ClaimPayment | None = None
    svc: ServicePayment | None = None
    in_payer = False
    body: list[str] = []
    se_seen = True
    for seg in segments:
        sid = seg.id
        if remit is not None:
            body.append(sid + delims.element + delims.element.join(seg.elements))
        try:
            if sid == "ISA":
                parsed.interchange_control = seg.get(13)
            elif sid == "GS":
                parsed.group_control = seg.get(6)
                parsed.version = seg.get(8)
                if seg.get(8) and seg.get(8) != "005010X221A1":
                    issues.append(Issue("x12.envelope.version",
                                        f"GS08: {seg.get(8)[:12]} is not 005010X221A1; read "
                                        "as 5010", "warning", segment=seg.position))
            elif sid == "ST":
                if not se_seen:
                    issues.append(Issue("x12.envelope.se_missing", "ST: the previous "
                                        "transaction has no SE trailer", segment=seg.position))
                se_seen = False
                remit = Remittance(len(parsed.remittances) + 1, seg.position,
                                   control_number=seg.get(2))
                parsed.remittances.append(remit)
                body = [sid + delims.element + delims.element.join(seg.elements)]
                claim = svc = None
                in_payer = False
                if seg.get(1) != "835":
                    issues.append(Issue("x12.transaction_type", "ST01: not an 835",
                                        transaction=remit.index, segment=seg.position))
            elif remit is None:
                if sid not in ("GE", "IEA"):
                    issues.append(Issue("x12.envelope.st_missing",
                                        f"segment {seg.position}: {sid} outside a transaction",
                                        segment=seg.position))
            elif sid == "SE":
                se_seen = True
                count = seg.get(1)
                if count.isdigit() and int(count) != len(body):
                    issues.append(Issue("x12.envelope.se_count",
                                        f"SE01: says {count} segments, the transaction has "
                                        f"{len(body)}", "warning", remit.index,
                                        segment=seg.position))
                remit.content_hash = "sha256:" + hashlib.sha256(
                    "~".join(body).encode("utf-8")).hexdigest()
                remit = None
                claim = svc = None
            elif sid == "BPR":
                remit.handling = seg.get(1)
                amount = money(seg.get(2), "BPR02")
                remit.total_paid = -amount if seg.get(3) == "D" else amount
                remit.method = seg.get(4)
                try:
                    remit.payment_date = x12_date(seg.get(16), "BPR16")
                except MalformedElement:
                    issues.append(Issue("x12.date_format", f"segment {seg.position} BPR16: not "
                                        "a date; the production date (DTM*405) is used",
                                        "warning", remit.index, segment=seg.position))
            elif sid == "TRN":
                remit.trace_number = seg.get(2).strip()
                remit.payer_id = seg.get(3).strip()
                if remit.payer_id:
                    remit.payer_ids.add(remit.payer_id)
            elif sid == "DTM" and claim is None and seg.get(1) == "405":
                remit.production_date = x12_date(seg.get(2), "DTM02")
            elif sid == "N1":
                in_payer = seg.get(1) == "PR"
                if in_payer:
                    remit.payer_name = seg.get(2)[:60]
                    if seg.get(4):
                        remit.payer_ids.add(seg.get(4).strip())
            elif sid == "REF" and claim is None and in_payer and seg.get(1) == "2U":
                remit.payer_ids.add(seg.get(2).strip())
            elif sid == "LX":
                claim = svc = None
            elif sid == "CLP":
                svc = None
                if not seg.get(1).strip():
                    raise MalformedElement("CLP01", "x12.element_required",
                                           "CLP01: the claim number is missing")
                if not seg.get(2).strip():
                    raise MalformedElement("CLP02", "x12.element_required",
                                           "CLP02: the claim status is missing")
                claim = ClaimPayment(
                    len(remit.claims) + 1, seg.position, seg.get(1).strip(), seg.get(2).strip(),
                    money(seg.get(3), "CLP03"), money(seg.get(4), "CLP04"),
                    money(seg.get(5), "CLP05", required=False), filing_indicator=seg.get(6),
                    payer_icn=seg.get(7).strip(), frequency=seg.get(9),
                    drg_code=seg.get(11).strip())
                remit.claims.append(claim)
            elif sid == "CAS":
                target = svc.adjustments if svc is not None else (
                    claim.adjustments if claim is not None else None)
                if target is None:
                    raise MalformedElement("CAS", "835.cas_outside_claim",
                                           "CAS: an adjustment outside a claim")
                target.extend(_cas(seg))
            elif sid == "SVC":
                if claim is None:
                    raise MalformedElement("SVC", "835.svc_outside_claim",
                                           "SVC: a service line outside a claim")
                svc = _svc(seg, delims, len(claim.services) + 1)
                claim.services.append(svc)
                if not svc.procedure_code:
                    issues.append(Issue("835.svc_procedure_missing",
                                        f"segment {seg.position} SVC01: the procedure code is "
                                        "missing or not a composite (qualifier:code)",
                                        transaction=remit.index, claim=claim.claim_number,
                                        line=svc.position, segment=seg.position))
            elif sid == "DTM" and svc is not None and seg.get(1) in ("472", "150"):
                svc.service_date = x12_date(seg.get(2), "DTM02")
            elif sid == "AMT" and svc is not None and seg.get(1) == "B6":
                svc.allowed = money(seg.get(2), "AMT02")
            elif sid == "REF" and svc is not None and seg.get(1) == "6R":
                svc.control_number = seg.get(2).strip()
            elif sid == "LQ" and svc is not None and seg.get(1) == "HE":
                if seg.get(2):
                    svc.remarks.append(seg.get(2).strip()[:10])
            elif sid in ("MOA", "MIA") and claim is not None:
                # remark code positions: MOA03-07, MIA05, MIA20-24
                positions = (3, 4, 5, 6, 7) if sid == "MOA" else (5, 20, 21, 22, 23, 24)
                claim.remarks.extend(seg.get(p).strip()[:10] for p in positions if seg.get(p))
            elif sid == "PLB":
                remit.provider_adjustments.extend(_plb(seg, delims))
                claim = svc = None
        except MalformedElement as bad:
            issues.append(Issue(bad.rule, f"segment {seg.position} {bad.message}",
                                transaction=remit.index if remit else None,
                                claim=claim.claim_number if claim else "",
                                line=(len(claim.services) + (1 if sid == "SVC" else 0))
                                if claim and sid in ("SVC", "CAS", "AMT") and
                                (svc is not None or sid == "SVC") else None,
                                segment=seg.position))
    if remit is not None:
        issues.append(Issue("x12.envelope.se_missing", "file: the last transaction has no SE "
                            "trailer (truncated file?)", transaction=remit.index))
        remit.content_hash = "sha256:" + hashlib.sha256(
            "~".join(body).encode("utf-8")).hexdigest()
    if not parsed.remittances:
        issues.append(Issue("x12.transaction_missing", "file: no 835 transaction (ST) found"))
    for r in parsed.remittances:
        if not r.trace_number:
            issues.append(Issue("835.trace_missing", "TRN02: the remittance has no trace "
                                "number; it cannot be posted idempotently", transaction=r.index))
        if not r.payer_id:
            issues.append(Issue("835.payer_missing", "TRN03: the remittance names no payer id",
                                transaction=r.index))


def _cas(seg: Segment) -> list[Cas]:
    group = seg.get(1).strip()
    out = []
    for i in range(6):
        reason, amount, qty = seg.get(2 + 3 * i), seg.get(3 + 3 * i), seg.get(4 + 3 * i)
        if not reason and not amount:
            continue
        if not reason:
            raise MalformedElement(f"CAS{2 + 3 * i:02d}", "x12.element_required",
                                   f"CAS{2 + 3 * i:02d}: adjustment reason missing")
        out.append(Cas(group, reason.strip(), money(amount, f"CAS{3 + 3 * i:02d}"),
                       decimal_or(qty, f"CAS{4 + 3 * i:02d}", Decimal(0)) if qty else None))
    if not out:
        raise MalformedElement("CAS02", "x12.element_required", "CAS: no adjustment in it")
    return out


def _svc(seg: Segment, delims: Delimiters, position: int) -> ServicePayment:
    comp = components(seg.get(1), delims)
    qualifier = comp[0] if comp else ""
    code = comp[1] if len(comp) > 1 else ""
    mods = [m for m in comp[2:6] if m]
    original = components(seg.get(6), delims) if seg.get(6) else []
    return ServicePayment(
        position, seg.position, qualifier, code.strip(), mods, money(seg.get(2), "SVC02"),
        money(seg.get(3), "SVC03"), revenue_code=seg.get(4).strip(),
        units=decimal_or(seg.get(5), "SVC05", Decimal(1)),
        original_code=original[1].strip() if len(original) > 1 else "")


def _plb(seg: Segment, delims: Delimiters) -> list[ProviderAdjustment]:
    out = []
    fiscal = x12_date(seg.get(2), "PLB02")
    for i in range(6):
        ident, amount = seg.get(3 + 2 * i), seg.get(4 + 2 * i)
        if not ident and not amount:
            continue
        parts = components(ident, delims)
        out.append(ProviderAdjustment(seg.position, seg.get(1).strip(), fiscal,
                                      parts[0].strip()[:2], (parts[1] if len(parts) > 1
                                                             else "").strip()[:50],
                                      money(amount, f"PLB{4 + 2 * i:02d}")))
    return out


def _sum(values: Iterable[Money]) -> Money:
    total = Money.zero()
    for v in values:
        total = total + v
    return total


def balance(remittances: list[Remittance]) -> list[Issue]:
    """The four balancing rules of an 835, plus 5010 CAS group codes. Pure: no I/O."""
    issues: list[Issue] = []
    for r in remittances:
        for c in r.claims:
            line_cas_total = Money.zero()
            pr = Money.zero()
            for a in c.adjustments:
                if a.group not in ADJUSTMENT_GROUPS:
                    issues.append(Issue("835.cas_group", f"CAS01: {a.group[:3]!r} is not a "
                                        "5010 group code (CO, OA, PI, PR)", transaction=r.index,
                                        claim=c.claim_number, segment=c.segment))
                if a.group == "PR":
                    pr = pr + a.amount
            for s in c.services:
                cas = _sum(a.amount for a in s.adjustments)
                for a in s.adjustments:
                    if a.group not in ADJUSTMENT_GROUPS:
                        issues.append(Issue("835.cas_group", f"CAS01: {a.group[:3]!r} is not "
                                            "a 5010 group code (CO, OA, PI, PR)",
                                            transaction=r.index, claim=c.claim_number,
                                            line=s.position, segment=s.segment))
                    if a.group == "PR":
                        pr = pr + a.amount
                if s.charge - s.paid != cas:
                    issues.append(Issue(
                        "835.line_balance",
                        f"claim {c.claim_number[:38]} line {s.position}: SVC02 {s.charge} - "
                        f"SVC03 {s.paid} = {s.charge - s.paid}, but its adjustments sum to "
                        f"{cas} (SVC02-SVC03=ΣCAS)", transaction=r.index, claim=c.claim_number,
                        line=s.position, segment=s.segment))
                line_cas_total = line_cas_total + cas
            claim_cas = _sum(a.amount for a in c.adjustments)
            if c.charge - c.paid != claim_cas + line_cas_total:
                issues.append(Issue(
                    "835.claim_balance",
                    f"claim {c.claim_number[:38]}: CLP03 {c.charge} - CLP04 {c.paid} = "
                    f"{c.charge - c.paid}, but claim and line adjustments sum to "
                    f"{claim_cas + line_cas_total} (CLP03-CLP04=ΣCAS)", transaction=r.index,
                    claim=c.claim_number, segment=c.segment))
            if c.patient_responsibility != pr:
                issues.append(Issue(
                    "835.patient_responsibility",
                    f"claim {c.claim_number[:38]}: CLP05 {c.patient_responsibility} differs "
                    f"from the PR adjustments {pr} (CLP05=ΣPR)", transaction=r.index,
                    claim=c.claim_number, segment=c.segment))
        paid = _sum(c.paid for c in r.claims)
        plb = _sum(p.amount for p in r.provider_adjustments)
        if r.total_paid != paid - plb:
            issues.append(Issue(
                "835.transaction_balance",
                f"transaction {r.index}: BPR02 {r.total_paid} differs from ΣCLP04 {paid} - "
                f"ΣPLB {plb} = {paid - plb} (BPR02=ΣCLP04-ΣPLB)", transaction=r.index,
                segment=r.segment))
    return issues
