"""The interface through which the domain asks whether a diagnosis code may be billed.

The domain stays free of I/O: the application hands it an object with this shape
(the real ICD-10-CM set from ``ledger.codes``, or a small fake in unit tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CodeVerdict:
    code: str
    billable: bool
    version: str  # the code-set version the code was checked against
    rule: str = ""  # why not billable: icd10cm.unknown / icd10cm.not_billable / icd10cm.dos
    message: str = ""
    description: str = ""


class DiagnosisCodeSet(Protocol):
    def check(self, code: str, date_of_service: date) -> CodeVerdict:
        """Verdict for an undotted, upper-case ICD-10-CM code on a date of service."""
        ...
