"""A large save (thousands of events, megabytes of state) commits in one transaction and a
conflicting one still fails whole with the library's IntegrityError. (In libpq's pipeline mode
such a save deadlocked; the recorder sends large saves without it.)"""

from __future__ import annotations

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from ledger.audit.verify import verify
from ledger.domain.encounter import Encounter
from ledger.persistence.recorder import PIPELINE_MAX_BYTES
from tests import builders as s

pytestmark = pytest.mark.postgres


def _encounters(app, count: int, adjustments: int) -> list[Encounter]:
    out = []
    for _ in range(count):
        enc = Encounter.open(facility_id="F", patient_ref="P", service_from=s.DOS,
                             service_to=None, place_of_service="11",
                             responsible_parties=s.parties(), actor=s.BILLER)
        enc.code_diagnosis("E11.9", code_set=app.code_set, actor=s.CODER_A)
        enc.add_service_line(procedure_code="99213", charge="100.00", pointers=[1],
                             actor=s.CODER_A)
        for _ in range(adjustments):
            enc.adjust_charge(1, "1.00", actor=s.BILLER, reason="bulk")
        out.append(enc)
    return out


def test_a_save_of_thousands_of_events_commits_at_once(app, clean_db):
    encs = _encounters(app, 300, 17)  # 6,000 events
    size = sum(len(app.mapper.to_stored_event(e).state) for enc in encs
               for e in enc.pending_events)
    assert size > 4 * PIPELINE_MAX_BYTES
    recordings = app.save(*encs)
    assert len(recordings) == 6000
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_events").fetchone()[0] == 6000
    assert verify(clean_db).ok  # the hash chains of the large save are whole
    assert app.get_encounter(encs[0].id).total_charge == s.m("117.00")


def test_a_large_conflicting_save_fails_whole(app, clean_db):
    encs = _encounters(app, 300, 17)
    app.save(*encs[:1])
    stale = app.get_encounter(encs[0].id)
    s.line(app, encs[0].id, "99214", "10.00", [1])  # moves encounter 0 on
    stale.adjust_charge(1, "1.00", actor=s.BILLER, reason="stale")
    with pytest.raises(IntegrityError):
        app.save(stale, *encs[1:])
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(DISTINCT originator_id) FROM ledger_events"
                            ).fetchone()[0] == 1
