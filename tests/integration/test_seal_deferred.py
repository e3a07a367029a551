"""Deferred sealing (issue 14): a lone command's batch commits without its seal and is signed
by the writer's background sealer within LEDGER_SEAL_MAX_DELAY; a batch of several encounters
is sealed in its transaction, together with the deferred events before it; `ledger verify`
counts unsealed events younger than the bound as pending and reports older ones as inserted;
a process killed between commit and seal leaves its events to the next sealer run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from ledger.audit.checkpoints import load_public_key, public_path
from ledger.audit.sealing import sealing_status, unsealed_backlog
from ledger.audit.verify import verify
from ledger.config import get_settings
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


def test_a_batch_of_several_encounters_seals_the_deferred_events_before_it(deferred,
                                                                          clean_db):
    sealer = deferred.sealer
    eid = s.open_encounter(deferred)
    before = sealer.fast_seals
    pending = sealer.deferred_status()[0]
    deferred.recorder.insert_events(_copy_as_new_encounters(deferred, eid, 2))
    if pending:  # the lone command's event was still deferred: this batch's seal covers it
        assert sealer.fast_seals + sealer.read_seals > before
    assert sealer.deferred_status()[0] == 0
    assert backlog(clean_db)["unsealed_events"] == 0  # sealed in the batch's transaction
    report = check(clean_db)
    assert report.ok and report.covered == 3, report.problems


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
import sys, time
from ledger.application.service import LedgerApplication
from ledger.config import Settings
from ledger.persistence.database import eventsourcing_env
from tests import builders as s
url = sys.argv[1]
app = LedgerApplication(env=eventsourcing_env(url, Settings(database_url=url, cache_size=0)))
assert app.sealer.defers and app.sealer.recovered.wait(10)
eid = s.open_encounter(app)
s.code(app, eid, "E119")
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
    assert backlog(clean_db)["unsealed_events"] == 2  # committed, never sealed
    assert check(clean_db, pending_seconds=0).counts == {"inserted": 2}
    monkeypatch.setenv("LEDGER_SEAL_MAX_DELAY", str(BOUND))
    get_settings.cache_clear()
    from ledger.application.service import LedgerApplication

    restarted = LedgerApplication(env=app_env)  # no command: its sealer's first run seals
    try:
        wait_sealed(clean_db, 5)
        assert restarted.sealer.recovered_events == 2
    finally:
        restarted.close()
    report = check(clean_db, pending_seconds=0)
    assert report.ok and report.covered == 2, report.problems


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
