"""The X12 claim and ICN indexes read the few fields they need from the events: picked out
by the server from plain JSON, or (a cipher, a compressor, another transcoder, or text jsonb
cannot hold) decoded by the application's mapper. Both readers index the same rows."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from ledger.persistence.chain import GENESIS, chain_hash
from ledger.x12 import index
from tests import builders as s

pytestmark = pytest.mark.postgres

TABLES = ("x12_claim_index", "x12_submission_index", "x12_icn_index")


def _indexed(conn) -> dict[str, list[tuple]]:
    return {t: conn.execute(f"SELECT * FROM {t} ORDER BY position").fetchall() for t in TABLES}


def _reindex(app, conn) -> dict[str, list[tuple]]:
    conn.execute("TRUNCATE x12_claim_index, x12_submission_index, x12_icn_index, "
                 "x12_claim_index_position, x12_icn_index_position")
    index.catch_up(app, conn)
    index.catch_up_icn(app, conn)
    return _indexed(conn)


def test_picked_and_decoded_fields_index_the_same_rows(app, clean_db, monkeypatch):
    s.scenario_1(app)
    s.scenario_2(app)
    eid = s.open_encounter(app, patient_ref="PT-IDX-3")
    s.code(app, eid, "E11.9")
    s.line(app, eid, "99213", "90.00", [1])
    s.create_scrub_submit(app, eid, "IDX-3")
    with psycopg.connect(clean_db, autocommit=True) as conn:
        picked = _reindex(app, conn)
        assert len(picked["x12_claim_index"]) == 3
        assert len(picked["x12_submission_index"]) == 3
        assert len(picked["x12_icn_index"]) == 2
        assert "IDX-3" in {r[0] for r in picked["x12_claim_index"]}
        monkeypatch.setattr(index, "OrjsonTranscoder", type("Other", (), {}))
        assert _reindex(app, conn) == picked


def test_an_event_jsonb_cannot_hold_is_indexed_through_the_mapper(app, clean_db):
    """A stored event whose text jsonb refuses (a NUL in a field the index does not read,
    as an event written before such text was refused could carry) does not stop the index:
    that page is read through the mapper."""
    eid = s.open_encounter(app, patient_ref="PT-IDX-4")
    s.code(app, eid, "E11.9")
    s.line(app, eid, "99213", "90.00", [1])
    s.create_scrub_submit(app, eid, "IDX-4")
    odd = uuid.uuid4()
    state = (b'{"claim_number":"IDX-OLD","payer_id":"P-OLD","note":"a\\u0000b",'
             b'"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-02T00:00:00+00:00"}}')
    topic = index.CREATED[0]
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("INSERT INTO ledger_events (originator_id, originator_version, topic,"
                     " state, chain_hash) VALUES (%s, 1, %s, %s, %s)",
                     (odd, topic, state, chain_hash(GENESIS, odd, 1, topic, state)))
        with pytest.raises(psycopg.DataError):
            conn.execute("SELECT convert_from(state, 'UTF8')::jsonb FROM ledger_events"
                         " WHERE originator_id = %s", (odd,))
        rows = _reindex(app, conn)["x12_claim_index"]
    assert {(r[0], r[1]) for r in rows} >= {("IDX-OLD", odd), ("IDX-4", eid)}
