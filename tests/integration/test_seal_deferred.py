"""Deferred sealing (issue 14): every batch — a lone command's and a group commit's of several
encounters alike — commits without its seal and is signed by the writer's background sealer
within LEDGER_SEAL_MAX_DELAY, from the leaves the writer committed (an event altered between
its commit and its seal no longer matches its leaf); `ledger verify` counts unsealed events
younger than the bound as pending and reports older ones as inserted; a process killed between
commit and seal leaves its events to the next sealer run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from ledger.audit.checkpoints import load_public_key, public_path
from ledger.audit.sealing import sealing_status, unsealed_backlog
from ledger.audit.verify import verify
from ledger.config import get_settings
from ledger.persistence.chain import GENESIS, chain_hash
from tests import builders as s

pytestmark = pytest.mark.postgres

BOUND = 0.4
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def deferred(app_env, monkeypatch):
    monkeypatch.setenv("LEDGER_SEAL_MAX_DELAY", str(BOUND))
    get_settings.cache_clear()
    from ledger.application.service import LedgerApplication

    application = LedgerApplication(env=app_env)
    assert application.sealer.defers
    assert application.sealer.recovered.wait(5)  # its start-up run is over
    yield application
    application.close()


@contextmanager
def background_sealer_paused(sealer):
    """The background sealer seals nothing until the block ends (a gate, not its lock: a
    writer that took the lock to seal in its transaction would hang the test)."""
    gate = threading.Event()
    original = sealer.seal_deferred

    def gated():
        gate.wait(10)
        return original()

    sealer.seal_deferred = gated
    try:
        yield
    finally:
        del sealer.seal_deferred
        gate.set()


def backlog(url):
    with psycopg.connect(url) as conn:
        return unsealed_backlog(conn)


def check(url, **kwargs):
    key = load_public_key(public_path(get_settings().key_file))
    return verify(url, public_key=key, require_sealed=True, **kwargs)


def wait_sealed(url, limit):
    started = time.monotonic()
    while backlog(url)["unsealed_events"]:
        assert time.monotonic() - started < limit, backlog(url)
        time.sleep(0.01)
    return time.monotonic() - started


def test_a_lone_command_is_sealed_after_its_commit_within_the_bound(deferred, clean_db):
    sealer = deferred.sealer
    s.open_encounter(deferred)
    committed = time.monotonic()
    status = sealing_status(sealer)
    # sealed after the commit, not in it (it may already be sealed on a slow machine)
    assert status["max_delay_seconds"] == BOUND and sealer.fast_seals == 0
    first = check(clean_db)
    assert first.ok, first.problems
    assert first.pending + first.covered == 1  # pending while younger than the bound
    wait_sealed(clean_db, BOUND + 0.5)
    assert time.monotonic() - committed < BOUND + 0.5
    assert sealer.deferred_seals >= 1 and sealer.deferred_status() == (0, None)
    report = check(clean_db)
    assert report.ok and (report.covered, report.pending) == (1, 0)


def test_lone_commands_share_a_checkpoint(deferred, clean_db):
    eid = s.open_encounter(deferred)
    for code in ("E119", "I10", "J45901", "K219"):
        s.code(deferred, eid, code)
    wait_sealed(clean_db, BOUND + 0.5)
    with psycopg.connect(clean_db) as conn:
        count = conn.execute("SELECT count(*) FROM ledger_checkpoints").fetchone()[0]
    assert count < 5  # five commits, fewer signed tree heads
    assert check(clean_db).ok


def _copy_as_new_encounters(app, eid, n):
    """Stored events of ``n`` new encounters (copies of ``eid``'s first event)."""
    first = app.recorder.select_events(eid, lte=1)[0]
    return [StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic=first.topic,
                        state=first.state) for _ in range(n)]


def test_a_batch_of_several_encounters_is_deferred_too_and_shares_the_checkpoint(deferred,
                                                                                clean_db):
    """A group commit's batch (several encounters) commits without a seal statement, like a
    lone command's, and one background seal covers both within the bound."""
    sealer = deferred.sealer
    in_transaction = sealer.fast_seals + sealer.read_seals  # (the start-up run's)
    with background_sealer_paused(sealer):  # until both have committed
        eid = s.open_encounter(deferred)
        deferred.recorder.insert_events(_copy_as_new_encounters(deferred, eid, 2))
        committed = time.monotonic()
        # nothing sealed in a transaction
        assert sealer.fast_seals + sealer.read_seals == in_transaction
        assert sealer.deferred_status()[0] == 3
        assert backlog(clean_db)["unsealed_events"] == 3
        pending = check(clean_db)
        assert pending.ok and pending.pending == 3, pending.problems
    wait_sealed(clean_db, BOUND + 0.5)
    assert time.monotonic() - committed < BOUND + 0.5
    assert sealer.fast_seals == 0 and sealer.deferred_status() == (0, None)
    assert sealer.read_seals == in_transaction  # from memory: the check found nothing stale
    with psycopg.connect(clean_db) as conn:
        sizes = [r[0] for r in conn.execute("SELECT tree_size FROM ledger_checkpoints")]
    assert sizes == [3]  # one signed tree head over both batches
    report = check(clean_db)
    assert report.ok and (report.covered, report.pending) == (3, 0), report.problems


def test_group_commit_under_concurrency_every_batch_sealed_within_the_bound(app_env,
                                                                           clean_db,
                                                                           monkeypatch):
    """Concurrent callers through the group-commit writer: batches of several encounters,
    none sealed in its transaction; a verify racing them sees only pending events (never a
    problem), and within the bound after the last commit everything is covered."""
    monkeypatch.setenv("LEDGER_SEAL_MAX_DELAY", str(BOUND))
    get_settings.cache_clear()
    from ledger.application.service import LedgerApplication

    app = LedgerApplication(env=app_env, group_commit=True)
    try:
        assert app.sealer.defers and app.sealer.recovered.wait(5)
        ids = [s.open_encounter(app, patient_ref=f"PT-{i}") for i in range(8)]
        for eid in ids:
            s.code(app, eid, "E119")
        errors: list[BaseException] = []

        def write(eid) -> None:
            try:
                for _ in range(15):
                    s.line(app, eid, "99213", "10.00", [1])
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(eid,)) for eid in ids]
        for t in threads:
            t.start()
        reports = []
        while any(t.is_alive() for t in threads):
            reports.append(check(clean_db))
        for t in threads:
            t.join()
        last_commit = time.monotonic()
        assert not errors, errors[:1]
        assert app.writer.batches < app.writer.commands  # batches of several encounters ran
        assert app.sealer.fast_seals == 0  # none sealed in its transaction
        for report in reports:
            assert report.ok, report.problems[:3]
        wait_sealed(clean_db, BOUND + 1.0)
        assert time.monotonic() - last_commit < BOUND + 1.0
    finally:
        app.close()
    total = 8 * 2 + 8 * 15
    report = check(clean_db)
    assert report.ok and (report.covered, report.pending) == (total, 0), report.problems[:3]
    with psycopg.connect(clean_db) as conn:
        checkpoints = conn.execute("SELECT count(*) FROM ledger_checkpoints").fetchone()[0]
    assert checkpoints < total / 4  # signed every half bound, not per batch


def _replace_newest_with_the_chain_recomputed(url, encounter, version):
    """A careful forger, between the commit and the seal: the newest event of ``encounter``
    gets other content and a chain hash recomputed to match."""
    with psycopg.connect(url) as conn:  # the owner: the append-only trigger lets it through
        topic, state = conn.execute(
            "SELECT topic, state FROM ledger_events WHERE originator_id = %s "
            "AND originator_version = %s", (encounter, version)).fetchone()
        prev = conn.execute(
            "SELECT chain_hash FROM ledger_events WHERE originator_id = %s "
            "AND originator_version = %s", (encounter, version - 1)).fetchone()
        forged = bytes(state) + b" "
        conn.execute("UPDATE ledger_events SET state = %s, chain_hash = %s "
                     "WHERE originator_id = %s AND originator_version = %s",
                     (forged, chain_hash(bytes(prev[0]) if prev else GENESIS, encounter,
                                         version, topic, forged), encounter, version))


@pytest.mark.parametrize("batch", ["lone", "several"])
def test_an_event_altered_between_its_commit_and_its_seal_is_located(deferred, clean_db,
                                                                     batch):
    """The background sealer signs the leaves the writer committed, not what the table holds
    when it seals: a replacement made in between (chain recomputed) is reported as modified."""
    sealer = deferred.sealer
    eid = s.open_encounter(deferred)
    wait_sealed(clean_db, BOUND + 0.5)
    with background_sealer_paused(sealer):  # committed, not sealed yet
        if batch == "lone":
            s.code(deferred, eid, "E119")
            target, version, position = eid, 2, 2
        else:
            events = _copy_as_new_encounters(deferred, eid, 3)
            deferred.recorder.insert_events(events)
            target, version, position = events[1].originator_id, 1, 3
        assert backlog(clean_db)["unsealed_events"] == (1 if batch == "lone" else 3)
        _replace_newest_with_the_chain_recomputed(clean_db, target, version)
    wait_sealed(clean_db, BOUND + 0.5)
    report = check(clean_db)
    assert not report.ok
    first = report.first
    assert (first.kind, first.encounter_id, first.version, first.position) == (
        "modified", target, version, position), report.problems[:4]


def test_an_unsealed_event_is_pending_within_the_bound_and_inserted_after(deferred, clean_db):
    """The sealer cannot run (stopped here, as when this process died): the event is pending
    while younger than the bound, then reported where it is."""
    sealer = deferred.sealer
    sealer._stop.set()
    sealer._wake.set()
    sealer._thread.join(5)
    assert not sealer.defers
    eid = s.open_encounter(deferred)  # now sealed in its transaction (the sealer is gone)
    assert backlog(clean_db)["unsealed_events"] == 0
    # a legitimate event the sealer never saw: written with sealing off
    recorder = deferred.recorder
    recorder.sealer = None
    try:
        s.code(deferred, eid, "E119")
    finally:
        recorder.sealer = sealer
    status = backlog(clean_db)
    assert status["unsealed_events"] == 1 and status["oldest_unsealed_age_seconds"] < BOUND
    early = check(clean_db)
    assert early.ok and (early.pending, early.pending_from) == (1, 2)
    time.sleep(BOUND + 0.05)
    late = check(clean_db)
    assert late.counts == {"inserted": 1} and late.pending == 0
    assert (late.first.encounter_id, late.first.version, late.first.position) == (eid, 2, 2)
    assert backlog(clean_db)["oldest_unsealed_age_seconds"] >= BOUND


def test_ready_reports_the_backlog_and_its_age(deferred, clean_db):
    """What /ready (and /audit/sealing) embed: with the database, its unsealed events and the
    oldest one's age; without it (down), what this process committed and has not sealed."""
    sealer = deferred.sealer
    sealer._stop.set()  # the sealer cannot run (as while the database is down)
    sealer._wake.set()
    sealer._thread.join(5)
    eid = s.open_encounter(deferred)
    recorder = deferred.recorder
    recorder.sealer = None
    try:
        s.code(deferred, eid, "E119")  # committed, not sealed
    finally:
        recorder.sealer = sealer
    sealer.defer([(2, eid, 2, b"\0" * 32)])  # what the writer hands over after its commit
    time.sleep(0.05)
    with psycopg.connect(clean_db) as conn:
        status = sealing_status(sealer, conn)
    assert status["unsealed_events"] == 1 and status["oldest_unsealed_age_seconds"] >= 0.05
    down = sealing_status(sealer)  # no database
    assert down["deferred_events"] == 1 and down["oldest_deferred_seconds"] >= 0.05
    sealer._deferred.clear()


KILLED_WRITER = """
import sys, time, uuid
from eventsourcing.persistence import StoredEvent
from ledger.application.service import LedgerApplication
from ledger.config import Settings
from ledger.persistence.database import eventsourcing_env
from tests import builders as s
url = sys.argv[1]
app = LedgerApplication(env=eventsourcing_env(url, Settings(database_url=url, cache_size=0)))
assert app.sealer.defers and app.sealer.recovered.wait(10)
eid = s.open_encounter(app)
s.code(app, eid, "E119")
first = app.recorder.select_events(eid, lte=1)[0]
app.recorder.insert_events([StoredEvent(originator_id=uuid.uuid4(), originator_version=1,
                                        topic=first.topic, state=first.state)
                            for _ in range(2)])  # a batch of several encounters
print("committed", flush=True)
time.sleep(60)
"""


def test_killed_between_commit_and_seal_the_next_sealer_seals_on_restart(app_env, clean_db,
                                                                         monkeypatch):
    env = dict(os.environ, LEDGER_SEAL_MAX_DELAY="60", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, clean_db], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        line = proc.stdout.readline().decode()
        assert line.strip() == "committed", proc.stderr.read().decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert backlog(clean_db)["unsealed_events"] == 4  # committed, never sealed
    assert check(clean_db, pending_seconds=0).counts == {"inserted": 4}
    monkeypatch.setenv("LEDGER_SEAL_MAX_DELAY", str(BOUND))
    get_settings.cache_clear()
    from ledger.application.service import LedgerApplication

    restarted = LedgerApplication(env=app_env)  # no command: its sealer's first run seals
    try:
        wait_sealed(clean_db, 5)
        assert restarted.sealer.recovered_events == 4
    finally:
        restarted.close()
    report = check(clean_db, pending_seconds=0)
    assert report.ok and report.covered == 4, report.problems


def test_a_deferred_event_gone_from_the_log_is_reported_not_retried(deferred, clean_db,
                                                                    caplog):
    """An event the writer committed but the log no longer holds when the sealer runs (deleted
    behind the ledger's back): the sealer seals what is there, logs it, and does not spin."""
    s.open_encounter(deferred)
    wait_sealed(clean_db, BOUND + 0.5)
    sealer = deferred.sealer
    seals = sealer.deferred_seals
    sealer.defer([(99, uuid.uuid4(), 1, b"\0" * 32)])  # never in the log
    started = time.monotonic()
    while sealer.deferred_status()[0]:
        assert time.monotonic() - started < BOUND + 0.5, "still deferred"
        time.sleep(0.01)
    time.sleep(BOUND)
    assert sealer.deferred_seals == seals + 1  # once, not again and again
    assert any("no longer in the log" in r.getMessage() for r in caplog.records)
    assert check(clean_db).ok
