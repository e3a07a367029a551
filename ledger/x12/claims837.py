"""837P (005010X222A1) / 837I (005010X223A2) reading into claim drafts, checked per claim.

Parsing is ``x12sdk``'s typed models (loops 2000A/B/C, 2300, 2320/2330, 2400), which need an
ISA envelope. Composite elements it leaves as text (``HC:99214:25``) are split here with the
declared component separator, or the one the sender actually used.

Each ``ClaimDraft`` carries its own issues: ICD-9 qualifiers (BK/BF), CLM02 differing from the
sum of the lines, pointers to missing diagnoses, frequency 7/8 without REF*F8, missing dates.
Claims with an error issue are reported and not imported; the rest are.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from ledger.domain.values import CENT, Money
from ledger.x12.model import Issue
from ledger.x12.tokenizer import Delimiters, components, file_hash, tokenize

SUPPORTED = {"837P": "005010X222A1", "837I": "005010X223A2"}
ICD10_QUALIFIERS = {"ABK": 1, "ABF": 2, "ABJ": 0, "APR": 0}  # 1 principal, 2 other
ICD9_QUALIFIERS = {"BK", "BF", "BJ", "PR"}
# institutional facility type (CLM05-1) -> place of service for the encounter
FACILITY_TO_POS = {"11": "21", "12": "21", "13": "22", "14": "22", "18": "21", "21": "31",
                   "22": "31", "23": "32", "32": "12", "33": "12", "34": "12", "71": "72",
                   "72": "65", "73": "50", "74": "49", "75": "62", "76": "53", "77": "50",
                   "81": "34", "82": "34", "83": "24", "85": "21", "86": "21", "89": "21"}


@dataclass(slots=True)
class PayerDraft:
    bucket: str  # primary | secondary | tertiary
    payer_id: str
    name: str
    member_id: str


@dataclass(slots=True)
class LineDraft:
    number: int
    procedure_code: str
    modifiers: list[str]
    charge: Money
    units: Decimal
    unit_type: str
    pointers: list[int]
    line_date: date | None
    revenue_code: str = ""
    ndc: str = ""
    ndc_quantity: Decimal | None = None
    rendering_npi: str = ""


@dataclass(slots=True)
class ClaimDraft:
    kind: str  # 837P | 837I
    claim_number: str
    total_charge: Money
    facility_code: str  # CLM05-1: place of service (P) or facility type (I)
    frequency: str
    original_icn: str
    billing_npi: str
    subscriber_key: str  # member id or name key, turned into a surrogate patient ref
    diagnoses: list[str]
    lines: list[LineDraft]
    payers: list[PayerDraft]
    bucket: str
    service_from: date | None
    service_to: date | None
    transaction_control: str
    issues: list[Issue] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)


@dataclass(slots=True)
class Parsed837:
    kind: str
    version: str
    file_hash: str
    interchange_control: str = ""
    group_control: str = ""
    claims: list[ClaimDraft] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)


def read_837(data: bytes) -> Parsed837:
    from ledger.x12.tokenizer import sniff

    tokens = tokenize(data)
    sn = sniff(tokens)
    parsed = Parsed837(sn.kind, sn.version, file_hash(data))
    for seg in tokens.segments:
        if seg.id == "ISA":
            parsed.interchange_control = seg.get(13)
        elif seg.id == "GS":
            parsed.group_control = seg.get(6)
            break
    if sn.kind not in SUPPORTED:
        parsed.issues.append(Issue("x12.transaction_type", "file: not an 837P or 837I"))
        return parsed
    if not tokens.has_isa:
        parsed.issues.append(Issue("x12.envelope.isa_missing",
                                   "file: no ISA interchange header; claims are imported only "
                                   "from a complete interchange"))
        return parsed
    if sn.version != SUPPORTED[sn.kind]:
        parsed.issues.append(Issue(
            "x12.envelope.version", f"GS08: {sn.version[:14]} is not {SUPPORTED[sn.kind]} "
            "(the guide pyx12 validates); read with the 5010 maps", "warning"))
    try:
        models = _x12sdk_models(data.decode("latin-1") if isinstance(data, bytes) else data)
    except Exception as exc:  # x12sdk raises ValueError / pydantic ValidationError / KeyError
        parsed.issues.append(Issue("837.x12sdk_validation",
                                   f"file: the 837 reader (x12sdk) refused the whole file: "
                                   f"{_first_line(exc)}"))
        return parsed
    for model in models:
        st = model.header.st_segment
        for claim in _claims(model, sn.kind, tokens.delimiters, st.transaction_set_control_number):
            parsed.claims.append(claim)
    if not parsed.claims:
        parsed.issues.append(Issue("x12.837.no_claims", "file: no claim (CLM) found"))
    return parsed


def iter_segments(text: str, terminator: str, start: int = 0) -> Iterator[str]:
    """The segments of X12 text one at a time (stripped, empty ones skipped), without a list
    of the whole file's segments in memory."""
    n = len(text)
    while start < n:
        end = text.find(terminator, start)
        if end < 0:
            end = n
        seg = text[start:end].strip()
        start = end + 1
        if seg:
            yield seg


def read_837_chunks(data: bytes, claims_per_chunk: int = 400) -> Iterator[Parsed837]:
    """``read_837`` of a large file a slice at a time: each transaction's subscribers (HL 22,
    with their patients, HL 23) are cut into interchanges of about ``claims_per_chunk``
    claims under their billing provider (HL 20) and the transaction's header, and each is
    read on its own, so the reader's models of the whole file never sit in memory at once.
    Every slice reports the whole file's hash and control numbers. A file of at most one
    slice (or one that is not a plain ISA interchange) is read whole."""
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    start = len(text) - len(text.lstrip())
    head = text[start:start + 106]
    if not head.startswith("ISA") or len(head) < 106 or \
            text.count("CLM" + head[3]) <= claims_per_chunk:
        yield read_837(data)
        return
    element, terminator = head[3], head[105]
    segments = iter_segments(text, terminator, start)
    whole_hash = file_hash(data)
    isa = next(segments)
    gs = next((seg for seg in segments if seg.startswith("GS" + element)), "")
    isa13 = isa.split(element)[13] if len(isa.split(element)) > 13 else ""
    gs06 = gs.split(element)[6] if len(gs.split(element)) > 6 else ""

    def emit(header: list[str], provider: list[str], groups: list[list[str]]) -> Parsed837:
        body = header + provider + [seg for g in groups for seg in g]
        st02 = header[0].split(element)[2] if len(header[0].split(element)) > 2 else ""
        body.append(element.join(("SE", str(len(body) + 1), st02)))
        chunk = [isa, gs, *body, element.join(("GE", "1", gs06)),
                 element.join(("IEA", "1", isa13))]
        parsed = read_837(((terminator + "\n").join(chunk) + terminator).encode("latin-1"))
        parsed.file_hash = whole_hash
        return parsed

    header: list[str] = []
    provider: list[str] = []
    groups: list[list[str]] = []
    claims = 0
    block: list[str] | None = None
    in_tx = False
    for seg in segments:
        sid = seg.split(element, 1)[0]
        if sid == "ST":
            in_tx, header, provider, groups, claims, block = True, [seg], [], [], 0, None
            continue
        if not in_tx:
            continue
        if sid == "SE":
            if groups:
                yield emit(header, provider, groups)
            in_tx = False
            continue
        if sid == "HL":
            level = seg.split(element)[3] if len(seg.split(element)) > 3 else ""
            if level == "20":
                if groups:
                    yield emit(header, provider, groups)
                    groups, claims = [], 0
                provider = block = [seg]
                continue
            if level == "22" and claims >= claims_per_chunk:
                yield emit(header, provider, groups)
                groups, claims = [], 0
            if level == "22" or not groups:
                groups.append([seg])
            else:
                groups[-1].append(seg)
            block = groups[-1]
            continue
        if sid in ("GE", "IEA"):
            continue
        if block is None:
            header.append(seg)
        else:
            block.append(seg)
            if sid == "CLM":
                claims += 1


def _first_line(exc: Exception) -> str:
    """Where and why, without the input values pydantic quotes (they may hold PHI)."""
    text = str(exc).splitlines()
    if len(text) >= 3:
        why = text[2].split("[type=")[0].strip()
        return f"{text[1].strip()[:120]}: {why[:160]}"
    return (text[0] if text else type(exc).__name__)[:160]


def _x12sdk_models(text: str) -> list[Any]:
    from x12sdk.io import X12ModelReader

    logging.getLogger("x12sdk").setLevel(logging.ERROR)
    with X12ModelReader(text) as reader:
        return list(reader.models())


def _claims(model: Any, kind: str, delims: Delimiters, st_control: str):
    for l2000a in model.loop_2000a:
        bp = l2000a.loop_2010aa.nm1_segment
        billing_npi = bp.identification_code if bp.identification_code_qualifier == "XX" else ""
        for l2000b in l2000a.loop_2000b:
            sbr = l2000b.sbr_segment
            sub = l2000b.loop_2010ba.nm1_segment
            payer = l2000b.loop_2010bb.nm1_segment
            own = (sbr.payer_responsibility_code or "P", payer.identification_code or "",
                   payer.name_last_or_organization_name or "", sub.identification_code or "")
            subscriber_key = f"{payer.identification_code}|{sub.identification_code or ''}|" \
                             f"{sub.name_last_or_organization_name}|{sub.name_first}"
            clms = list(l2000b.loop_2300 or [])
            for l2000c in l2000b.loop_2000c or []:
                pat = l2000c.loop_2010ca.nm1_segment
                key = f"{subscriber_key}|dep|{pat.name_last_or_organization_name}|" \
                      f"{pat.name_first}"
                clms.extend((c, key) for c in (l2000c.loop_2300 or []))
            for item in clms:
                c, key = item if isinstance(item, tuple) else (item, subscriber_key)
                yield _claim(c, kind, delims, st_control, billing_npi, own, key)


_RESP = {"P": "primary", "S": "secondary", "T": "tertiary"}


def _amount(value: Any, field_name: str, issues: list[Issue], claim: str,
            line: int | None = None) -> Money:
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
        if not d.is_finite() or d != d.quantize(CENT):
            raise InvalidOperation
        return Money(d.quantize(CENT))
    except (InvalidOperation, ValueError):
        issues.append(Issue("x12.amount_format", f"{field_name}: not an amount exact to the "
                            "cent", claim=claim, line=line))
        return Money.zero()


def _claim(c: Any, kind: str, delims: Delimiters, st_control: str, billing_npi: str,
           own: tuple[str, str, str, str], subscriber_key: str) -> ClaimDraft:
    clm = c.clm_segment
    number = (clm.patient_control_number or "").strip()
    issues: list[Issue] = []
    loc = components(clm.health_care_service_location_information or "", delims)
    facility = loc[0] if loc else ""
    frequency = loc[2] if len(loc) > 2 else ""
    refs = {r.reference_identification_qualifier: r.reference_identification
            for r in (c.ref_segment or [])}
    original_icn = (refs.get("F8") or "").strip()
    if frequency not in ("1", "7", "8"):
        issues.append(Issue("837.frequency", f"CLM05-3: frequency {frequency[:2]!r} is not 1, "
                            "7 or 8", claim=number))
    if frequency in ("7", "8") and not original_icn:
        issues.append(Issue("837.original_icn", f"REF*F8: frequency {frequency} needs the "
                            "payer's claim number of the original", claim=number))
    # diagnoses
    diagnoses: list[str] = []
    icd9 = 0
    for hi in c.hi_segment or []:
        for n in range(1, 13):
            comp = getattr(hi, f"health_care_code_{n}", None)
            if not comp:
                continue
            if isinstance(comp, list) and len(comp) == 1:
                comp = comp[0]
            parts = list(comp) if isinstance(comp, list) else components(str(comp), delims)
            qual, code = (parts + ["", ""])[:2]
            if qual in ICD9_QUALIFIERS:
                icd9 += 1
            elif qual in ("ABK", "ABF"):
                diagnoses.append(code.strip())
    if icd9:
        issues.append(Issue("837.icd9_qualifier",
                            f"HI: {icd9} diagnosis code(s) qualified BK/BF/BJ (ICD-9-CM); the "
                            "ledger codes ICD-10-CM only (ABK/ABF)", claim=number))
    if not diagnoses and not icd9:
        issues.append(Issue("837.diagnosis_missing", "HI: no ICD-10-CM principal diagnosis "
                            "(ABK)", claim=number))
    # payers, in COB order
    payers = [PayerDraft(_RESP.get(own[0], "primary"), own[1], own[2], own[3])]
    for l2320 in getattr(c, "loop_2320", None) or []:
        if l2320.loop_2330b is None:
            issues.append(Issue("837.cob_payer_missing", "loop 2330B: another payer (SBR) is "
                                "named without its NM1*PR", claim=number))
            continue
        other = l2320.loop_2330b.nm1_segment
        member = l2320.loop_2330a.nm1_segment if l2320.loop_2330a is not None else None
        payers.append(PayerDraft(_RESP.get(l2320.sbr_segment.payer_responsibility_code or "",
                                           "secondary"),
                                 other.identification_code or "",
                                 other.name_last_or_organization_name or "",
                                 (member.identification_code if member else "") or ""))
    bucket = payers[0].bucket
    payers.sort(key=lambda p: ("primary", "secondary", "tertiary").index(p.bucket))
    if len({p.bucket for p in payers}) != len(payers):
        issues.append(Issue("837.cob_order", "SBR01: two payers claim the same COB position",
                            claim=number))
    # claim-level rendering provider (2310B) and statement dates (434, institutional)
    rendering = ""
    l2310b = getattr(c, "loop_2310b", None)
    if l2310b is not None and l2310b.nm1_segment.identification_code_qualifier == "XX":
        rendering = l2310b.nm1_segment.identification_code or ""
    statement: tuple[date | None, date | None] = (None, None)
    for dtp in _as_list(getattr(c, "dtp_segment", None)):
        if dtp.date_time_qualifier == "434":
            statement = _period(dtp.date_time_period)
    lines: list[LineDraft] = []
    for i, l2400 in enumerate(c.loop_2400 or [], start=1):
        lines.append(_line(l2400, kind, delims, i, number, rendering, issues))
    total = _amount(clm.total_claim_charge_amount, "CLM02", issues, number)
    line_sum = Money.zero()
    for ln in lines:
        line_sum = line_sum + ln.charge
    if lines and total != line_sum:
        issues.append(Issue("837.claim_total", f"CLM02: {total} differs from the sum of the "
                            f"line charges {line_sum}", claim=number))
    if not lines:
        issues.append(Issue("837.lines_missing", "loop 2400: the claim has no lines",
                            claim=number))
    for ln in lines:
        for p in ln.pointers:
            if not 1 <= p <= len(diagnoses) and not icd9:
                issues.append(Issue("837.pointer", f"SV107: pointer {p} points at no "
                                    "diagnosis", claim=number, line=ln.number))
    dates = [ln.line_date for ln in lines if ln.line_date] + [d for d in statement if d]
    service_from = statement[0] or (min(dates) if dates else None)
    service_to = statement[1] or (max(dates) if dates else None)
    if service_from is None:
        issues.append(Issue("837.dates_missing", "DTP*472/434: no date of service",
                            claim=number))
    return ClaimDraft(kind, number, total, facility, frequency, original_icn, billing_npi,
                      subscriber_key, diagnoses, lines, payers, bucket, service_from,
                      service_to, st_control, issues)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _period(value: Any) -> tuple[date | None, date | None]:
    if isinstance(value, date):
        return value, value
    text = str(value or "")
    try:
        if "-" in text and len(text) == 17:
            a, b = text.split("-")
            return (date(int(a[:4]), int(a[4:6]), int(a[6:8])),
                    date(int(b[:4]), int(b[4:6]), int(b[6:8])))
        if len(text) >= 8 and text[:8].isdigit():
            d = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
            return d, d
    except ValueError:
        pass
    return None, None


def _units(value: Any) -> Decimal:
    try:
        d = Decimal(str(value)) if value not in (None, "") else Decimal(1)
    except InvalidOperation:
        return Decimal(0)
    return d.normalize() if d == d.to_integral_value() else d


def _line(l2400: Any, kind: str, delims: Delimiters, number: int, claim: str, rendering: str,
          issues: list[Issue]) -> LineDraft:
    if kind == "837P":
        sv = l2400.sv1_segment
        comp = components(sv.product_service_id_qualifier or "", delims)
        charge = _amount(sv.line_item_charge_amount, "SV102", issues, claim, number)
        unit_type = sv.unit_basis_measurement_code or "UN"
        units = _units(sv.service_unit_count)
        ptr_text = sv.composite_diagnosis_code_pointer or ""
        pointers = []
        for p in re.split(r"\D+", str(ptr_text)):
            if p:
                pointers.append(int(p))
        revenue = ""
    else:
        sv = l2400.sv2_segment
        comp = components(sv.composite_medical_procedure_identifier or "", delims)
        charge = _amount(sv.line_item_charge_amount, "SV203", issues, claim, number)
        unit_type = sv.measurement_code or "UN"
        units = _units(sv.service_unit_count)
        pointers = [1]
        revenue = (sv.service_line_revenue_code or "").strip()
    qualifier = comp[0] if comp else ""
    code = comp[1].strip() if len(comp) > 1 else ""
    mods = [m.strip() for m in comp[2:6] if m and m.strip()]
    if qualifier and qualifier not in ("HC", "HP", "IV", "WK", "ER"):
        issues.append(Issue("837.procedure_qualifier", f"SV1/SV2: procedure qualifier "
                            f"{qualifier[:3]!r} is not HCPCS/CPT (HC)", claim=claim, line=number))
    line_date = None
    for dtp in _as_list(getattr(l2400, "dtp_segment", None)):
        if dtp.date_time_qualifier == "472":
            line_date = _period(dtp.date_time_period)[0]
    ndc, ndc_qty = "", None
    l2410 = getattr(l2400, "loop_2410", None)
    if l2410 is not None:
        lin = getattr(l2410, "lin_segment", None)
        ctp = getattr(l2410, "ctp_segment", None)
        if lin is not None:
            ndc = (getattr(lin, "national_drug_code", None) or
                   getattr(lin, "product_service_id", None) or "").strip()
        if ctp is not None:
            q = getattr(ctp, "national_drug_unit_count", None) or getattr(ctp, "quantity", None)
            ndc_qty = _units(q) if q not in (None, "") else None
    line_rendering = rendering
    l2420a = getattr(l2400, "loop_2420a", None)
    if l2420a is not None and l2420a.nm1_segment.identification_code_qualifier == "XX":
        line_rendering = l2420a.nm1_segment.identification_code or rendering
    return LineDraft(number, code, mods, charge, units, unit_type if unit_type in
                     ("UN", "MJ", "DA") else "UN", pointers, line_date, revenue, ndc, ndc_qty,
                     line_rendering)
