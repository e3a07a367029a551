"""ICD-10-CM from real data, one table per yearly edition, chosen by the date of service.

An ``Edition`` names a code-set version, the dates of service it covers, and where its codes
come from. Shipped (see ``SHIPPED`` and ``ledger/codes/data/PROVENANCE.md``):

- FY2026 April 1, 2026 update (services 1 Apr – 30 Sep 2026): the CMS/CDC April-2026 tabular
  list inside the ``simple-icd-10-cm`` package;
- FY2026 as of 1 Oct 2025 (services 1 Oct 2025 – 31 Mar 2026): the same table without the
  codes the April update added (category QA0), which are refused for those dates;
- FY2025 (services 1 Oct 2024 – 30 Sep 2025): the April-2025 release, shipped inside this
  package as a gzipped code list (``data/icd10cm_fy2025.tsv.gz``).

Further yearly sets are read from the CMS "order" file (``icd10cm_order_YYYY.txt``, see
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
    # Codes of the table that a later update added: (code prefixes, valid from, update name).
    # Before that date they are refused (e.g. the April update's codes in October-March).
    later_additions: tuple[tuple[tuple[str, ...], date, str], ...] = ()

    @property
    def table_key(self) -> str:
        """Editions with the same key share one loaded table."""
        return self.cache_key or self.version

    def covers(self, date_of_service: date) -> bool:
        return self.valid_from <= date_of_service <= self.valid_to


DATA_DIR = Path(__file__).resolve().parent / "data"


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


def read_code_list(path: Path | str) -> Entries:
    """Read a code list in the shipped layout: UTF-8 (gzipped when the name ends in .gz), one
    code per line, ``code<TAB>1|0<TAB>description`` (1 = billable), no dots, ``#`` comments."""
    import gzip  # noqa: PLC0415

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    entries: Entries = {}
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip() or raw.startswith("#"):
                continue
            parts = raw.rstrip("\r\n").split("\t", 2)
            if len(parts) != 3 or parts[1] not in ("0", "1") or not ICD10CM_RE.match(parts[0]):
                raise InvalidValue("icd10cm_code_list", "icd10cm_file.row",
                                   f"icd10cm_code_list: {path.name} line {n} is not "
                                   "code<TAB>0|1<TAB>description")
            entries[parts[0]] = (parts[1] == "1", parts[2])
    return entries


def write_code_list(entries: Entries, path: Path | str, header: str = "") -> None:
    """Write ``entries`` in the layout ``read_code_list`` reads (gzipped for .gz, reproducible:
    sorted, no timestamp in the gzip header)."""
    import gzip  # noqa: PLC0415

    lines = [f"# {h}\n" for h in header.splitlines()]
    lines += [f"{code}\t{int(billable)}\t{text}\n"
              for code, (billable, text) in sorted(entries.items())]
    data = "".join(lines).encode()
    path = Path(path)
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=9, mtime=0)
    path.write_bytes(data)


def tabular_entries(code_list: Path | str, tabular_xml: Path | str) -> Entries:
    """Every code of a CMS/CDC release given as the two files ``simple-icd-10-cm`` reads (its
    ``change_version``): the plain code list and the tabular XML. Switches the library's
    process-wide data: run it in a build step (``python -m ledger.codes.icd10cm``)."""
    import simple_icd_10_cm as lib  # noqa: PLC0415

    lib.change_version(str(code_list), str(tabular_xml))
    return packaged_entries()


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


# The April 1, 2026 update is the last release of FY2026: it applies to services from
# 1 Apr 2026 to 30 Sep 2026. It added category QA0 (genetic conditions, e.g. QA0.0101) to the
# October 2025 set; services from 1 Oct 2025 to 31 Mar 2026 use the same table without them.
APRIL_2026_ADDITIONS = ("QA0",)
FY2026 = Edition("ICD-10-CM FY2026 (April 1, 2026 update)", date(2026, 4, 1),
                 date(2026, 9, 30), packaged_entries, cache_key="packaged-fy2026")
FY2026_OCTOBER = Edition(
    "ICD-10-CM FY2026 (October 1, 2025)", date(2025, 10, 1), date(2026, 3, 31),
    packaged_entries, cache_key="packaged-fy2026",
    later_additions=((APRIL_2026_ADDITIONS, date(2026, 4, 1), "the April 1, 2026 update"),))
FY2025_FILE = DATA_DIR / "icd10cm_fy2025.tsv.gz"
FY2025 = Edition("ICD-10-CM FY2025 (April 1, 2025 release)", *fiscal_year(2025),
                 lambda: read_code_list(FY2025_FILE), cache_key="shipped-fy2025")
SHIPPED = (FY2026, FY2026_OCTOBER, FY2025)  # newest first


# ---------------------------------------------------------------- one loaded edition
class CodeTable:
    """One edition's codes in memory: a dict for lookups, sorted keys for "did you mean"."""

    def __init__(self, entries: Entries) -> None:
        self.entries = entries
        self._sorted: list[str] | None = None

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
    try:
        from ledger.config import get_settings

        settings = get_settings()
        configured = settings.codes_cache_dir
        if configured is not None:
            return Path(configured) if configured else None
        return settings.data_dir / "codes-cache"
    except Exception:  # pragma: no cover - settings unusable: no cache
        return None


def _cached_load(edition: Edition) -> Entries:
    # Only the package's table is worth caching (its XML takes seconds to parse); the shipped
    # code lists load in a fraction of a second.
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

    def __init__(self, editions: Iterable[Edition] = SHIPPED, *, cache: bool = True) -> None:
        self.editions = tuple(editions)
        self.cache = cache
        self._tables: dict[str, CodeTable] = {}
        # answers for known codes per edition (editions may share a table, not answers)
        self._verdicts: dict[str, dict[str, CodeVerdict]] = {e.version: {}
                                                              for e in self.editions}
        self._lock = threading.Lock()

    def table(self, edition: Edition) -> CodeTable:
        table = self._tables.get(edition.table_key)
        if table is None:
            with self._lock:
                table = self._tables.get(edition.table_key)
                if table is None:
                    entries = _cached_load(edition) if self.cache else edition.source()
                    table = CodeTable(entries)
                    self._tables[edition.table_key] = table
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

    def missing_edition_message(self, date_of_service: date) -> str:
        """Why no edition answers for ``date_of_service``, and how to add the one it needs."""
        year = date_of_service.year + (1 if date_of_service.month >= 10 else 0)
        start, end = fiscal_year(year)
        loaded = ", ".join(sorted({e.version.split(" (")[0].removeprefix("ICD-10-CM ")
                                   for e in self.editions}))
        return (f"no loaded ICD-10-CM code set covers the date of service {date_of_service}: "
                f"it needs ICD-10-CM FY{year} (services {start} to {end}), which is not "
                f"loaded (loaded: {loaded}). Add it with the CMS/CDC order file: "
                f"LEDGER_ICD10CM_ORDER_FILES=FY{year}=/path/to/icd10cm_order_{year}.txt")

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
            known = self._verdicts[edition.version].get(undotted)
            if known is not None:  # the common case: one dict probe
                return known
        dotted = icd10cm_dotted(undotted)
        if not ICD10CM_RE.match(undotted):
            return CodeVerdict(undotted, False, "", "icd10cm.format",
                               f"'{code.strip()[:12]}' is not in ICD-10-CM format (a letter, "
                               "a digit, then up to 5 letters or digits, e.g. E11.9)")
        if edition is None:
            return CodeVerdict(undotted, False, "", "icd10cm.dos",
                               self.missing_edition_message(date_of_service))
        for prefixes, valid_from, update in edition.later_additions:
            if undotted.startswith(prefixes):
                return CodeVerdict(
                    undotted, False, edition.version, "icd10cm.dos",
                    f"'{dotted}' is not valid on the date of service {date_of_service} "
                    f"({edition.version}): {update} added it, for services from {valid_from}")
        table = self.table(edition)
        entry = table.entries.get(undotted)
        if entry is None:
            elsewhere = [e.version for e in self.editions
                         if e.table_key != edition.table_key and not any(
                             undotted.startswith(p) for p, _, _ in e.later_additions)
                         and undotted in self.table(e).entries]
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
        self._verdicts[edition.version][undotted] = verdict  # bounded by the edition's codes
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
    """The shipped editions plus the CMS order files in ``order_files`` (``os.pathsep``-
    separated specs, see ``order_file_edition``); configured files come first, so a file for
    FY2026 overrides the shipped FY2026 sets."""
    specs = [s for s in order_files.split(os.pathsep) if s.strip()] if order_files else []
    return ICD10CMCodeSet((*[order_file_edition(s) for s in specs], *SHIPPED))


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


# ---------------------------------------------------------------- building a shipped list
def main(argv: list[str] | None = None) -> None:
    """``python -m ledger.codes.icd10cm CODE_LIST TABULAR_XML OUT.tsv.gz [HEADER]``: turn a
    release's two files (as ``simple-icd-10-cm`` ships them) into a shipped code list."""
    import sys  # noqa: PLC0415

    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (3, 4):
        raise SystemExit(main.__doc__)
    entries = tabular_entries(args[0], args[1])
    write_code_list(entries, args[2], args[3] if len(args) == 4 else "")
    print(f"{args[2]}: {len(entries)} codes, {sum(b for b, _ in entries.values())} billable")


if __name__ == "__main__":
    main()
