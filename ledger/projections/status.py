"""Where each projection stands: tracked position, log head, events behind, last page, last
error and a state (ok, behind, stalled, failing). Read by `ledger projections status` and by
the service's readiness check."""

from __future__ import annotations

from typing import Any

from ledger.projections import PROJECTION_NAMES


def status_rows(url: str, stall_after: float = 30.0) -> list[dict[str, Any]]:
    """Per projection: tracked position, log head, events behind, last page, last error and a
    state (ok, behind, stalled, failing)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return status_rows_on(conn, stall_after)


def status_rows_on(conn: Any, stall_after: float = 30.0) -> list[dict[str, Any]]:
    """``status_rows`` on an open (autocommit) connection."""
    from ledger.projections.queries import projection_positions

    head = conn.execute("SELECT COALESCE(max(notification_id), 0) FROM ledger_events"
                        ).fetchone()[0]  # type: ignore[index]
    positions = projection_positions(conn)
    info = {r[0]: r[1:] for r in conn.execute(
        "SELECT name, last_page_at, last_error, last_error_at, rebuilt_at, runner, "
        "extract(epoch FROM now() - last_page_at), last_error_position, last_error_event "
        "FROM projection_status")}
    rows = []
    for name in PROJECTION_NAMES:
        pos = positions.get(name, 0)
        behind = conn.execute("SELECT count(*) FROM ledger_events WHERE notification_id > %s",
                              (pos,)).fetchone()[0] if pos < head else 0  # type: ignore
        last_page, error, error_at, rebuilt, runner, age, error_pos, error_event = \
            info.get(name, (None,) * 8)
        if behind == 0:
            state = "ok"
        elif error and (last_page is None or (error_at and error_at >= last_page)):
            state = "failing"
        elif age is None or float(age) > stall_after:
            state = "stalled"
        else:
            state = "behind"
        rows.append({"projection": name, "position": pos, "head": int(head),
                     "behind": int(behind), "state": state,
                     "last_page_at": last_page.isoformat() if last_page else None,
                     "last_error": error,
                     "failed_at_position": error_pos if state == "failing" else None,
                     "failed_event": error_event if state == "failing" else None,
                     "rebuilt_at": rebuilt.isoformat() if rebuilt
                     else None, "runner": runner})
    return rows
