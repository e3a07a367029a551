"""Procedure modifiers the ledger knows by name.

Numeric modifiers are CPT modifiers (© AMA): only the code and a plain-words purpose are
given here. Alphanumeric ones are HCPCS Level II modifiers (CMS, public); a loaded CMS HCPCS
file (``LEDGER_HCPCS_FILE``) supplies the full list with CMS's own descriptions.
"""

from __future__ import annotations

VERSION = "ledger built-in modifier list"

CPT_MODIFIERS: dict[str, str] = {
    "22": "increased procedural services",
    "24": "unrelated E/M during a postoperative period",
    "25": "significant, separately identifiable E/M on the day of a procedure",
    "26": "professional component",
    "50": "bilateral procedure",
    "51": "multiple procedures",
    "52": "reduced services",
    "53": "discontinued procedure",
    "57": "decision for surgery",
    "58": "staged or related procedure in the postoperative period",
    "59": "distinct procedural service",
    "76": "repeat procedure by the same physician",
    "77": "repeat procedure by another physician",
    "78": "unplanned return to the operating room",
    "79": "unrelated procedure in the postoperative period",
    "80": "assistant surgeon",
    "91": "repeat clinical diagnostic laboratory test",
    "95": "synchronous telemedicine service",
}

HCPCS_MODIFIERS: dict[str, str] = {
    "GA": "waiver of liability statement issued as required by payer policy",
    "GN": "services delivered under an outpatient speech-language pathology plan of care",
    "GO": "services delivered under an outpatient occupational therapy plan of care",
    "GP": "services delivered under an outpatient physical therapy plan of care",
    "GT": "via interactive audio and video telecommunication systems",
    "GY": "item or service statutorily excluded or not a contract benefit",
    "GZ": "item or service expected to be denied as not reasonable and necessary",
    "JW": "drug amount discarded/not administered to any patient",
    "JZ": "zero drug amount discarded/not administered to any patient",
    "KX": "requirements specified in the medical policy have been met",
    "LT": "left side",
    "RT": "right side",
    "TC": "technical component",
    "XE": "separate encounter",
    "XP": "separate practitioner",
    "XS": "separate structure",
    "XU": "unusual non-overlapping service",
}
