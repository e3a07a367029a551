"""Bulk export: every FHIR resource the ledger yields, as NDJSON, one file per resource type
(the FHIR Bulk Data layout: ``ExplanationOfBenefit.ndjson``, ``Claim.ndjson``,
``ClaimResponse.ndjson``, ``Coverage.ndjson``), for everything changed since a moment.

Streaming and constant memory: one server-side cursor walks the events table in stream order
(its primary key), one encounter is replayed at a time, each resource is written as soon as it
is built, and nothing about earlier encounters is kept. ``since`` keeps the resources whose
``meta.lastUpdated`` is at or after it (a resource is as new as the last event that touched it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent

from ledger.domain.encounter import Encounter
from ledger.fhir import resources as fr
from ledger.fhir.render import dumps
from ledger.fhir.replay import replay_all

OPENED_TOPIC_SUFFIX = f"{Encounter.__qualname__}.Opened"
SQL = ("SELECT originator_id, originator_version, topic, state FROM ledger_events "
       "ORDER BY originator_id, originator_version")


@dataclass
class ExportResult:
    encounters: int = 0
    events: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(fr.RESOURCE_TYPES, 0))
    seconds: float = 0.0
    files: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"encounters": self.encounters, "events": self.events, "counts": self.counts,
                "seconds": round(self.seconds, 3), "files": self.files}


def _streams(conn: psycopg.Connection, mapper: Any, fetch: int) -> Iterator[list[Any]]:
    """The events of one encounter at a time, in stream order (other aggregates skipped)."""
    current: Any = None
    events: list[Any] = []
    skip = False
    with conn.cursor(name="fhir_export") as cur:
        cur.itersize = fetch
        cur.execute(SQL)
        for originator_id, version, topic, state in cur:
            if originator_id != current:
                if events and not skip:
                    yield events
                current, events = originator_id, []
                skip = not topic.endswith(OPENED_TOPIC_SUFFIX)
            if skip:
                continue
            events.append(mapper.to_domain_event(
                StoredEvent(originator_id, version, topic, bytes(state))))
        if events and not skip:
            yield events


def changed_resources(conn: psycopg.Connection, mapper: Any, *,
                      since: datetime | None = None,
                      types: tuple[str, ...] = fr.RESOURCE_TYPES, fetch: int = 5000,
                      tally: ExportResult | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(type, resource) of every resource changed at or after ``since``, one encounter at a
    time (nothing about earlier encounters is kept)."""
    for events in _streams(conn, mapper, fetch):
        if tally is not None:
            tally.events += len(events)
        if since is not None and events[-1].timestamp < since:
            continue  # nothing in this encounter changed since then
        enc, stamps = replay_all(events, keep_all=False)
        if enc is None:
            continue
        if tally is not None:
            tally.encounters += 1
        for rtype in types:
            for resource in fr.resources(enc, stamps, rtype):
                if since is not None and \
                        datetime.fromisoformat(resource["meta"]["lastUpdated"]) < since:
                    continue
                yield rtype, resource


def export(url: str, mapper: Any, directory: Path, *, since: datetime | None = None,
           fetch: int = 5000) -> ExportResult:
    """Write the NDJSON files into ``directory`` (created if missing); returns the counts."""
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    result = ExportResult()
    files = {t: open(directory / f"{t}.ndjson", "wb", buffering=1 << 20)  # noqa: SIM115
             for t in fr.RESOURCE_TYPES}
    try:
        with psycopg.connect(url) as conn:
            for rtype, resource in changed_resources(conn, mapper, since=since, fetch=fetch,
                                                     tally=result):
                out = files[rtype]
                out.write(dumps(resource))
                out.write(b"\n")
                result.counts[rtype] += 1
    finally:
        for f in files.values():
            f.close()
    result.files = {t: str(directory / f"{t}.ndjson") for t in fr.RESOURCE_TYPES}
    result.seconds = time.perf_counter() - started
    return result
