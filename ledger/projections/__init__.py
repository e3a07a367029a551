"""Read models built from the ledger's event log: current claims, balances and the work
queue (``claims``), the audit trail (``audit``) and diagnosis trends with code revisions
(``trends``). Each is exactly-once: its view change and its tracking row commit together.

Start with ``ledger.projections.runner.ProjectionRunner``; read with
``ledger.projections.queries``.
"""

PROJECTION_NAMES = ("claims", "audit", "trends")
