"""ICD-10-CM from real data: the CMS/CDC April-2026 tabular list shipped by ``simple-icd-10-cm``.

The package parses its XML when imported (about 2 s), so it is imported on first use only and
then answers from memory. Each shipped set covers a range of dates of service (a fiscal year,
1 October to 30 September); a code is accepted only when a set covering the date of service
holds it as a billable leaf. Add later yearly sets to ``ICD10CMCodeSet.editions``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from types import ModuleType

from ledger.domain.codeset import CodeVerdict
from ledger.domain.values import ICD10CM_RE, icd10cm_dotted


@dataclass(frozen=True)
class Edition:
    version: str
    valid_from: date
    valid_to: date  # inclusive


# The April 1, 2026 update is the last release of FY2026 (valid for discharges/services
# from 1 Oct 2025 to 30 Sep 2026). Codes new in the April update are not distinguished from
# October codes: the package ships one combined list.
FY2026 = Edition("ICD-10-CM FY2026 (April 1, 2026 update)", date(2025, 10, 1), date(2026, 9, 30))


class ICD10CMCodeSet:
    """Implements ``ledger.domain.codeset.DiagnosisCodeSet`` over the shipped data."""

    def __init__(self, editions: tuple[Edition, ...] = (FY2026,)) -> None:
        self.editions = editions
        self._lib: ModuleType | None = None
        self._lock = threading.Lock()

    def _library(self) -> ModuleType:
        if self._lib is None:
            with self._lock:
                if self._lib is None:
                    import simple_icd_10_cm  # noqa: PLC0415 - deliberately lazy (2 s load)

                    self._lib = simple_icd_10_cm
        return self._lib

    def load(self) -> None:
        """Load the data now (e.g. at service start) instead of on the first lookup."""
        self._library()

    def edition_for(self, date_of_service: date) -> Edition | None:
        for edition in self.editions:
            if edition.valid_from <= date_of_service <= edition.valid_to:
                return edition
        return None

    def describe(self, code: str) -> tuple[bool, bool, str]:
        """(known, billable, description) for a code with or without its dot."""
        lib = self._library()
        dotted = icd10cm_dotted(code.upper())
        if not lib.is_valid_item(dotted):
            return False, False, ""
        return True, bool(lib.is_leaf(dotted)), lib.get_description(dotted)

    def check(self, code: str, date_of_service: date) -> CodeVerdict:
        undotted = code.replace(".", "").upper()
        dotted = icd10cm_dotted(undotted)
        if not ICD10CM_RE.match(undotted):
            return CodeVerdict(undotted, False, "", "icd10cm.format",
                               f"'{dotted}' is not in ICD-10-CM format")
        edition = self.edition_for(date_of_service)
        if edition is None:
            return CodeVerdict(
                undotted, False, "", "icd10cm.dos",
                f"no loaded ICD-10-CM code set covers the date of service {date_of_service}",
            )
        known, billable, description = self.describe(undotted)
        if not known:
            return CodeVerdict(undotted, False, edition.version, "icd10cm.unknown",
                               f"'{dotted}' is not an ICD-10-CM code in {edition.version}")
        if not billable:
            return CodeVerdict(
                undotted, False, edition.version, "icd10cm.not_billable",
                f"'{dotted}' is a category or subcategory, not a billable code: it needs more "
                "characters (a billable leaf)",
                description,
            )
        return CodeVerdict(undotted, True, edition.version, "", "", description)


_default: ICD10CMCodeSet | None = None


def default_code_set() -> ICD10CMCodeSet:
    global _default
    if _default is None:
        _default = ICD10CMCodeSet()
    return _default
