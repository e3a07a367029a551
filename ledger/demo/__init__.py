"""``ledger serve --demo``: the sample encounters of ``ledger/demo/scenarios.py`` (synthetic,
no PHI), loaded once, into an empty ledger only; the demo users (one per role) and what to try
next."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg

from ledger.application.service import LedgerApplication
from ledger.config import get_settings
from ledger.demo import scenarios
from ledger.domain.model import Actor
from ledger.persistence.database import eventsourcing_env

DEMO_USERS = (("demo-coder", "coder"), ("demo-biller", "biller"), ("demo-auditor", "auditor"),
              ("demo-advocate", "advocate"), ("demo-admin", "admin"))
DEMO_ADVOCATE = Actor("demo-advocate", "advocate")
DEMO_BILLER = Actor("demo-biller", "biller")
DISPUTE_ID = "D-DEMO-1"


@dataclass
class DemoLoad:
    loaded: list[tuple[str, UUID]] = field(default_factory=list)  # (what it shows, encounter)
    skipped: str = ""  # why nothing was loaded

    def describe(self) -> list[str]:
        if not self.loaded:
            return [f"demo: nothing loaded: {self.skipped}"]
        return [f"demo: loaded {len(self.loaded)} sample encounters:",
                *(f"  {eid}  {what}" for what, eid in self.loaded)]


def demo_users(url: str) -> dict[str, str]:
    """Create the demo users with fresh tokens (only those missing); returns user -> token."""
    from ledger.application.idempotency import new_pool
    from ledger.auth.tokens import AuthStore
    from ledger.domain.errors import RuleViolation

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


def load_demo(url: str) -> DemoLoad:
    """Load the domain scenarios and a disputed charge into an EMPTY store (a demo never
    mixes with real data); say what was loaded, or why nothing was."""
    with psycopg.connect(url) as conn:
        events = conn.execute("SELECT count(*) FROM ledger_events").fetchone()[0]
    if events:
        return DemoLoad(skipped=f"the ledger already holds {events} events (the demo loads "
                        "only into an empty one: start with another LEDGER_DATA_DIR or "
                        "database to see it)")
    app = LedgerApplication(env=eventsourcing_env(url, get_settings()))
    out = DemoLoad()
    try:
        clean = scenarios.scenario_1(app)
        out.loaded.append(("clean claim S1-0001: paid, copay, CO-45 contractual adjustments",
                           clean))
        out.loaded.append(("secondary payer: crossover and forwarded patient responsibility",
                           scenarios.scenario_2(app)))
        eid, line = scenarios.scenario_3_denial(app)
        scenarios.scenario_3_appeal_paid(app, eid, line)
        out.loaded.append(("denial, appeal filed and overturned, then paid", eid))
        out.loaded.append(("inpatient (institutional) claim", scenarios.scenario_8_inpatient(app)))
        # A disputed charge: billing staff grant the demo advocate access to this encounter
        # (on the patient's authorization, for a year), and the advocate opens the dispute;
        # the advocate reads this encounter and no other.
        now = datetime.now(UTC)
        app.execute(clean, "grant_access", actor=DEMO_BILLER, grant_id="G-DEMO-1",
                    grantee_id=DEMO_ADVOCATE.id, authorization_ref="AUTH-DEMO-1",
                    valid_until=now + timedelta(days=365), at=now,
                    reason="patient authorized the advocate")
        app.execute(clean, "open_dispute", actor=DEMO_ADVOCATE, dispute_id=DISPUTE_ID,
                    line_nos=[1], category="charge", at=now,
                    description="Patient questions the office-visit level billed on line 1")
        out.loaded.append((f"dispute {DISPUTE_ID} on S1-0001 line 1, assigned to "
                           "demo-advocate", clean))
    finally:
        app.close()
    return out


def next_steps(base: str, tokens: dict[str, str]) -> list[str]:
    """What to try next, with the tokens just created (or a way to get new ones)."""
    biller = tokens.get("demo-biller", "<demo-biller token>")
    advocate = tokens.get("demo-advocate", "<demo-advocate token>")
    auditor = tokens.get("demo-auditor", "<demo-auditor token>")
    lines = ["try next:",
             f"  curl -H 'Authorization: Bearer {biller}' {base}/claims",
             f"  curl -H 'Authorization: Bearer {advocate}' {base}/queues/disputes-denials",
             f"  curl -H 'Authorization: Bearer {auditor}' {base}/audit/verify",
             f"  open {base}/docs (Authorize with a token), scrape {base}/metrics",
             "  ledger projections status; ledger verify; ledger db backup demo.dump"]
    if not tokens:
        lines.append("  (the demo users exist already; new token: ledger tokens create "
                     "demo-biller)")
    return lines
