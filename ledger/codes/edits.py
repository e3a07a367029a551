"""NCCI procedure-to-procedure (PTP) edits and medically unlikely edits (MUE) from the CMS
quarterly files a deployment supplies (they contain CPT codes, so none are shipped).

Files read (``LEDGER_NCCI_PTP_FILE`` and ``LEDGER_MUE_FILE``; several files may be given,
separated by ``os.pathsep``, e.g. the four practitioner PTP files):

* **NCCI PTP** — the tab-delimited text file in each CMS PTP zip (``ccipra-v###r#-f#.txt``
  practitioner, ``ccioph-…`` outpatient hospital). Banner/header lines are skipped: a data
  row is one whose first two cells are procedure codes. Columns read, by position:

  === ================================ =====================================================
  #   CMS heading                      use
  === ================================ =====================================================
  1   Column 1                         the comprehensive code
  2   Column 2                         the code not paid with column 1
  3   \\*=in existence prior to 1996    ignored
  4   Effective Date                   YYYYMMDD: first date of service the edit applies to
  5   Deletion Date \\*=no data         YYYYMMDD or ``*``: no longer applies from this date
  6   Modifier 0/1/9                   0 not allowed, 1 allowed (25/59/XE/XS/XP/XU), 9 n/a
  7   PTP Edit Rationale               kept for messages
  === ================================ =====================================================

  A comma-separated export of the CMS xlsx with the same columns is read the same way.

* **MUE** — the CSV in each CMS MUE zip (e.g. ``MCR_MUE_PractitionerServices_Eff_*.csv``),
  banner lines first. Columns found by heading (falling back to position):
  ``HCPCS/CPT Code`` (1), ``… MUE Values`` (2), ``MUE Adjudication Indicator`` (3, its
  leading digit: 1 per line, 2/3 per date of service), ``MUE Rationale`` (4).

PTP files are large (millions of rows), so pairs are held in two sorted ``array``s
(16 bytes a row) and found by binary search, not in a dict of objects.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import os
import re
import threading
from array import array
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path

from ledger.domain.errors import InvalidValue
from ledger.domain.scrubber import EditTables, MUELimit, ProcedureCodeSet, PTPEdit
from ledger.domain.values import procedure_code_system

_EPOCH = date(1990, 1, 1)
_NO_DATE = 0xFFFF  # "no deletion date"
_BASE = 36**5  # a 5-character code read in base 36 is below this
_PTP_CODE = re.compile(r"\d{4}[0-9FTU]|[A-V]\d{4}")  # CPT (I/II/III/PLA) or HCPCS II


def _split_paths(spec: str | Sequence[str | Path] | None) -> list[Path]:
    if not spec:
        return []
    items = spec.split(os.pathsep) if isinstance(spec, str) else list(spec)
    return [Path(str(p).strip()) for p in items if str(p).strip()]


def _encoding(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    try:
        head.decode("utf-8-sig")
        return "utf-8-sig"
    except UnicodeDecodeError as exc:
        # a cut multi-byte character at the end of the sample is still UTF-8
        return "utf-8-sig" if exc.start >= len(head) - 3 else "cp1252"


def _date(text: str, path: Path, n: int, what: str, field: str) -> date | None:
    text = text.strip()
    if text in ("", "*"):
        return None
    try:
        if len(text) != 8 or not text.isdigit():
            raise ValueError
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise InvalidValue(field, "edit_file.date",
                           f"{field}: {path.name} row {n}: {what} {text[:10]!r} is not a "
                           "YYYYMMDD date") from None


def _rows(path: Path, field: str) -> Iterator[list[str]]:
    """The file's rows, streamed (PTP files run to millions of rows): tab-delimited when
    its first lines hold tabs, else CSV."""
    try:
        encoding = _encoding(path)
    except OSError as exc:
        raise InvalidValue(field, "edit_file.unreadable", f"{field}: cannot read {path.name} "
                           f"({type(exc).__name__})") from None
    with path.open(encoding=encoding, errors="replace", newline="") as fh:
        head = fh.read(1 << 14)
        fh.seek(0)
        delimiter = "\t" if any(ln.count("\t") >= 2 for ln in head.splitlines()) else ","
        yield from csv.reader(fh, delimiter=delimiter)


def _fingerprint(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:12]


# ---------------------------------------------------------------- PTP
class PTPTable:
    """NCCI PTP edits in two parallel sorted arrays: pair key, packed (dates, indicator)."""

    def __init__(self, keys: array, values: array, rationales: dict[int, str]) -> None:
        self.keys = keys
        self.values = values
        self.rationales = rationales  # a few distinct texts, by small id

    def __len__(self) -> int:
        return len(self.keys)

    @staticmethod
    def key(column1: str, column2: str) -> int:
        return int(column1, 36) * _BASE + int(column2, 36)

    def edits(self, column1: str, column2: str) -> list[PTPEdit]:
        try:
            k = self.key(column1, column2)
        except ValueError:
            return []
        lo = bisect.bisect_left(self.keys, k)
        out = []
        while lo < len(self.keys) and self.keys[lo] == k:
            v = self.values[lo]
            eff, dele, ind, rat = v >> 36, (v >> 20) & 0xFFFF, (v >> 16) & 0xF, v & 0xFFFF
            out.append(PTPEdit(column1, column2, str(ind),
                               _EPOCH + timedelta(days=eff) if eff != _NO_DATE else None,
                               _EPOCH + timedelta(days=dele) if dele != _NO_DATE else None,
                               self.rationales.get(rat, "")))
            lo += 1
        return out


def read_ptp_files(paths: Sequence[Path]) -> PTPTable:
    """Read NCCI PTP files (see the module docstring) into one table."""
    keys: list[int] = []
    values: list[int] = []
    rationale_ids: dict[str, int] = {}
    days: dict[str, int] = {}  # a file holds few distinct dates: convert each once

    def day_number(text: str, path: Path, n: int, what: str) -> int:
        got = days.get(text)
        if got is None:
            d = _date(text, path, n, what, "ncci_ptp_file")
            got = days[text] = max((d - _EPOCH).days, 0) if d else _NO_DATE
        return got

    indicators = {"0": 0 << 16, "1": 1 << 16, "9": 9 << 16}
    match = _PTP_CODE.fullmatch
    for path in paths:
        for n, row in enumerate(_rows(path, "ncci_ptp_file"), start=1):
            if len(row) < 6:
                continue
            c1, c2 = row[0], row[1]
            if not (match(c1) and match(c2)):  # CMS files are clean: try as-is first
                c1, c2 = c1.strip().upper(), c2.strip().upper()
                if not (match(c1) and match(c2)):
                    continue  # banner and heading lines
            eff = days.get(row[3])
            if eff is None:
                eff = day_number(row[3], path, n, "effective date")
            dele = days.get(row[4])
            if dele is None:
                dele = day_number(row[4], path, n, "deletion date")
            ind = indicators.get(row[5]) if len(row[5]) == 1 else \
                indicators.get(row[5].strip()[:1])
            if ind is None:
                raise InvalidValue("ncci_ptp_file", "edit_file.modifier_indicator",
                                   f"ncci_ptp_file: {path.name} row {n}: modifier indicator "
                                   f"{row[5][:5]!r} is not 0, 1 or 9")
            rationale = row[6] if len(row) > 6 else ""
            rat = rationale_ids.get(rationale)
            if rat is None:
                rat = rationale_ids[rationale] = min(len(rationale_ids), 0xFFFF)
            keys.append(int(c1, 36) * _BASE + int(c2, 36))
            values.append((eff << 36) | (dele << 20) | ind | rat)
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return PTPTable(array("q", (keys[i] for i in order)), array("q", (values[i] for i in order)),
                    {i: t.strip() for t, i in rationale_ids.items() if i < 0xFFFF})


# ---------------------------------------------------------------- MUE
def read_mue_files(paths: Sequence[Path]) -> dict[str, MUELimit]:
    """Read CMS MUE CSV files (see the module docstring). A code in a later file wins."""
    out: dict[str, MUELimit] = {}
    for path in paths:
        cols = {"code": 0, "value": 1, "mai": 2, "rationale": 3}
        for n, row in enumerate(_rows(path, "mue_file"), start=1):
            cells = [c.strip() for c in row]
            if not cells:
                continue
            lowered = [c.lower() for c in cells]
            if any("mue value" in c for c in lowered):  # the heading row
                for i, c in enumerate(lowered):
                    if "code" in c and "mue" not in c:
                        cols["code"] = i
                    elif "mue value" in c:
                        cols["value"] = i
                    elif "adjudication" in c:
                        cols["mai"] = i
                    elif "rationale" in c:
                        cols["rationale"] = i
                continue
            code = cells[cols["code"]].upper() if cols["code"] < len(cells) else ""
            if procedure_code_system(code) is None:
                continue  # banner lines
            try:
                units = int(cells[cols["value"]])
            except (ValueError, IndexError):
                raise InvalidValue("mue_file", "edit_file.mue_value",
                                   f"mue_file: {path.name} row {n}: the MUE value of {code} is "
                                   "not a whole number") from None
            mai = cells[cols["mai"]][:1] if cols["mai"] < len(cells) else "1"
            if mai not in ("1", "2", "3"):
                raise InvalidValue("mue_file", "edit_file.mue_indicator",
                                   f"mue_file: {path.name} row {n}: adjudication indicator of "
                                   f"{code} is not 1, 2 or 3")
            rationale = cells[cols["rationale"]] if cols["rationale"] < len(cells) else ""
            out[code] = MUELimit(code, units, mai, rationale)
    return out


# ---------------------------------------------------------------- the tables
class CMSEditTables(EditTables):
    """Edit tables read from CMS files on first use (the first scrub), then kept.

    ``version`` names each file with a hash of its content, so a ``ClaimScrubbed`` event
    records exactly which tables were applied.
    """

    def __init__(self, ptp_files: str | Sequence[str | Path] | None = None,
                 mue_files: str | Sequence[str | Path] | None = None,
                 procedure_codes: ProcedureCodeSet | None = None) -> None:
        super().__init__(procedure_codes=procedure_codes)
        self.ptp_files = _split_paths(ptp_files)
        self.mue_files = _split_paths(mue_files)
        self._ptp_table: PTPTable | None = None
        self._mue_table: dict[str, MUELimit] | None = None
        self._version: str | None = None
        self._load_lock = threading.Lock()

    def load(self) -> None:
        if self._version is not None:
            return
        with self._load_lock:
            if self._version is not None:
                return
            self._ptp_table = read_ptp_files(self.ptp_files) if self.ptp_files else None
            self._mue_table = read_mue_files(self.mue_files)
            parts = []
            if self.ptp_files:
                parts.append("ncci-ptp:" + ",".join(p.name for p in self.ptp_files) +
                             "#" + _fingerprint(self.ptp_files))
            if self.mue_files:
                parts.append("mue:" + ",".join(p.name for p in self.mue_files) +
                             "#" + _fingerprint(self.mue_files))
            if self.procedure_codes is not None:
                parts.append(self.procedure_codes.version)
            self._version = ";".join(parts)

    @property  # type: ignore[override]
    def version(self) -> str:
        self.load()
        assert self._version is not None
        return self._version

    @version.setter
    def version(self, value: str) -> None:  # EditTables.__init__ assigns it
        pass

    def ptp_edits(self, column1: str, column2: str) -> Sequence[PTPEdit]:
        self.load()
        return self._ptp_table.edits(column1, column2) if self._ptp_table else ()

    def mue_limit(self, code: str) -> MUELimit | None:
        self.load()
        assert self._mue_table is not None
        return self._mue_table.get(code)

    def counts(self) -> dict[str, int]:
        self.load()
        return {"ptp_pairs": len(self._ptp_table) if self._ptp_table else 0,
                "mue_codes": len(self._mue_table or {})}


def edit_tables_from_settings(settings: object | None = None) -> EditTables:
    """The edit tables a deployment configured (``LEDGER_NCCI_PTP_FILE``,
    ``LEDGER_MUE_FILE``, ``LEDGER_HCPCS_FILE``); empty tables when none are set. Files are
    read on the first scrub, not here."""
    if settings is None:
        from ledger.config import get_settings

        settings = get_settings()
    ptp = getattr(settings, "ncci_ptp_file", "") or ""
    mue = getattr(settings, "mue_file", "") or ""
    hcpcs = getattr(settings, "hcpcs_file", "") or ""
    if not (ptp or mue or hcpcs):
        return EditTables()
    from ledger.codes.procedures import HcpcsCodeSet

    return CMSEditTables(ptp, mue, HcpcsCodeSet(hcpcs) if hcpcs else None)
