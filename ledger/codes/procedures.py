"""Procedure codes: CPT (format only, plus an optional user-supplied descriptor file) and
HCPCS Level II (format, plus the CMS quarterly alpha-numeric file).

CPT descriptors are © AMA and may not be shipped; a licensed user can supply them:

* **CPT descriptor file** (``LEDGER_CPT_DESCRIPTOR_FILE``): UTF-8 CSV, a header row naming
  at least ``code`` and ``description`` (any further columns are ignored), one code per row.
  Blank lines and lines starting with ``#`` are skipped. Codes must be CPT Cat I (5 digits),
  Cat II (4 digits + F), Cat III (4 digits + T) or PLA (4 digits + U).

* **HCPCS quarterly file** (``LEDGER_HCPCS_FILE``): the fixed-width text file from the CMS
  "Alpha-Numeric HCPCS File" zip (``HCPC<YYYY>_<MON>_ANWEB*.txt``; layout in the zip's
  ``HCPC<YYYY>_recordlayout.txt``, 320-byte records, trailing blanks may be trimmed). Read:

  ======= ===== ========================================================================
  columns width field
  ======= ===== ========================================================================
  1-5     5     HCPCS code (modifier records: the 2-character modifier, left-justified)
  11      1     record id: 3 procedure, 4 its continuation, 7 modifier, 8 its continuation
  12-91   80    long description (continuations are appended)
  92-119  28    short description
  269-276 8     code added date, YYYYMMDD
  277-284 8     action effective date, YYYYMMDD
  285-292 8     termination date, YYYYMMDD (last date of service it may be billed)
  293     1     action code (A add, D discontinue, N no change, …)
  ======= ===== ========================================================================
"""

from __future__ import annotations

import csv
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ledger.domain.codeset import CodeVerdict
from ledger.domain.errors import InvalidValue
from ledger.domain.values import HCPCS_RE, MODIFIER_RE, procedure_code_system

CPT_SYSTEMS = {"CPT-I": "Category I", "CPT-II": "Category II (performance measurement)",
               "CPT-III": "Category III (emerging technology)",
               "CPT-PLA": "Proprietary Laboratory Analyses"}


# ---------------------------------------------------------------- CPT
def read_cpt_descriptors(path: Path | str) -> dict[str, str]:
    """Read a user-supplied CPT descriptor CSV (see the module docstring)."""
    path = Path(path)
    out: dict[str, str] = {}
    if not path.is_file():
        raise InvalidValue("cpt_descriptor_file", "cpt_file.unreadable",
                           f"cpt_descriptor_file: cannot read {path.name}")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = (r for r in csv.reader(fh) if r and not r[0].lstrip().startswith("#"))
        header = [c.strip().lower() for c in next(rows, [])]
        if "code" not in header or "description" not in header:
            raise InvalidValue("cpt_descriptor_file", "cpt_file.header",
                               f"cpt_descriptor_file: {path.name} needs a header row with "
                               "'code' and 'description'")
        ci, di = header.index("code"), header.index("description")
        for n, row in enumerate(rows, start=2):
            code = row[ci].strip().upper() if ci < len(row) else ""
            if procedure_code_system(code) not in CPT_SYSTEMS:
                raise InvalidValue("cpt_descriptor_file", "cpt_file.code",
                                   f"cpt_descriptor_file: {path.name} row {n}: "
                                   f"'{code[:12]}' is not a CPT code")
            out[code] = row[di].strip() if di < len(row) else ""
    return out


class CptDescriptors:
    """CPT descriptions from a licensed user's file, loaded on first use (or none)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else None
        self._table: dict[str, str] | None = None
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        return f"CPT descriptors ({self.path.name})" if self.path else ""

    def description(self, code: str) -> str:
        if self.path is None:
            return ""
        if self._table is None:
            with self._lock:
                if self._table is None:
                    self._table = read_cpt_descriptors(self.path)
        return self._table.get(code, "")


# ---------------------------------------------------------------- HCPCS Level II
@dataclass(frozen=True, slots=True)
class HcpcsEntry:
    code: str
    long_description: str
    short_description: str
    added: date | None
    action_effective: date | None
    terminated: date | None
    action: str

    def valid_on(self, on: date) -> bool:
        return (self.added is None or self.added <= on) and \
            (self.terminated is None or on <= self.terminated)


def _yyyymmdd(text: str, path: Path, n: int, what: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8])) if len(text) == 8 else \
            _bad_date(path, n, what)
    except ValueError:
        return _bad_date(path, n, what)


def _bad_date(path: Path, n: int, what: str) -> None:
    raise InvalidValue("hcpcs_file", "hcpcs_file.date",
                       f"hcpcs_file: {path.name} line {n}: {what} is not a YYYYMMDD date")


def read_hcpcs_file(path: Path | str) -> tuple[dict[str, HcpcsEntry], dict[str, HcpcsEntry]]:
    """(procedure codes, modifiers) from a CMS quarterly HCPCS fixed-width file."""
    path = Path(path)
    codes: dict[str, HcpcsEntry] = {}
    modifiers: dict[str, HcpcsEntry] = {}
    current: HcpcsEntry | None = None
    if not path.is_file():
        raise InvalidValue("hcpcs_file", "hcpcs_file.unreadable",
                           f"hcpcs_file: cannot read {path.name}")
    with path.open(encoding="cp1252", errors="replace") as fh:
        for n, raw in enumerate(fh, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            if len(line) < 11:
                raise InvalidValue("hcpcs_file", "hcpcs_file.row",
                                   f"hcpcs_file: {path.name} line {n} is too short for a "
                                   "HCPCS record")
            code, rec = line[0:5].strip(), line[10]
            long = line[11:91].strip()
            if rec in "48":
                if current is None or current.code != code:
                    raise InvalidValue("hcpcs_file", "hcpcs_file.continuation",
                                       f"hcpcs_file: {path.name} line {n} continues a record "
                                       "that does not precede it")
                current = _extend(current, long)
                (codes if rec == "4" else modifiers)[code] = current
                continue
            if (rec == "3" and HCPCS_RE.match(code)) or (rec == "7" and MODIFIER_RE.match(code)):
                line = line.ljust(293)
                current = HcpcsEntry(
                    code=code, long_description=long, short_description=line[91:119].strip(),
                    added=_yyyymmdd(line[268:276], path, n, "code added date"),
                    action_effective=_yyyymmdd(line[276:284], path, n, "action effective date"),
                    terminated=_yyyymmdd(line[284:292], path, n, "termination date"),
                    action=line[292].strip())
                (codes if rec == "3" else modifiers)[code] = current
                continue
            if rec == "3" and procedure_code_system(code) in CPT_SYSTEMS:
                current = None  # a CPT row in a contractor file: CPT text is never kept
                continue
            raise InvalidValue("hcpcs_file", "hcpcs_file.row",
                               f"hcpcs_file: {path.name} line {n}: record id {rec!r} with code "
                               f"{code[:5]!r} is not a HCPCS Level II procedure or modifier")
    return codes, modifiers


def _extend(entry: HcpcsEntry, more: str) -> HcpcsEntry:
    return HcpcsEntry(entry.code, f"{entry.long_description} {more}".strip(),
                      entry.short_description, entry.added, entry.action_effective,
                      entry.terminated, entry.action)


class HcpcsCodeSet:
    """HCPCS Level II codes and modifiers from the CMS quarterly file, loaded on first use.

    ``check`` has the shape the scrubber asks of a procedure code set.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._codes: dict[str, HcpcsEntry] | None = None
        self._modifiers: dict[str, HcpcsEntry] = {}
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        return f"HCPCS ({self.path.name})"

    def _load(self) -> dict[str, HcpcsEntry]:
        if self._codes is None:
            with self._lock:
                if self._codes is None:
                    codes, self._modifiers = read_hcpcs_file(self.path)
                    self._codes = codes
        return self._codes

    def entry(self, code: str) -> HcpcsEntry | None:
        return self._load().get(code)

    def modifier(self, code: str) -> HcpcsEntry | None:
        self._load()
        return self._modifiers.get(code)

    def __len__(self) -> int:
        return len(self._load())

    def check(self, code: str, date_of_service: date) -> CodeVerdict:
        """Whether a HCPCS Level II code may be billed on a date of service. Codes that are
        not Level II (CPT) are outside this file and pass."""
        if not HCPCS_RE.match(code):
            return CodeVerdict(code, True, "")
        entry = self.entry(code)
        if entry is None:
            return CodeVerdict(code, False, self.version, "hcpcs.unknown",
                               f"'{code}' is not in the loaded HCPCS file ({self.path.name})")
        if not entry.valid_on(date_of_service):
            when = (f"was discontinued after {entry.terminated}" if entry.terminated and
                    date_of_service > entry.terminated else f"starts on {entry.added}")
            return CodeVerdict(code, False, self.version, "hcpcs.dos",
                               f"'{code}' {when}: not valid on the date of service "
                               f"{date_of_service}", entry.long_description)
        return CodeVerdict(code, True, self.version, "", "", entry.long_description)


# ---------------------------------------------------------------- services or supplies
# HCPCS Level II sections that are things rather than work: A supplies (and ambulance
# supplies), B enteral/parenteral, C outpatient devices and implants, E durable medical
# equipment, J drugs, K temporary DME, L orthotics/prosthetics, Q temporary codes (skin
# substitutes, casting supplies…), V vision and hearing items. The other sections (G, H, M,
# P, R, S, T, U, D) are procedures and professional services.
SUPPLY_HCPCS_SECTIONS = frozenset("ABCEJKLQV")
SUPPLY_REVENUE_PREFIX = "027"  # 027x: medical/surgical supplies and devices (0278 implants)


def line_category(kind: str, procedure_code: str, revenue_code: str) -> str:
    """``supply`` for supply lines, HCPCS Level II supply/device/drug codes and revenue codes
    027x (implants and supplies); ``service`` for everything else (CPT, service HCPCS,
    other revenue codes). Trends label their lines with it."""
    if kind == "supply":
        return "supply"
    if revenue_code.startswith(SUPPLY_REVENUE_PREFIX) and len(revenue_code) == 4:
        return "supply"
    if procedure_code_system(procedure_code) == "HCPCS" and \
            procedure_code[0] in SUPPLY_HCPCS_SECTIONS:
        return "supply"
    return "service"
