"""Load many encounters at once: their latest snapshots and the events after them, with one
query per 1,000 encounters, replayed through the application's own mapper and each event's
``mutate`` (what the library's ``project_aggregate`` does, without its per-event runtime
Protocol check). ``get_encounter`` costs two round trips per encounter; the group-commit
writer (a cold batch) and the 835 importer (every encounter a file names) load here instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg import sql
from psycopg.rows import tuple_row

from ledger.domain.encounter import Encounter

CHUNK = 1000


def table_identifier(recorder: Any) -> sql.Composable:
    """The recorder's events table, schema-qualified when it has a schema."""
    name = recorder.events_table_name
    schema = getattr(getattr(recorder, "datastore", None), "schema", "") or ""
    return sql.Identifier(schema, name) if schema else sql.Identifier(name)


def _query(app: Any) -> sql.Composed:
    events = table_identifier(app.recorder)
    snapshots = getattr(app, "snapshots", None)
    if snapshots is None:
        return sql.SQL(
            "SELECT 1, originator_id, originator_version, topic, state FROM {} "
            "WHERE originator_id = ANY(%(ids)b) ORDER BY 2, 3").format(events)
    # k = 0: the newest snapshot; k = 1: the events after it (all of them without one)
    return sql.SQL(
        "WITH snap AS (SELECT DISTINCT ON (originator_id) originator_id, originator_version,"
        " topic, state FROM {snapshots} WHERE originator_id = ANY(%(ids)b)"
        " ORDER BY originator_id, originator_version DESC)"
        " SELECT 0 AS k, originator_id, originator_version, topic, state FROM snap"
        " UNION ALL SELECT 1, e.originator_id, e.originator_version, e.topic, e.state"
        " FROM {events} e LEFT JOIN snap s ON s.originator_id = e.originator_id"
        " WHERE e.originator_id = ANY(%(ids)b)"
        " AND e.originator_version > COALESCE(s.originator_version, 0)"
        " ORDER BY 2, 1, 3").format(snapshots=table_identifier(snapshots.recorder), events=events)


def load_encounters(app: Any, conn: Any, ids: Iterable[UUID]) -> dict[UUID, Encounter]:
    """The encounters ``ids`` as ``app.get_encounter`` rebuilds them, read through ``conn``;
    an id that is no encounter in the store is left out (``get_encounter`` says why)."""
    wanted = list(dict.fromkeys(ids))
    out: dict[UUID, Encounter] = {}
    if not wanted:
        return out
    query = _query(app)
    to_domain_event = app.mapper.to_domain_event
    for i in range(0, len(wanted), CHUNK):
        with conn.cursor(row_factory=tuple_row) as cur:
            rows = cur.execute(query, {"ids": wanted[i:i + CHUNK]}).fetchall()
        current: Any = None
        enc: Any = None
        for _, oid, version, topic, state in rows:
            if oid != current:
                if isinstance(enc, Encounter):
                    out[current] = enc
                current, enc = oid, None
            enc = to_domain_event(StoredEvent(oid, version, topic, bytes(state))).mutate(enc)
        if isinstance(enc, Encounter):
            out[current] = enc
    return out
