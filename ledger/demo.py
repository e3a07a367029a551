"""Sample encounters for ``ledger serve --demo`` (synthetic, no PHI), loaded once."""

from __future__ import annotations

import psycopg

from ledger import samples
from ledger.application import LedgerApplication
from ledger.config import get_settings
from ledger.database import eventsourcing_env

DEMO_USERS = (("demo-coder", "coder"), ("demo-biller", "biller"), ("demo-auditor", "auditor"),
              ("demo-advocate", "advocate"), ("demo-admin", "admin"))


def demo_users(url: str) -> dict[str, str]:
    """Create the demo users with fresh tokens (only those missing); returns user -> token."""
    from ledger.auth import AuthStore
    from ledger.domain.errors import RuleViolation
    from ledger.idempotency import new_pool

    pool = new_pool(url, max_size=2)
    tokens: dict[str, str] = {}
    try:
        store = AuthStore(pool)
        for user, role in DEMO_USERS:
            try:
                store.create_user(user, role, created_by="demo")
            except RuleViolation:
                continue  # exists already: its token was printed when it was created
            tokens[user] = store.create_token(user, "demo")
    finally:
        pool.close()
    return tokens


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
