"""The golden chain-hash vectors (tests/unit/test_chain_vectors.py) on real PostgreSQL: the
recorder stores them, ``ledger verify`` (whole log and one encounter) accepts them, and the SQL
that chains rows in the database (migration 0031's backfill) computes the same digests."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from ledger.audit.verify import verify
from tests.unit.test_chain_vectors import OID, VECTORS

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]
EXPECTED = [bytes.fromhex(v[4]) for v in VECTORS]


def _stored(url: str) -> list[bytes]:
    with psycopg.connect(url) as conn:
        return [bytes(r[0]) for r in conn.execute(
            "SELECT chain_hash FROM ledger_events WHERE originator_id = %s "
            "ORDER BY originator_version", (OID,))]


def test_the_recorder_stores_the_golden_digests_and_verify_accepts_them(app, clean_db):
    events = [StoredEvent(originator_id=oid, originator_version=v, topic=t, state=st)
              for oid, v, t, st, _ in VECTORS]
    app.recorder.insert_events(events[:1])
    app.recorder.insert_events(events[1:])  # the second save chains on the stored first hash
    assert _stored(clean_db) == EXPECTED
    report = verify(clean_db, snapshots=False)  # the whole log (the hot scan)
    assert report.ok and report.events == len(VECTORS), report.problems[:3]
    one = verify(clean_db, encounter=OID, snapshots=False)  # one encounter
    assert one.ok and one.events == len(VECTORS), one.problems[:3]


def test_the_sql_backfill_computes_the_golden_digests(clean_db):
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE old_events (LIKE ledger_events)")
        conn.execute("ALTER TABLE old_events ALTER COLUMN chain_hash DROP NOT NULL")
        for n, (oid, v, topic, state, _) in enumerate(VECTORS, 1):
            conn.execute("INSERT INTO old_events (originator_id, originator_version, topic, "
                         "state, notification_id) VALUES (%s, %s, %s, %s, %s)",
                         (oid, v, topic, state, n))
        sql = (ROOT / "migrations" / "0031_audit_chain.sql").read_text()
        start = sql.index("DO $$\nDECLARE")
        conn.execute(sql[start:sql.index("END $$;", start) + len("END $$;")]
                     .replace("ledger_events", "old_events"))
        got = [bytes(r[0]) for r in conn.execute(
            "SELECT chain_hash FROM old_events ORDER BY originator_version")]
    assert got == EXPECTED
