"""Sample encounters for ``ledger serve --demo`` (synthetic, no PHI), loaded once."""

from __future__ import annotations

import psycopg

from ledger import samples
from ledger.application import LedgerApplication
from ledger.config import get_settings
from ledger.database import eventsourcing_env


def load_demo(url: str) -> int:
    """Load the domain scenarios into an empty store; return how many encounters were added."""
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT EXISTS (SELECT 1 FROM ledger_events)").fetchone()[0]:
            return 0
    app = LedgerApplication(env=eventsourcing_env(url, get_settings()))
    try:
        samples.scenario_1(app)
        samples.scenario_2(app)
        eid, line = samples.scenario_3_denial(app)
        samples.scenario_3_appeal_paid(app, eid, line)
        samples.scenario_8_inpatient(app)
    finally:
        app.close()
    return 4
