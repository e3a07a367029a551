"""Group commit keeps every guarantee: batch-mates commit when one command conflicts or is
refused; commands on one encounter in one batch apply in order; a lone command does not wait."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from ledger.application.service import LedgerApplication
from ledger.application.writer import Job
from ledger.domain.errors import ConcurrencyConflict, InvalidCode, PreconditionFailed
from tests import builders as s

pytestmark = pytest.mark.postgres


@pytest.fixture
def batching_app(app_env):
    app = LedgerApplication(env=app_env, group_commit=True)
    yield app
    app.close()


def _events(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM ledger_events").fetchone()[0]


def test_a_batch_with_a_conflicting_and_a_refused_command_commits_the_others(batching_app,
                                                                             clean_db):
    app = batching_app
    ids = [s.open_encounter(app, patient_ref=f"PT-{i}") for i in range(6)]
    for eid in ids:
        s.code(app, eid, "E11.9")
    # another process writes encounter 0 behind the writer's back: its cached copy is stale
    other = LedgerApplication(env=dict(app.env.items()) if hasattr(app.env, "items") else None)
    try:
        s.line(other, ids[0], "99213", "130.00", [1])
    finally:
        other.close()
    writer = app.writer
    writer_batches = writer.batches
    jobs = []

    def add_line(charge: str):
        return lambda enc: enc.add_service_line(procedure_code="99214", charge=charge,
                                                pointers=[1], actor=s.CODER_A)

    # hold the writer so that all jobs land in one batch
    gate = threading.Event()
    blocker = Job(ids[5], lambda enc: gate.wait(5) and None, None, None)
    threading.Thread(target=writer.submit, args=(blocker,), daemon=True).start()
    time.sleep(0.1)
    jobs.append(Job(ids[0], add_line("10.00"), 2, None))  # stale If-Match: 412
    jobs.append(Job(ids[1], lambda enc: enc.code_diagnosis("R10.3", code_set=app.code_set,
                                                           actor=s.CODER_A), None, None))
    jobs.append(Job(ids[2], add_line("20.00"), None, None))
    jobs.append(Job(ids[3], add_line("30.00"), None, None))
    jobs.append(Job(ids[0], add_line("40.00"), None, None))  # stale cache: conflict -> retried
    results: list = [None] * len(jobs)

    def run(i: int) -> None:
        try:
            results[i] = writer.submit(jobs[i])
        except Exception as exc:  # noqa: BLE001
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join(10)
    assert isinstance(results[0], PreconditionFailed)
    assert isinstance(results[1], InvalidCode)
    for i in (2, 3, 4):
        assert not isinstance(results[i], Exception), results[i]
    assert writer.batches > writer_batches
    fresh = LedgerApplication(env=dict(app.env.items()) if hasattr(app.env, "items") else None)
    try:
        assert [str(ln.charge) for ln in fresh.get_encounter(ids[0]).active_lines()] == [
            "130.00", "40.00"]
        assert len(fresh.get_encounter(ids[2]).active_lines()) == 1
        assert len(fresh.get_encounter(ids[3]).active_lines()) == 1
        assert fresh.get_encounter(ids[1]).diagnoses[0].code == "E119"
        assert len(fresh.get_encounter(ids[1]).diagnoses) == 1
    finally:
        fresh.close()


def test_concurrent_commands_share_transactions_and_nothing_is_lost(batching_app, clean_db):
    app = batching_app
    ids = [s.open_encounter(app, patient_ref=f"PT-{i}") for i in range(16)]
    for eid in ids:
        s.code(app, eid, "E11.9")
    before_events, before_batches = _events(clean_db), app.writer.batches
    per_thread = 10

    def worker(eid) -> None:
        for i in range(per_thread):
            app.execute(eid, "add_service_line", actor=s.CODER_A, procedure_code="99213",
                        charge=f"{i + 1}.00", pointers=[1])

    threads = [threading.Thread(target=worker, args=(eid,)) for eid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    commands = len(ids) * per_thread
    assert _events(clean_db) - before_events == commands
    assert app.writer.batches - before_batches < commands, "commands were grouped"
    for eid in ids:
        assert len(app.get_encounter(eid).active_lines()) == per_thread


def test_a_lone_command_is_saved_at_once(batching_app):
    app = batching_app
    app.writer.window = 0.5  # would only apply when others are already queued
    eid = s.open_encounter(app)
    started = time.perf_counter()
    s.code(app, eid, "E11.9")
    assert time.perf_counter() - started < 0.4


def test_if_match_race_through_the_writer_one_winner(batching_app):
    app = batching_app
    eid = s.open_encounter(app)
    s.code(app, eid, "E11.9")
    version = app.get_encounter(eid).version
    outcomes: list[str] = []
    barrier = threading.Barrier(10)

    def racer(i: int) -> None:
        barrier.wait()
        try:
            app.execute(eid, "add_service_line", actor=s.CODER_A, procedure_code="99213",
                        charge=f"{i + 1}.00", pointers=[1], expected_version=version)
            outcomes.append("ok")
        except (PreconditionFailed, ConcurrencyConflict) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1, outcomes
    assert app.get_encounter(eid).version == version + 1


def test_a_pool_of_writers_keeps_every_command(app_env, clean_db):
    app = LedgerApplication(env=app_env, group_commit=True, group_commit_writers=3)
    try:
        ids = [s.open_encounter(app, patient_ref=f"PT-{i}") for i in range(12)]
        for eid in ids:
            s.code(app, eid, "E11.9")
        before = _events(clean_db)

        def worker(eid) -> None:
            for i in range(8):
                app.execute(eid, "add_service_line", actor=s.CODER_A, procedure_code="99213",
                            charge=f"{i + 1}.00", pointers=[1])

        threads = [threading.Thread(target=worker, args=(eid,)) for eid in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _events(clean_db) - before == len(ids) * 8
        assert len({w.commands for w in app.writer.writers}) >= 1
        assert sum(1 for w in app.writer.writers if w.commands) >= 2, "work was shared"
        for eid in ids:
            assert [str(ln.charge) for ln in app.get_encounter(eid).active_lines()] == [
                f"{i + 1}.00" for i in range(8)]
    finally:
        app.close()


def test_two_processes_writers_on_one_hot_set_take_turns_instead_of_conflicting(
        app_env, clean_db, monkeypatch, caplog):
    """Two applications (as two server processes) whose batches share encounters: a writer
    claims its batch's encounters, so the other waits for them instead of saving under it
    (which fails on the (encounter, version) uniqueness and re-runs every command alone).
    Every command is kept either way."""
    from ledger.application.writer import GroupCommitWriter

    alone = []
    original = GroupCommitWriter._retry_alone

    def counted(self, job):
        alone.append(job)
        return original(self, job)

    monkeypatch.setattr(GroupCommitWriter, "_retry_alone", counted)
    apps = [LedgerApplication(env=app_env, group_commit=True) for _ in range(2)]
    try:
        for a in apps:
            assert a.writer.claim
        ids = [s.open_encounter(apps[0], patient_ref=f"PT-{i}") for i in range(8)]
        for eid in ids:
            s.code(apps[0], eid, "E11.9")
        per_thread = 6
        saved: list[int] = []
        refused: list[BaseException] = []

        def worker(n: int) -> None:
            app = apps[n % 2]
            for i in range(per_thread):
                try:
                    app.execute(ids[(n + i) % len(ids)], "add_service_line", actor=s.CODER_A,
                                procedure_code="99213", charge=f"{i + 1}.00", pointers=[1])
                    saved.append(1)
                except ConcurrencyConflict as exc:  # lost its race three times (409)
                    refused.append(exc)

        def run() -> None:
            threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        run()  # each writer sees the other (claims are taken only once it has)
        assert all(time.monotonic() < a.writer.contended_until for a in apps)
        alone.clear()
        refused.clear()
        saved.clear()
        before = _events(clean_db)
        run()
        assert _events(clean_db) - before == len(saved)
        assert not refused and len(saved) == 16 * per_thread
        timeouts = [r for r in caplog.records if "not claimed" in r.getMessage()]
        assert not alone or timeouts, f"{len(alone)} commands re-run alone after conflicts"
    finally:
        for a in apps:
            a.close()


def _claim_holder(url: str, keys: list[int]) -> subprocess.Popen:
    """Another server process's writer in the middle of a batch: it holds the claims on
    ``keys`` (the writer's own CLAIM_SQL) and has not committed yet."""
    code = ("import sys, time, psycopg\n"
            "from ledger.application.writer import CLAIM_SQL, CLAIM_CLASS\n"
            "conn = psycopg.connect(sys.argv[1], autocommit=True)\n"
            "conn.execute(CLAIM_SQL, (60000, CLAIM_CLASS, [int(k) for k in sys.argv[2:]]))\n"
            "print('held', flush=True)\n"
            "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, url, *map(str, keys)],
                            stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _add_line_in_background(app, eid) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        t = time.monotonic()
        try:
            out["result"] = app.execute(eid, "add_service_line", actor=s.CODER_A,
                                        procedure_code="99213", charge="70.00", pointers=[1])
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            out["error"] = exc
        out["seconds"] = time.monotonic() - t

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_a_writer_killed_while_holding_claims_frees_them_at_once(batching_app, clean_db,
                                                                 caplog):
    """The other process is killed (SIGKILL) mid-batch, holding the claims: its session ends,
    PostgreSQL releases them, and the waiting batch takes them and commits, once, without
    waiting out the claim timeout."""
    from ledger.application.writer import CLAIM_TIMEOUT_MS, _claim_key

    caplog.set_level(logging.INFO, logger="ledger.application.writer")
    app = batching_app
    eid = s.open_encounter(app, patient_ref="PT-CLAIM-1")
    s.code(app, eid, "E11.9")
    before = _events(clean_db)
    app.writer.contended_until = time.monotonic() + 60  # another writer of the store was seen
    holder = _claim_holder(clean_db, [_claim_key(eid)])
    try:
        thread, out = _add_line_in_background(app, eid)
        time.sleep(0.5)
        assert thread.is_alive(), "the batch did not wait for the held claim"
        assert _events(clean_db) == before
        holder.send_signal(signal.SIGKILL)
        holder.wait(5)
        thread.join(10)
    finally:
        holder.kill()
    assert "error" not in out, out
    assert 0.5 <= out["seconds"] < CLAIM_TIMEOUT_MS / 1000, out
    assert not [r for r in caplog.records if "not claimed" in r.getMessage()]
    assert _events(clean_db) - before == 1
    assert [str(ln.charge) for ln in app.get_encounter(eid).active_lines()] == ["70.00"]


def test_a_stalled_claim_holder_delays_a_batch_by_the_claim_timeout_only(batching_app,
                                                                         clean_db, caplog):
    """The other process hangs holding the claims (never commits, never dies): the batch
    waits CLAIM_TIMEOUT, then runs unclaimed (the (encounter, version) uniqueness still
    decides) and commits once; it holds no claim afterwards."""
    from ledger.application.writer import CLAIM_CLASS, CLAIM_TIMEOUT_MS, _claim_key

    caplog.set_level(logging.INFO, logger="ledger.application.writer")
    app = batching_app
    eid = s.open_encounter(app, patient_ref="PT-CLAIM-2")
    s.code(app, eid, "E11.9")
    before = _events(clean_db)
    app.writer.contended_until = time.monotonic() + 60
    holder = _claim_holder(clean_db, [_claim_key(eid)])
    try:
        thread, out = _add_line_in_background(app, eid)
        thread.join(CLAIM_TIMEOUT_MS / 1000 + 10)
        assert "error" not in out, out
        assert CLAIM_TIMEOUT_MS / 1000 - 0.2 <= out["seconds"] < CLAIM_TIMEOUT_MS / 1000 + 5
        assert [r for r in caplog.records if "not claimed" in r.getMessage()]
        assert _events(clean_db) - before == 1
        with psycopg.connect(clean_db) as conn:  # the writer let go of what it did take
            held = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                " AND classid = %s AND objsubid = 2 AND granted",
                                (CLAIM_CLASS,)).fetchone()[0]
        assert held == 1, "only the stalled holder's claim is left"
    finally:
        holder.kill()
        holder.wait(5)
