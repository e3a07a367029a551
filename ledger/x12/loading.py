"""Load many encounters at once: one query for their snapshots, one for their events
(per 1,000 encounters), replayed through the application's own mapper and each event's
``mutate`` (what the library's projector does). The repository's ``get`` costs two round
trips per encounter; posting a 20,000-claim remittance would spend most of its time there."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg import sql

from ledger.domain.encounter import Encounter
from ledger.domain.errors import NotFound

CHUNK = 1000


def _table(recorder: Any) -> sql.Composable:
    name = recorder.events_table_name
    schema = getattr(getattr(recorder, "datastore", None), "schema", "") or ""
    return sql.Identifier(schema, name) if schema else sql.Identifier(name)


def load_many(app: Any, conn: Any, ids: Iterable[UUID]) -> dict[UUID, Encounter]:
    wanted = list(dict.fromkeys(ids))
    out: dict[UUID, Encounter] = {}
    events_table = _table(app.recorder)
    snapshots = getattr(app, "snapshots", None)
    for i in range(0, len(wanted), CHUNK):
        chunk = wanted[i:i + CHUNK]
        snaps: dict[UUID, Any] = {}
        if snapshots is not None:
            rows = conn.execute(sql.SQL(
                "SELECT DISTINCT ON (originator_id) originator_id, originator_version, topic,"
                " state FROM {} WHERE originator_id = ANY(%s)"
                " ORDER BY originator_id, originator_version DESC").format(
                    _table(snapshots.recorder)), (chunk,)).fetchall()
            for oid, version, topic, state in rows:
                snaps[oid] = snapshots.mapper.to_domain_event(
                    StoredEvent(oid, version, topic, bytes(state)))
        rows = conn.execute(sql.SQL(
            "SELECT originator_id, originator_version, topic, state FROM {}"
            " WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version").format(
                events_table), (chunk,)).fetchall()
        grouped: dict[UUID, list[Any]] = {}
        for oid, version, topic, state in rows:
            snap = snaps.get(oid)
            if snap is not None and version <= snap.originator_version:
                continue
            grouped.setdefault(oid, []).append(
                app.mapper.to_domain_event(StoredEvent(oid, version, topic, bytes(state))))
        for oid in chunk:
            start = [snaps[oid]] if oid in snaps else []
            enc = None
            for event in (*start, *grouped.get(oid, [])):  # what project_aggregate does,
                enc = event.mutate(enc)  # without its per-event runtime protocol check
            if not isinstance(enc, Encounter):
                raise NotFound("encounter_id", "encounter.exists",
                               "encounter_id: no such encounter")
            out[oid] = enc
    return out
