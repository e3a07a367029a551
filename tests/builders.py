"""Test builders: the demo's encounter builders and scenarios (``ledger/demo/scenarios.py``,
one copy, shared with ``ledger serve --demo``) and the actors only the tests use.

    from tests import builders as s
    eid = s.open_encounter(app); s.code(app, eid, "E11.9"); s.line(app, eid, "99214", ...)
"""

from __future__ import annotations

from ledger.demo.scenarios import (
    BILLER,
    CODER_A,
    DOS,
    NPI,
    adj,
    code,
    create_scrub_submit,
    line,
    lr,
    m,
    open_encounter,
    parties,
    post,
    remit,
    scenario_1,
    scenario_2,
    scenario_3_appeal_paid,
    scenario_3_denial,
    scenario_8_inpatient,
)
from ledger.domain.model import Actor

CODER_B = Actor("coder-b", "coder")  # a second coder (revisions, concurrent edits)
ADVOCATE = Actor("advocate-1", "advocate")

__all__ = [
    "ADVOCATE", "BILLER", "CODER_A", "CODER_B", "DOS", "NPI", "adj", "code",
    "create_scrub_submit", "line", "lr", "m", "open_encounter", "parties", "post", "remit",
    "scenario_1", "scenario_2", "scenario_3_appeal_paid", "scenario_3_denial",
    "scenario_8_inpatient",
]
