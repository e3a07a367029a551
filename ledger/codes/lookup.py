"""Checking one code by hand: ``ledger codes lookup`` and ``GET /codes/{system}/{code}``.

``lookup_code`` answers with a plain dict (JSON-ready): whether the code is valid (exists, or
is well-formed for format-only systems), whether it may be billed, its description where
the ledger has one, the code-set version that answered, and, when refused, the rule and why.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.codes import modifiers, places
from ledger.codes.icd10cm import ICD10CMCodeSet, default_code_set
from ledger.codes.procedures import CPT_SYSTEMS, CptDescriptors, HcpcsCodeSet
from ledger.domain.errors import InvalidCode, LedgerError, NotFound
from ledger.domain.values import (
    HCPCS_RE,
    ICD10CM_RE,
    MODIFIER_RE,
    icd10cm_dotted,
    ndc_format,
    npi_format,
    procedure_code_format,
    procedure_code_system,
    revenue_code_format,
)

SYSTEMS: dict[str, str] = {
    "icd10cm": "ICD-10-CM",
    "cpt": "CPT",
    "hcpcs": "HCPCS Level II",
    "modifier": "Modifier",
    "pos": "Place of service",
    "npi": "NPI",
    "revenue": "Revenue code",
    "ndc": "NDC",
}


@dataclass
class CodeSets:
    """The code sets a deployment has: ICD-10-CM always; CPT descriptors and the HCPCS
    file when configured."""

    icd10cm: ICD10CMCodeSet
    cpt: CptDescriptors
    hcpcs: HcpcsCodeSet | None = None


_configured: CodeSets | None = None
_lock = threading.Lock()


def configured_code_sets() -> CodeSets:
    """Code sets from settings (``LEDGER_CPT_DESCRIPTOR_FILE``, ``LEDGER_HCPCS_FILE``,
    ``LEDGER_ICD10CM_ORDER_FILES``); files are read on first use."""
    global _configured
    if _configured is None:
        with _lock:
            if _configured is None:
                from ledger.config import get_settings

                s = get_settings()
                _configured = CodeSets(default_code_set(), CptDescriptors(s.cpt_descriptor_file
                                                                          or None),
                                       HcpcsCodeSet(s.hcpcs_file) if s.hcpcs_file else None)
    return _configured


def _result(system: str, text: str, code: str, *, valid: bool, billable: bool,
            description: str = "", version: str = "", rule: str = "", message: str = "",
            on: date | None = None) -> dict[str, Any]:
    return {"system": system, "system_name": SYSTEMS[system], "input": text, "code": code,
            "valid": valid, "billable": billable, "description": description,
            "version": version, "date_of_service": on.isoformat() if on else None,
            "rule": rule, "message": message}


def _refused(system: str, text: str, err: LedgerError, on: date | None) -> dict[str, Any]:
    message = err.message.split(": ", 1)[-1]
    return _result(system, text, text.strip().upper()[:20], valid=False, billable=False,
                   rule=err.rule, message=message, on=on)


def systems_for(code: str) -> list[str]:
    """The systems whose format ``code`` fits (a code like J1100 fits two)."""
    text = code.strip().upper()
    out = []
    if ICD10CM_RE.match(text.replace(".", "")) and (text.count(".") == 0 or text[3:4] == "."):
        out.append("icd10cm")
    system = procedure_code_system(text)
    if system in CPT_SYSTEMS:
        out.append("cpt")
    elif system == "HCPCS":
        out.append("hcpcs")
    if re.fullmatch(r"\d{10}", text):
        out.append("npi")
    if re.fullmatch(r"\d{11}|\d{4,5}-\d{3,4}-\d{1,2}", text):
        out.append("ndc")
    if re.fullmatch(r"\d{4}", text):
        out.append("revenue")
    if re.fullmatch(r"\d{2}", text):
        out.append("pos")
    if MODIFIER_RE.match(text):
        out.append("modifier")
    return out


def ndc_billing_form(text: str) -> str | None:
    """The 11-digit 5-4-2 form of a hyphenated 10-digit package NDC (4-4-2, 5-3-2, 5-4-1),
    by padding the short segment with a leading zero; None if ``text`` is not one."""
    parts = text.strip().split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    a, b, c = parts
    lengths = (len(a), len(b), len(c))
    if lengths == (4, 4, 2):
        a = "0" + a
    elif lengths == (5, 3, 2):
        b = "0" + b
    elif lengths == (5, 4, 1):
        c = "0" + c
    else:
        return None
    return f"{a}-{b}-{c}"


def lookup_code(system: str, code: str, on: date | None = None,
                sets: CodeSets | None = None) -> dict[str, Any]:
    """Look one code up. ``system`` is one of ``SYSTEMS``; ``on`` is the date of service
    (ICD-10-CM and HCPCS validity depend on it; default: the latest loaded edition).

    Raises ``NotFound`` for an unknown system; a bad code is an answer, not an error.
    """
    system = system.strip().lower()
    if system not in SYSTEMS:
        raise NotFound("system", "code_system.exists",
                       f"system: one of {', '.join(SYSTEMS)}")
    if not isinstance(code, str) or not code.strip():
        raise InvalidCode("code", "required", "code: required")
    sets = sets or configured_code_sets()
    text = code.strip()
    upper = text.upper()
    if system == "icd10cm":
        return _icd10cm(text, on, sets.icd10cm)
    if system in ("cpt", "hcpcs"):
        return _procedure(system, text, on, sets)
    if system == "modifier":
        if not MODIFIER_RE.match(upper):
            return _result(system, text, upper[:20], valid=False, billable=False,
                           rule="modifier.format", message="a modifier is 2 letters or digits")
        entry = sets.hcpcs.modifier(upper) if sets.hcpcs else None
        if entry is not None:
            return _result(system, text, upper, valid=True, billable=True,
                           description=entry.long_description, version=sets.hcpcs.version)
        name = modifiers.CPT_MODIFIERS.get(upper) or modifiers.HCPCS_MODIFIERS.get(upper)
        if name is None:
            return _result(system, text, upper, valid=False, billable=False,
                           rule="modifier.unknown", version=modifiers.VERSION,
                           message=f"'{upper}' is not a modifier the ledger knows (load the CMS "
                           "HCPCS file for every Level II modifier)")
        return _result(system, text, upper, valid=True, billable=True, description=name,
                       version=modifiers.VERSION)
    if system == "pos":
        name = places.PLACE_OF_SERVICE.get(text)
        if name is None:
            return _result(system, text, text[:20], valid=False, billable=False,
                           rule="pos.code", version=places.VERSION,
                           message=f"'{text[:10]}' is not a CMS place-of-service code")
        return _result(system, text, text, valid=True, billable=True, description=name,
                       version=places.VERSION)
    result = _format_only(system, text, on)  # npi, revenue, ndc
    fixed = ndc_billing_form(text) if system == "ndc" and not result["valid"] else None
    if fixed:
        result["message"] = (f"'{text}' is a 10-digit package NDC; bill it in the 11-digit "
                             f"5-4-2 form {fixed}")
    return result


# The systems checked by their format alone: (format check, the code as shown, version)
_FORMAT_ONLY: dict[str, tuple[Callable[[str], str], Callable[[str], str], str]] = {
    "npi": (npi_format, str, "NPI check digit (Luhn, prefix 80840)"),
    "revenue": (revenue_code_format, str, "format only (NUBC descriptions are licensed)"),
    "ndc": (ndc_format, lambda ndc: f"{ndc[:5]}-{ndc[5:9]}-{ndc[9:]}",
            "NDC 11-digit billing form (5-4-2)"),
}


def _format_only(system: str, text: str, on: date | None) -> dict[str, Any]:
    check, shown, version = _FORMAT_ONLY[system]
    try:
        code = check(text)
    except LedgerError as err:
        return _refused(system, text, err, on)
    return _result(system, text, shown(code), valid=True, billable=True, version=version)


def _icd10cm(text: str, on: date | None, cs: ICD10CMCodeSet) -> dict[str, Any]:
    edition = cs.edition_for(on) if on else cs.latest()
    verdict = cs.check(text, on or cs.latest().valid_to)
    code = icd10cm_dotted(verdict.code) if ICD10CM_RE.match(verdict.code) else \
        text.upper()[:20]
    known = verdict.billable or verdict.rule == "icd10cm.not_billable"
    return _result("icd10cm", text, code, valid=known, billable=verdict.billable,
                   description=verdict.description, version=verdict.version or
                   (edition.version if edition else ""), rule=verdict.rule,
                   message=verdict.message, on=on)


def _procedure(system: str, text: str, on: date | None, sets: CodeSets) -> dict[str, Any]:
    try:
        code = procedure_code_format(text, "code")
    except LedgerError as err:
        return _refused(system, text, err, on)
    kind = procedure_code_system(code)
    if system == "cpt" and kind not in CPT_SYSTEMS:
        return _result(system, text, code, valid=False, billable=False, rule="cpt.format",
                       message=f"'{code}' is a HCPCS Level II code, not CPT (5 digits, or "
                       "4 digits + F/T/U)")
    if system == "hcpcs" and not HCPCS_RE.match(code):
        return _result(system, text, code, valid=False, billable=False, rule="hcpcs.format",
                       message=f"'{code}' is a CPT code, not HCPCS Level II (a letter A-V + 4 "
                       "digits)")
    if system == "cpt":
        note = "reported for quality measurement, not paid" if kind == "CPT-II" else ""
        version = sets.cpt.version or "CPT format only (descriptors © AMA, not shipped)"
        return _result(system, text, code, valid=True, billable=True,
                       description=sets.cpt.description(code), version=version,
                       message=f"{CPT_SYSTEMS[kind or 'CPT-I']}" + (f"; {note}" if note else ""),
                       on=on)
    if sets.hcpcs is None:
        return _result(system, text, code, valid=True, billable=True,
                       version="HCPCS Level II format only (no CMS HCPCS file loaded)", on=on)
    entry = sets.hcpcs.entry(code)
    if entry is None:
        return _result(system, text, code, valid=False, billable=False, rule="hcpcs.unknown",
                       version=sets.hcpcs.version,
                       message=f"'{code}' is not in the loaded HCPCS file", on=on)
    if on is not None:
        verdict = sets.hcpcs.check(code, on)
        return _result(system, text, code, valid=True, billable=verdict.billable,
                       description=entry.long_description, version=sets.hcpcs.version,
                       rule=verdict.rule, message=verdict.message, on=on)
    message = f"discontinued after {entry.terminated}" if entry.terminated else ""
    return _result(system, text, code, valid=True, billable=entry.terminated is None,
                   description=entry.long_description, version=sets.hcpcs.version,
                   rule="hcpcs.dos" if entry.terminated else "", message=message)
