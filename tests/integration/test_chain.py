"""The per-encounter hash chain on real PostgreSQL: written in the insert's transaction by the
ledger's recorder, for one encounter or many per save, under concurrent writers; the SQL
backfill of migration 0031 uses the same canonical bytes; unchained writers are refused."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from ledger.audit.verify import verify
from ledger.domain.encounter import Encounter
from ledger.persistence.chain import GENESIS, canonical_bytes, chain_hash
from tests import builders as s

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ helpers (shared by tests)
def make_history(app, encounters: int = 3) -> list[UUID]:
    """A few encounters with interleaved events (so log order differs from encounter order)."""
    ids = [s.open_encounter(app, patient_ref=f"PT-{i}") for i in range(encounters)]
    for eid in ids:
        app.execute(eid, "code_diagnosis", actor=s.CODER_A, code="E119")
    for eid in ids:
        app.execute(eid, "code_diagnosis", actor=s.CODER_A, code="I10")
    for eid in ids:
        s.line(app, eid, "99213", "125.00", [1])
    return ids


def rows(url: str, encounter_id: UUID | None = None) -> list[tuple]:
    sql = ("SELECT notification_id, originator_id, originator_version, topic, state, chain_hash "
           "FROM ledger_events")
    params: tuple = ()
    if encounter_id:
        sql += " WHERE originator_id = %s"
        params = (encounter_id,)
    with psycopg.connect(url) as conn:
        return conn.execute(sql + " ORDER BY notification_id", params).fetchall()


def recompute(url: str) -> dict[tuple[UUID, int], bytes]:
    out: dict[tuple[UUID, int], bytes] = {}
    prev: dict[UUID, bytes] = {}
    for _, oid, ver, topic, state, _h in sorted(rows(url), key=lambda r: (str(r[1]), r[2])):
        h = chain_hash(prev.get(oid, GENESIS) if ver > 1 else GENESIS, oid, ver, topic,
                       bytes(state))
        out[(oid, ver)] = prev[oid] = h
    return out


def assert_chains_intact(url: str) -> None:
    expected = recompute(url)
    for _, oid, ver, _, _, h in rows(url):
        assert bytes(h) == expected[(oid, ver)], (oid, ver)
    report = verify(url)
    assert report.ok, report.problems[:3]


# ----------------------------------------------------------------------------------- tests
def test_canonical_bytes_layout():
    oid = UUID("00112233-4455-6677-8899-aabbccddeeff")
    data = canonical_bytes(GENESIS, oid, 2, "ledger.x:Ev", b"{}")
    assert data == (bytes(32) + b"\x00\x00\x00\x10" + oid.bytes + b"\x00" * 7 + b"\x02"
                    + b"\x00\x00\x00\x0b" + b"ledger.x:Ev" + b"\x00\x00\x00\x02" + b"{}")
    import hashlib

    assert chain_hash(GENESIS, oid, 2, "ledger.x:Ev", b"{}") == hashlib.sha256(data).digest()
    # Same id as text or UUID: same bytes.
    assert chain_hash(GENESIS, str(oid), 2, "ledger.x:Ev", b"{}") == \
        chain_hash(GENESIS, oid, 2, "ledger.x:Ev", b"{}")


def test_every_stored_event_carries_its_chain_hash(app, clean_db):
    make_history(app)
    assert len(rows(clean_db)) == 12
    assert_chains_intact(clean_db)


def test_many_encounters_and_events_in_one_save(app, clean_db):
    existing = s.open_encounter(app)
    app.execute(existing, "code_diagnosis", actor=s.CODER_A, code="E119")
    # One save: two new encounters (several events each) and two more events of an existing
    # one (whose previous hash is read inside the transaction).
    new = [Encounter.open(actor=s.BILLER, facility_id="FAC-01", patient_ref=f"PT-{i}",
                          service_from=date(2026, 3, 10), service_to=None,
                          place_of_service="11", responsible_parties=s.parties(),
                          claim_type="professional") for i in range(2)]
    for enc in new:
        enc.code_diagnosis(code="E119", actor=s.CODER_A, code_set=app.code_set)
        enc.code_diagnosis(code="I10", actor=s.CODER_A, code_set=app.code_set)
    old = app.get_encounter(existing)
    old.code_diagnosis(code="I10", actor=s.CODER_A, code_set=app.code_set)
    old.code_diagnosis(code="J45901", actor=s.CODER_A, code_set=app.code_set)
    recordings = app.save(new[0], old, new[1])
    assert len(recordings) == 8
    assert_chains_intact(clean_db)
    assert app.get_encounter(existing).version == 4


def test_concurrent_writers_keep_every_chain_intact(app, clean_db):
    """Four threads append to the same three encounters: the losers of each race retry; every
    chain stays intact (the previous hash is read under the table lock)."""
    from ledger.domain.errors import ConcurrencyConflict

    ids = [s.open_encounter(app) for _ in range(3)]
    errors: list[BaseException] = []
    written = []

    def work(n: int) -> None:
        try:
            for i in range(6):
                eid = ids[(n + i) % len(ids)]
                while True:
                    try:
                        app.execute(eid, "add_service_line", actor=s.CODER_A,
                                    procedure_code="99213", charge="10.00", pointers=[],
                                    units=1, modifiers=None, rendering_npi=s.NPI)
                        written.append(eid)
                        break
                    except ConcurrencyConflict:
                        continue
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:1]
    assert len(written) == 24
    assert len(rows(clean_db)) == 3 + 24
    assert_chains_intact(clean_db)


def test_sql_backfill_uses_the_same_canonical_bytes(app, clean_db):
    """Migration 0031 chains pre-existing rows in SQL: its expression must equal Python's."""
    make_history(app, encounters=1)
    with psycopg.connect(clean_db) as conn:
        got = conn.execute("""
            SELECT originator_version, chain_hash,
                   sha256(prev || int4send(16) || uuid_send(originator_id)
                          || int8send(originator_version)
                          || int4send(octet_length(convert_to(topic, 'UTF8')))
                          || convert_to(topic, 'UTF8')
                          || int4send(octet_length(state)) || state)
            FROM (SELECT e.*, coalesce(
                    (SELECT p.chain_hash FROM ledger_events p
                     WHERE p.originator_id = e.originator_id
                       AND p.originator_version = e.originator_version - 1),
                    decode(repeat('00', 32), 'hex')) AS prev
                  FROM ledger_events e) x
            ORDER BY originator_version""").fetchall()
    assert len(got) == 4
    for _, stored, computed in got:
        assert bytes(stored) == bytes(computed)


def test_backfill_of_events_stored_before_the_chain(clean_db):
    """Rows written before migration 0031 get the chain the application would have written."""
    oid = uuid4()
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE old_events (LIKE ledger_events)")
        conn.execute("ALTER TABLE old_events ALTER COLUMN chain_hash DROP NOT NULL")
        for v in (1, 2, 3):
            conn.execute("INSERT INTO old_events (originator_id, originator_version, topic, "
                         "state, notification_id) VALUES (%s, %s, %s, %s, %s)",
                         (oid, v, f"t:{v}", f"state {v}".encode(), v))
        sql = (ROOT / "migrations" / "0031_audit_chain.sql").read_text()
        block = sql[sql.index("DO $$\nDECLARE"):sql.index("END $$;", sql.index(
            "DO $$\nDECLARE")) + len("END $$;")]
        conn.execute(block.replace("ledger_events", "old_events"))
        stored = conn.execute("SELECT originator_version, chain_hash FROM old_events "
                              "ORDER BY originator_version").fetchall()
    prev = GENESIS
    for v, h in stored:
        prev = chain_hash(prev, oid, v, f"t:{v}", f"state {v}".encode())
        assert bytes(h) == prev


def test_a_writer_that_does_not_chain_is_refused(app, clean_db):
    plain = PostgresApplicationRecorder(app.recorder.datastore, events_table_name="ledger_events")
    event = StoredEvent(originator_id=uuid4(), originator_version=1, topic="x:Y", state=b"{}")
    with pytest.raises(IntegrityError):
        plain.insert_events([event])
    assert rows(clean_db) == []


def test_writers_in_two_processes_alternating_on_one_encounter(app, app_env, clean_db):
    """Each application remembers the hashes it committed; the other's newer events make that
    memory useless but never wrong (it is keyed by version): the chain stays intact."""
    from ledger.application.service import LedgerApplication

    other = LedgerApplication(env=app_env)
    try:
        eid = s.open_encounter(app)
        for i in range(6):
            writer = other if i % 2 == 0 else app
            s.line(writer, eid, "99213", "10.00", [])
        s.line(app, eid, "99213", "10.00", [])  # app wrote the previous one: from memory
        assert (eid, 7) in app.recorder._chain_cache
        assert (eid, 6) in other.recorder._chain_cache
    finally:
        other.close()
    assert len(rows(clean_db, eid)) == 8
    assert_chains_intact(clean_db)
