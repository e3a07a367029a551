"""``ledger.application.loading.load_encounters`` (the 835 importer's and the group-commit
writer's loader) rebuilds exactly what ``get_encounter`` does, over several pages of
encounters, with and without snapshots."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from ledger.application import loading
from ledger.application.service import LedgerApplication
from tests import builders as s

pytestmark = pytest.mark.postgres


def _state(enc) -> dict:
    return {k: v for k, v in vars(enc).items() if k != "_pending_events"}


def test_pages_and_snapshots_rebuild_what_get_encounter_does(app_env, clean_db, monkeypatch):
    app = LedgerApplication(env=app_env, snapshot_interval=3)
    try:
        ids = []
        for i in range(7):
            eid = s.open_encounter(app, patient_ref=f"PT-LOAD-{i}")
            s.code(app, eid, "E11.9")
            for k in range(i):  # 2 to 8 events: some encounters have snapshots, some not
                app.execute(eid, "add_service_line", actor=s.CODER_A, procedure_code="99213",
                            charge=f"{k + 1}.00", pointers=[1])
            ids.append(eid)
        monkeypatch.setattr(loading, "CHUNK", 2)  # four pages
        unknown = uuid.uuid4()
        with psycopg.connect(clean_db) as conn:
            snapshots = conn.execute("SELECT count(*) FROM ledger_snapshots").fetchone()[0]
            loaded = loading.load_encounters(app, conn, [*reversed(ids), unknown, ids[0]])
        assert snapshots > 0
        assert unknown not in loaded and set(loaded) == set(ids)
        for eid in ids:
            expected = app.get_encounter(eid)
            assert loaded[eid].version == expected.version
            assert _state(loaded[eid]) == _state(expected)
        assert [str(ln.charge) for ln in loaded[ids[6]].active_lines()] == [
            f"{k + 1}.00" for k in range(6)]
    finally:
        app.close()
