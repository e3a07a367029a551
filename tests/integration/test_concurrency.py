"""Two writers on one encounter against real PostgreSQL: exactly one wins each version."""

from __future__ import annotations

import threading

import pytest

from ledger.application.service import LedgerApplication
from ledger.domain.errors import ConcurrencyConflict, PreconditionFailed
from tests import builders as s

pytestmark = pytest.mark.postgres


def test_stale_writer_gets_a_typed_conflict(app_env):
    a = LedgerApplication(env=app_env)
    b = LedgerApplication(env=app_env)
    try:
        eid = s.open_encounter(a)
        s.code(a, eid, "E11.9")
        enc_a = a.get_encounter(eid)
        enc_b = b.get_encounter(eid)
        enc_a.add_service_line(procedure_code="99213", charge="130.00", pointers=[1],
                               actor=s.CODER_A)
        enc_b.add_service_line(procedure_code="99214", charge="180.00", pointers=[1],
                               actor=s.CODER_B)
        a.save(enc_a)
        with pytest.raises(Exception) as err:
            b.save(enc_b)
        assert type(err.value).__name__ == "IntegrityError"
        # through the command layer: If-Match mismatch -> PreconditionFailed, nothing written
        version = a.get_encounter(eid).version
        with pytest.raises(PreconditionFailed):
            b.execute(eid, "code_diagnosis", actor=s.CODER_B, code="I10",
                      expected_version=version - 1)
        assert a.get_encounter(eid).version == version
    finally:
        a.close()
        b.close()


def test_racing_writers_with_if_match_exactly_one_wins_each_version(app_env):
    apps = [LedgerApplication(env=app_env) for _ in range(8)]
    try:
        eid = s.open_encounter(apps[0])
        s.code(apps[0], eid, "E11.9")
        start = apps[0].get_encounter(eid).version
        barrier = threading.Barrier(len(apps))
        outcomes: list[str] = []
        lock = threading.Lock()

        def writer(i: int) -> None:
            barrier.wait()
            try:
                apps[i].execute(eid, "add_service_line", actor=s.CODER_A,
                                procedure_code="99213", charge=f"{100 + i}.00", pointers=[1],
                                expected_version=start)
                result = "ok"
            except (ConcurrencyConflict, PreconditionFailed) as exc:
                result = type(exc).__name__
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(apps))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert outcomes.count("ok") == 1, outcomes
        enc = apps[0].get_encounter(eid)
        assert enc.version == start + 1
        assert len(enc.active_lines()) == 1
    finally:
        for a in apps:
            a.close()


def test_without_if_match_a_lost_race_is_rerun_and_nothing_is_lost(app_env):
    apps = [LedgerApplication(env=app_env) for _ in range(6)]
    try:
        eid = s.open_encounter(apps[0])
        s.code(apps[0], eid, "E11.9")
        barrier = threading.Barrier(len(apps))
        errors: list[Exception] = []

        def writer(i: int) -> None:
            barrier.wait()
            try:
                apps[i].execute(eid, "add_service_line", actor=s.CODER_A,
                                procedure_code="99213", charge=f"{100 + i}.00", pointers=[1])
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(apps))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        enc = apps[0].get_encounter(eid)
        written = len(enc.active_lines())
        # every writer either landed its line or got a typed conflict after its retries
        assert written + len(errors) == len(apps)
        assert all(isinstance(e, ConcurrencyConflict) for e in errors), errors
        assert sorted(str(ln.charge) for ln in enc.active_lines()) == sorted(
            {str(ln.charge) for ln in enc.active_lines()})
    finally:
        for a in apps:
            a.close()
