"""ICD-10-CM from real data, one table per yearly edition, chosen by the date of service.

An ``Edition`` names a code-set version, the dates of service it covers, and where its codes
come from. The shipped edition is the CMS/CDC April-2026 tabular list inside the
``simple-icd-10-cm`` package (FY2026: services from 1 Oct 2025 to 30 Sep 2026). Further
yearly sets are read from the CMS "order" file (``icd10cm_order_YYYY.txt``, see
``read_order_file``) named in ``LEDGER_ICD10CM_ORDER_FILES``.

Each edition is loaded once, on first use, into a plain dict (code -> billable, description);
lookups after that are a dict probe. The packaged edition costs about 3 s to build (the
library parses a 10 MB XML), so the built table is cached as JSON under the data directory
and the next process loads it in a fraction of that.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import orjson

from ledger.domain.codeset import CodeVerdict
from ledger.domain.errors import InvalidValue
from ledger.domain.values import ICD10CM_RE, icd10cm_dotted

log = logging.getLogger(__name__)

TABLE_FORMAT = 1  # bump when the cached table's shape changes

Entries = dict[str, tuple[bool, str]]  # undotted code -> (billable, description)


@dataclass(frozen=True)
class Edition:
    """One yearly ICD-10-CM set and the dates of service it covers (inclusive)."""

    version: str
    valid_from: date
    valid_to: date
    source: Callable[[], Entries] = field(compare=False, repr=False,
                                          default=lambda: {})  # noqa: E731
    cache_key: str = ""  # non-empty: the built table may be cached on disk under this key

    def covers(self, date_of_service: date) -> bool:
        return self.valid_from <= date_of_service <= self.valid_to


def fiscal_year(year: int) -> tuple[date, date]:
    """Dates of service of ICD-10-CM fiscal year ``year`` (1 Oct year-1 .. 30 Sep year)."""
    return date(year - 1, 10, 1), date(year, 9, 30)


# ---------------------------------------------------------------- sources
def packaged_entries() -> Entries:
    """Every code of the set shipped in ``simple-icd-10-cm`` (imported here: ~2.5 s)."""
    import simple_icd_10_cm as lib  # noqa: PLC0415 - deliberately lazy

    entries: Entries = {}
    for dotted in lib.get_all_codes(with_dots=True):
        code = dotted.replace(".", "")
        if not ICD10CM_RE.match(code):  # chapters ("1") and blocks ("A00-A09")
            continue
        entries[code] = (bool(lib.is_leaf(dotted)), lib.get_description(dotted))
    return entries


def _packaged_fingerprint() -> str:
    try:
        import importlib.metadata as md

        version = md.version("simple-icd-10-cm")
        files = [f for f in (md.files("simple-icd-10-cm") or []) if str(f).endswith(".xml")]
        size = sum(os.path.getsize(str(f.locate())) for f in files)
    except Exception:  # pragma: no cover - metadata missing: do not cache
        return ""
    return f"simple-icd-10-cm-{version}-{size}"


_ORDER_LINE = re.compile(r"^(\d{5}) ([0-9A-Z]{3,7})\s+([01]) (.*)$")


def read_order_file(path: Path | str) -> Entries:
    """Read a CMS ICD-10-CM order file (``icd10cm_order_YYYY.txt``, "Code Descriptions in
    Tabular Order"). Fixed width, one code per line:

    ====== ===== ===========================================================
    column width  content
    ====== ===== ===========================================================
    1-5    5     order number, zero-padded
    7-13   7     code, no dot, left-justified
    15     1     1 = billable (valid for HIPAA transactions), 0 = header
    17-76  60    short description
    78-    ...   long description (the one kept)
    ====== ===== ===========================================================
    """
    path = Path(path)
    entries: Entries = {}
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, raw in enumerate(fh, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            m = _ORDER_LINE.match(line)
            if m is None:
                raise InvalidValue("icd10cm_order_file", "icd10cm_file.row",
                                   f"icd10cm_order_file: {path.name} line {n} is not in the CMS "
                                   "order-file layout (order, code, 0/1, descriptions)")
            code, flag, rest = m.group(2), m.group(3), m.group(4)
            # rest = short description padded to 60, a space, then the long description
            long = rest[61:].strip() if len(rest) > 61 else ""
            entries[code] = (flag == "1", long or rest[:60].strip())
    return entries


def order_file_edition(spec: str) -> Edition:
    """An edition from ``"path"`` (fiscal year from a 20YY in the file name) or
    ``"FY2027=path"``."""
    label, _, rest = spec.partition("=")
    if rest and re.fullmatch(r"FY\d{4}", label.strip().upper()):
        year, path = int(label.strip()[2:]), Path(rest.strip())
    else:
        path = Path(spec.strip())
        found = re.findall(r"20\d\d", path.name)
        if not found:
            raise InvalidValue("icd10cm_order_files", "icd10cm_file.year",
                               f"icd10cm_order_files: cannot tell the fiscal year of {path.name}; "
                               "write it as FY2027=path")
        year = int(found[-1])
    start, end = fiscal_year(year)
    return Edition(f"ICD-10-CM FY{year} ({path.name})", start, end,
                   lambda: read_order_file(path))


# The April 1, 2026 update is the last release of FY2026 (valid for discharges/services
# from 1 Oct 2025 to 30 Sep 2026). The package ships one combined list, so codes new in the
# April update (e.g. QA0.0101) are not told apart from October codes.
FY2026 = Edition("ICD-10-CM FY2026 (April 1, 2026 update)", date(2025, 10, 1),
                 date(2026, 9, 30), packaged_entries, cache_key="packaged-fy2026")


# ---------------------------------------------------------------- one loaded edition
class CodeTable:
    """One edition's codes in memory: a dict for lookups, sorted keys for "did you mean"."""

    def __init__(self, entries: Entries) -> None:
        self.entries = entries
        self._sorted: list[str] | None = None
        self.verdicts: dict[str, CodeVerdict] = {}  # answers for known codes, built on demand

    def __len__(self) -> int:
        return len(self.entries)

    def billable_under(self, prefix: str, limit: int = 4) -> list[str]:
        """The first billable codes that extend ``prefix`` (undotted)."""
        if self._sorted is None:
            self._sorted = sorted(self.entries)
        keys = self._sorted
        out = []
        i = bisect.bisect_right(keys, prefix)
        while i < len(keys) and keys[i].startswith(prefix) and len(out) < limit:
            if self.entries[keys[i]][0]:
                out.append(keys[i])
            i += 1
        return out


def _cache_dir() -> Path | None:
    configured = os.environ.get("LEDGER_CODES_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    try:
        from ledger.config import get_settings

        return get_settings().data_dir / "codes-cache"
    except Exception:  # pragma: no cover - settings unusable: no cache
        return None


def _cached_load(edition: Edition) -> Entries:
    fingerprint = _packaged_fingerprint() if edition.cache_key.startswith("packaged") else ""
    directory = _cache_dir() if fingerprint else None
    if directory is None:
        return edition.source()
    digest = hashlib.sha256(f"{TABLE_FORMAT}|{edition.version}|{fingerprint}".encode())
    path = directory / f"icd10cm-{edition.cache_key}-{digest.hexdigest()[:12]}.json"
    try:
        raw = orjson.loads(path.read_bytes())
        return {code: (bool(v[0]), v[1]) for code, v in raw.items()}
    except (OSError, orjson.JSONDecodeError, TypeError, IndexError, AttributeError):
        pass
    entries = edition.source()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps(entries))
        os.replace(tmp, path)
    except OSError as exc:  # a read-only data dir only costs speed
        log.info("ICD-10-CM table not cached (%s)", type(exc).__name__)
    return entries


# ---------------------------------------------------------------- the code set
class ICD10CMCodeSet:
    """Implements ``ledger.domain.codeset.DiagnosisCodeSet`` over one or more editions.

    ``editions`` are tried in order for a date of service; the first that covers it decides.
    """

    def __init__(self, editions: Iterable[Edition] = (FY2026,), *, cache: bool = True) -> None:
        self.editions = tuple(editions)
        self.cache = cache
        self._tables: dict[str, CodeTable] = {}
        self._lock = threading.Lock()

    def table(self, edition: Edition) -> CodeTable:
        table = self._tables.get(edition.version)
        if table is None:
            with self._lock:
                table = self._tables.get(edition.version)
                if table is None:
                    entries = _cached_load(edition) if self.cache else edition.source()
                    table = CodeTable(entries)
                    self._tables[edition.version] = table
        return table

    def load(self) -> None:
        """Load every edition now (e.g. at service start) instead of on first lookup."""
        for edition in self.editions:
            self.table(edition)

    def edition_for(self, date_of_service: date) -> Edition | None:
        for edition in self.editions:
            if edition.covers(date_of_service):
                return edition
        return None

    def latest(self) -> Edition:
        return max(self.editions, key=lambda e: e.valid_to)

    def describe(self, code: str, on: date | None = None) -> tuple[bool, bool, str]:
        """(known, billable, description) for a code with or without its dot, in the edition
        covering ``on`` (default: the latest edition)."""
        edition = self.edition_for(on) if on else self.latest()
        if edition is None:
            return False, False, ""
        entry = self.table(edition).entries.get(code.replace(".", "").strip().upper())
        if entry is None:
            return False, False, ""
        return True, entry[0], entry[1]

    def check(self, code: str, date_of_service: date) -> CodeVerdict:
        undotted = code.replace(".", "").strip().upper()
        edition = self.edition_for(date_of_service)
        if edition is not None:
            known = self.table(edition).verdicts.get(undotted)
            if known is not None:  # the common case: one dict probe
                return known
        dotted = icd10cm_dotted(undotted)
        if not ICD10CM_RE.match(undotted):
            return CodeVerdict(undotted, False, "", "icd10cm.format",
                               f"'{code.strip()[:12]}' is not in ICD-10-CM format (a letter, "
                               "a digit, then up to 5 letters or digits, e.g. E11.9)")
        if edition is None:
            return CodeVerdict(
                undotted, False, "", "icd10cm.dos",
                f"no loaded ICD-10-CM code set covers the date of service {date_of_service}")
        table = self.table(edition)
        entry = table.entries.get(undotted)
        if entry is None:
            elsewhere = [e.version for e in self.editions
                         if e is not edition and undotted in self.table(e).entries]
            if elsewhere:
                return CodeVerdict(
                    undotted, False, edition.version, "icd10cm.dos",
                    f"'{dotted}' is not valid on the date of service {date_of_service} "
                    f"({edition.version}); it exists in {', '.join(elsewhere)}")
            return CodeVerdict(undotted, False, edition.version, "icd10cm.unknown",
                               f"'{dotted}' is not an ICD-10-CM code in {edition.version}")
        billable, description = entry
        if not billable:
            verdict = CodeVerdict(undotted, False, edition.version, "icd10cm.not_billable",
                                  _not_billable_message(undotted, table), description)
        else:
            verdict = CodeVerdict(undotted, True, edition.version, "", "", description)
        table.verdicts[undotted] = verdict  # bounded by the codes of the edition
        return verdict


def _not_billable_message(code: str, table: CodeTable) -> str:
    dotted = icd10cm_dotted(code)
    kind = "a category" if len(code) == 3 else "a subcategory"
    examples = table.billable_under(code)
    shown = ", ".join(icd10cm_dotted(c) for c in examples)
    if examples and len(code) == 6 and all(len(c) == 7 for c in examples):
        need = f"it needs its 7th character ({shown}, …)"
    elif examples and all(len(c) == 7 and "X" in c[len(code):6] for c in examples):
        need = f"it needs the X placeholder and a 7th character ({shown}, …)"
    elif examples:
        need = f"it needs more characters ({shown}, …)"
    else:
        need = "it has no billable code under it"
    return f"'{dotted}' is {kind}, not a billable code: {need}"


# ---------------------------------------------------------------- the configured set
_default: ICD10CMCodeSet | None = None
_default_lock = threading.Lock()


def code_set_from_specs(order_files: str) -> ICD10CMCodeSet:
    """The shipped edition plus the CMS order files in ``order_files`` (``os.pathsep``-
    separated specs, see ``order_file_edition``); configured files come first, so a file for
    FY2026 overrides the shipped FY2026 set."""
    specs = [s for s in order_files.split(os.pathsep) if s.strip()] if order_files else []
    return ICD10CMCodeSet((*[order_file_edition(s) for s in specs], FY2026))


def default_code_set() -> ICD10CMCodeSet:
    """The process-wide ICD-10-CM set (editions from settings; loaded on first lookup)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                from ledger.config import get_settings

                specs = getattr(get_settings(), "icd10cm_order_files", "") or ""
                _default = code_set_from_specs(specs)
    return _default
