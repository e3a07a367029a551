"""Descriptions shown beside adjustment reason codes (CARC, owned by X12) and remark codes
(RARC, CMS) on the workbench. Deployment data: this is a short excerpt of the codes the ledger's
scenarios use; an unknown code is shown as the code alone."""

from __future__ import annotations

CARC = {
    "1": "Deductible amount",
    "2": "Coinsurance amount",
    "3": "Co-payment amount",
    "16": "Claim/service lacks information needed for adjudication",
    "18": "Exact duplicate claim/service",
    "23": "Impact of prior payer(s) adjudication",
    "29": "Time limit for filing has expired",
    "45": "Charge exceeds fee schedule/maximum allowable or contracted/legislated fee "
          "arrangement",
    "50": "Non-covered: not deemed a medical necessity by the payer",
    "96": "Non-covered charge(s)",
    "97": "Benefit included in the payment/allowance for another service already adjudicated",
    "197": "Precertification/authorization/notification absent",
    "253": "Sequestration - reduction in federal payment",
}
RARC = {
    "N115": "Decision based on a Local Coverage Determination (LCD)",
    "M15": "Separately billed services/tests have been bundled",
    "N130": "Consult plan benefit documents/guidelines for coverage information",
    "MA130": "Claim contains incomplete/invalid information; no appeal rights",
}
GROUPS = {"CO": "Contractual obligation", "OA": "Other adjustment", "PI": "Payer initiated",
          "PR": "Patient responsibility"}


def carc_text(code: str) -> str:
    return CARC.get(code, "")


def rarc_text(code: str) -> str:
    return RARC.get(code, "")
