"""Fill a store with N events quickly: realistic encounters (the scenario-1 claim life, 15
events each) are built once in memory through the domain, encoded by the application's own
mapper, and COPYed with fresh encounter ids (with their hash chain when the store has one).
Used by the read and scale benchmarks to reach 1,000,000 events in seconds, not minutes."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import psycopg

from ledger.application.service import LedgerApplication
from ledger.domain.encounter import Encounter
from ledger.domain.model import Finding  # noqa: F401 - keeps the transcoder registry loaded
from tests import builders as s


def template_events(app: LedgerApplication) -> list[tuple[int, str, bytes]]:
    """(version, topic, state) of one encounter's whole claim life (scenario 1)."""
    enc = Encounter.open(facility_id="FAC-01", patient_ref="PT-BULK", service_from=s.DOS,
                         service_to=None, place_of_service="11",
                         responsible_parties=s.parties(), actor=s.BILLER)
    for code in ("E11.9", "I10"):
        enc.code_diagnosis(code, code_set=app.code_set, actor=s.CODER_A)
    for proc, charge, ptr in (("99214", "180.00", [1, 2]), ("83036", "45.00", [1]),
                              ("36415", "15.00", [1])):
        enc.add_service_line(procedure_code=proc, charge=charge, pointers=ptr,
                             rendering_npi=s.NPI, actor=s.CODER_A)
    enc.create_claim("BULK-1", actor=s.BILLER)
    enc.scrub_claim("BULK-1", ruleset_version="bulk", findings=[], actor=s.BILLER)
    enc.submit_claim("BULK-1", actor=s.BILLER)
    enc.post_adjudication(
        "BULK-1", status_code="1", charge=s.m("240.00"), paid=s.m("114.82"),
        patient_responsibility=s.m("30.00"), payer_icn="ICN", adjudication_date=date(2026, 4, 20),
        remittance=s.remit("TRN-BULK"), claim_adjustments=[], actor=s.BILLER, lines=[
            s.lr(1, "99214", "180.00", "98.50", "128.50", s.adj("CO", "45", "51.50"),
                 s.adj("PR", "3", "30.00")),
            s.lr(2, "83036", "45.00", "13.32", "13.32", s.adj("CO", "45", "31.68")),
            s.lr(3, "36415", "15.00", "3.00", "3.00", s.adj("CO", "45", "12.00"))])
    out = []
    for event in enc.collect_events():
        stored = app.mapper.to_stored_event(event)
        out.append((stored.originator_version, stored.topic, stored.state))
    return out


def has_chain(conn: psycopg.Connection) -> bool:
    return bool(conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'ledger_events'"
        " AND column_name = 'chain_hash'").fetchone())


def fill(url: str, app: LedgerApplication, events: int,
         progress: Any = None) -> tuple[int, list[uuid.UUID]]:
    """Append about ``events`` events as whole encounters; returns (events written, ids)."""
    ids: list[uuid.UUID] = []
    template = template_events(app)
    per = len(template)
    encounters = max(1, events // per)
    written = 0
    with psycopg.connect(url) as conn:
        chained = has_chain(conn)
        if chained:
            from ledger.persistence.chain import chain_hash
        cols = "originator_id, originator_version, topic, state" + (
            ", chain_hash" if chained else "")
        batch = 5000
        for start in range(0, encounters, batch):
            with conn.cursor() as cur, cur.copy(
                    f"COPY ledger_events ({cols}) FROM STDIN") as copy:
                for _ in range(min(batch, encounters - start)):
                    eid = uuid.uuid4()
                    ids.append(eid)
                    prev = bytes(32)
                    for version, topic, state in template:
                        if chained:
                            prev = chain_hash(prev, eid, version, topic, state)
                            copy.write_row((eid, version, topic, state, prev))
                        else:
                            copy.write_row((eid, version, topic, state))
                    written += per
            conn.commit()
            if progress:
                progress(written)
    return written, ids
