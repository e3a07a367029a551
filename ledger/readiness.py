"""``GET /ready``: may this process take traffic? Yes when the database answers, every
migration is applied, and every projection is within the lag budget
(``LEDGER_READY_MAX_LAG`` events) and not failing. Otherwise 503 with the reasons."""

from __future__ import annotations

from typing import Any

import psycopg

from ledger.availability import DatabaseMonitor
from ledger.config import Settings
from ledger.persistence.migrate import discover


def readiness(monitor: DatabaseMonitor, pool: Any, settings: Settings,
              sealer: Any = None) -> dict[str, Any]:
    """The readiness report; ``sealing`` says what is not yet sealed or exported (the
    unsealed backlog), from this process's sealer and, when it answers, the database."""
    from ledger.audit.sealing import sealing_status
    from ledger.projections.status import status_rows_on

    if not monitor.available:
        return {"ready": False, "reasons": ["database unavailable"],
                "database": {"status": "unavailable", "reason": monitor.reason},
                "sealing": sealing_status(sealer)}
    reasons: list[str] = []
    try:
        with pool.connection() as conn:
            applied = {r[0] for r in conn.execute("SELECT version FROM ledger_migrations")}
            projections = status_rows_on(conn)
            sealing = sealing_status(sealer, conn)
    except psycopg.Error as exc:
        return {"ready": False, "reasons": [f"database unavailable ({type(exc).__name__})"],
                "database": {"status": "unavailable"}, "sealing": sealing_status(sealer)}
    pending = [m.version for m in discover() if m.version not in applied]
    if pending:
        reasons.append(f"migrations not applied: {', '.join(pending)}")
    for p in projections:
        if p["state"] == "failing":
            reasons.append(f"projection {p['projection']} failing at event "
                           f"{p['failed_at_position']} ({p['failed_event']}): {p['last_error']}")
        elif p["behind"] > settings.ready_max_lag:
            reasons.append(f"projection {p['projection']} {p['behind']} events behind "
                           f"(budget {settings.ready_max_lag})")
    return {"ready": not reasons, "reasons": reasons, "database": {"status": "ok"},
            "sealing": sealing,
            "migrations": {"applied": len(applied), "pending": pending},
            "projections": [{k: p[k] for k in ("projection", "position", "head", "behind",
                                               "state", "last_error", "failed_at_position",
                                               "failed_event")} for p in projections]}
