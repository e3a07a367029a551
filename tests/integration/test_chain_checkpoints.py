"""Signed checkpoints on real PostgreSQL: sealing, export, RFC 6962 consistency between
successive checkpoints, resuming, concurrent writers and sealing while the log grows."""

from __future__ import annotations

import json
import threading
import time
import uuid
from urllib.parse import urlparse, urlunparse

import psycopg
import pytest
from typer.testing import CliRunner

from ledger.audit import merkle
from ledger.audit.checkpoints import (
    Checkpoint,
    export_path,
    generate_key,
    load_checkpoints,
    load_exported,
    load_public_key,
    public_path,
)
from ledger.audit.verify import verify
from ledger.audit.writer import CheckpointWriter
from tests import builders as s
from tests.integration.test_chain import make_history

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _writers_do_not_seal(monkeypatch):
    """These tests exercise the checkpoint job, which seals what writers left unsealed (as
    with LEDGER_SEAL_PER_BATCH=0); per-batch sealing: tests/integration/test_tamper_tail.py."""
    from ledger.config import get_settings

    monkeypatch.setenv("LEDGER_SEAL_PER_BATCH", "0")
    get_settings.cache_clear()


@pytest.fixture
def key(tmp_path):
    return generate_key(tmp_path / "keys" / "cp.pem")


def leaves_of(url: str) -> list[bytes]:
    with psycopg.connect(url) as conn:
        return [merkle.event_leaf(nid, bytes(h)) for nid, h in conn.execute(
            "SELECT notification_id, chain_hash FROM ledger_events ORDER BY notification_id")]


def test_key_files(tmp_path, key):
    path = tmp_path / "keys" / "cp.pem"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_public_key(public_path(path)) == key.public_key()
    assert load_public_key(path) == key.public_key()
    with pytest.raises(FileExistsError):
        generate_key(path)


def test_a_checkpoint_seals_the_log(app, clean_db, key, tmp_path):
    make_history(app)
    writer = CheckpointWriter(clean_db, key, export_dir=tmp_path / "cp", origin="test-log")
    c = writer.run_once()
    assert writer.run_once() is None  # nothing new
    writer.close()
    assert (c.tree_size, c.last_position, c.previous_size) == (12, 12, None)
    assert c.root_hash == merkle.root(leaves_of(clean_db))
    assert c.signature_valid(key.public_key())
    lines = c.signed_text().splitlines()
    assert lines[:2] == ["test-log", "12"] and lines[3] == "position 12"
    # Stored and exported identically.
    with psycopg.connect(clean_db) as conn:
        (stored,) = load_checkpoints(conn)
        assert conn.execute("SELECT count(*) FROM ledger_audit_leaves").fetchone()[0] == 12
    (exported,) = load_exported(tmp_path / "cp")
    for other in (stored, exported):
        assert (other.tree_size, other.root_hash, other.signature, other.time) == \
            (c.tree_size, c.root_hash, c.signature, c.time)
        assert other.signature_valid(key.public_key())
    data = json.loads(export_path(tmp_path / "cp", 12).read_text())
    assert data["body"] == c.signed_text() and data["key_id"] == c.key_id


def test_successive_checkpoints_are_provably_consistent(app, clean_db, key, tmp_path):
    ids = make_history(app, encounters=2)
    writer = CheckpointWriter(clean_db, key, export_dir=tmp_path / "cp", max_leaves=3)
    made = writer.catch_up()
    assert [c.tree_size for c in made] == [3, 6, 8]
    s.code(app, ids[0], "J45901")
    s.code(app, ids[1], "J45901")
    # A restarted writer resumes from the last checkpoint's frontier.
    writer.close()
    writer = CheckpointWriter(clean_db, key, export_dir=tmp_path / "cp", max_leaves=3)
    made += writer.catch_up()
    writer.close()
    assert [c.tree_size for c in made] == [3, 6, 8, 10]
    leaves = leaves_of(clean_db)
    for prev, cur in zip(made, made[1:], strict=False):
        assert cur.previous_size == prev.tree_size
        assert cur.extends(prev)
        assert list(cur.consistency_proof) == merkle.consistency_proof(
            prev.tree_size, cur.tree_size, merkle.LeafList(leaves))
        # A proof does not carry over to a different old root.
        forged = Checkpoint(**{**prev.__dict__, "root_hash": merkle.root(leaves[1:4])})
        assert not cur.extends(forged)
    for c in made:
        assert c.root_hash == merkle.root(leaves[:c.tree_size])
    assert len(load_exported(tmp_path / "cp")) == 4
    report = verify(clean_db, public_key=key.public_key(), export_dir=tmp_path / "cp")
    assert report.ok and report.checkpoints == 4 and report.covered == 10
    for eid in ids:  # one encounter: the latest checkpoint only (it has predecessors)
        one = verify(clean_db, encounter=eid, public_key=key.public_key(),
                     export_dir=tmp_path / "cp")
        assert one.ok, one.problems


def test_export_missing_rewrites_lost_files(app, clean_db, key, tmp_path):
    make_history(app, encounters=1)
    writer = CheckpointWriter(clean_db, key, export_dir=tmp_path / "cp")
    writer.run_once()
    export_path(tmp_path / "cp", 4).unlink()
    report = verify(clean_db, public_key=key.public_key(), export_dir=tmp_path / "cp")
    assert report.ok  # a missing file is not tampering with the log
    assert writer.export_missing() == 1
    writer.close()
    assert export_path(tmp_path / "cp", 4).exists()


def test_two_writers_at_once_take_turns(app, clean_db, key, tmp_path):
    make_history(app)
    writers = [CheckpointWriter(clean_db, key, export_dir=tmp_path / "cp", max_leaves=2)
               for _ in range(2)]
    results: list = []
    threads = [threading.Thread(target=lambda w=w: results.extend(w.catch_up()))
               for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in writers:
        w.close()
    assert sorted(c.tree_size for c in results) == [2, 4, 6, 8, 10, 12]
    assert verify(clean_db, public_key=key.public_key(), export_dir=tmp_path / "cp").ok


def test_sealing_while_writers_append_skips_nothing(app, clean_db, key, tmp_path):
    """Concurrent writers and a background checkpoint job: every committed event ends up
    sealed exactly once, in log order (the table lock orders commits by position)."""
    ids = [s.open_encounter(app) for _ in range(4)]
    writer = CheckpointWriter(clean_db, key, export_dir=tmp_path / "cp")
    thread, stop = writer.start_background(interval=0.005)
    errors: list[BaseException] = []

    def work(eid) -> None:
        try:
            for _ in range(15):
                app.execute(eid, "add_service_line", actor=s.CODER_A, procedure_code="99213",
                            charge="10.00", pointers=[], units=1, modifiers=None,
                            rendering_npi=s.NPI)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(eid,)) for eid in ids]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    thread.join(timeout=10)
    assert not errors
    final = CheckpointWriter(clean_db, key, export_dir=tmp_path / "cp")
    final.catch_up()
    final.close()
    with psycopg.connect(clean_db) as conn:
        checkpoints = load_checkpoints(conn)
        sealed = conn.execute("SELECT count(*) FROM ledger_audit_leaves").fetchone()[0]
    assert checkpoints[-1].tree_size == sealed == 4 + 60
    assert len(checkpoints) > 1
    report = verify(clean_db, public_key=key.public_key(), export_dir=tmp_path / "cp")
    assert report.ok, report.problems[:3]


def test_cli_checkpoints_commands(app, clean_db, tmp_path, monkeypatch):
    from ledger.cli.main import app as cli
    from ledger.config import get_settings

    make_history(app, encounters=2)
    monkeypatch.setenv("LEDGER_DATABASE_URL", clean_db)
    monkeypatch.setenv("LEDGER_CHECKPOINT_KEY_FILE", str(tmp_path / "k" / "key.pem"))
    monkeypatch.setenv("LEDGER_CHECKPOINT_DIR", str(tmp_path / "cp"))
    monkeypatch.setenv("LEDGER_CHECKPOINT_MAX_LEAVES", "5")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        out = runner.invoke(cli, ["checkpoints", "keygen"])
        assert out.exit_code == 0 and "key id" in out.output
        assert runner.invoke(cli, ["checkpoints", "keygen"]).exit_code == 1  # never silently
        out = runner.invoke(cli, ["checkpoints", "run", "--once"])
        assert out.exit_code == 0, out.output
        assert "checkpoint 5" in out.output and "checkpoint 8" in out.output
        out = runner.invoke(cli, ["checkpoints", "list"])
        assert out.exit_code == 0 and "8" in out.output
        out = runner.invoke(cli, ["checkpoints", "prove", "5", "8"])
        assert out.exit_code == 0, out.output
        assert json.loads(out.output)["verifies"] is True
        out = runner.invoke(cli, ["verify"])
        assert out.exit_code == 0, out.output
        assert "8 events" in out.output.replace(",", "") or "OK" in out.output
    finally:
        get_settings.cache_clear()


def test_the_in_process_job_of_ledger_serve(app, clean_db, tmp_path, monkeypatch):
    from ledger.audit.sealing import log_export_dir
    from ledger.audit.writer import start_in_process
    from ledger.config import get_settings

    monkeypatch.setenv("LEDGER_CHECKPOINT_KEY_FILE", str(tmp_path / "k" / "key.pem"))
    monkeypatch.setenv("LEDGER_CHECKPOINT_DIR", str(tmp_path / "cp"))
    monkeypatch.setenv("LEDGER_CHECKPOINT_INTERVAL", "0.05")
    monkeypatch.setenv("LEDGER_CHECKPOINTS_IN_PROCESS", "0")
    # writers that do not seal their batches (this test's app): the job seals the events
    monkeypatch.setenv("LEDGER_SEAL_PER_BATCH", "0")
    get_settings.cache_clear()
    directory = log_export_dir(tmp_path / "cp", clean_db)  # one directory per log
    try:
        assert start_in_process(clean_db) is None
        monkeypatch.setenv("LEDGER_CHECKPOINTS_IN_PROCESS", "1")
        get_settings.cache_clear()
        make_history(app, encounters=1)
        thread, stop = start_in_process(clean_db)
        try:
            deadline = time.monotonic() + 30
            while not list(directory.glob("checkpoint-*.json")):
                assert time.monotonic() < deadline, "no checkpoint written"
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(timeout=10)
        assert not thread.is_alive()
        assert (tmp_path / "k" / "key.pem").exists()  # generated on first use
        key = load_public_key(tmp_path / "k" / "key.pem.pub")
        assert verify(clean_db, public_key=key, export_dir=directory).ok
        from ledger.audit.sealing import log_id

        with psycopg.connect(clean_db) as conn:  # the log id kept in the database (0099)
            stored = conn.execute("SELECT log_id::text FROM ledger_log_identity").fetchone()[0]
            assert directory.name == log_id(conn) == stored
    finally:
        get_settings.cache_clear()


def test_key_rotation_keeps_old_checkpoints_verifiable(app, clean_db, tmp_path, monkeypatch):
    from ledger.audit.checkpoints import trusted_public_key
    from ledger.config import get_settings

    path = tmp_path / "keys" / "cp.pem"
    monkeypatch.setenv("LEDGER_CHECKPOINT_KEY_FILE", str(path))
    get_settings.cache_clear()
    try:
        first = generate_key(path)
        make_history(app, encounters=1)
        writer = CheckpointWriter(clean_db, first, export_dir=tmp_path / "cp")
        writer.run_once()
        writer.close()
        second = generate_key(path, overwrite=True)  # rotation: the old .pub is kept
        s.code(app, make_history(app, encounters=1)[0], "J45901")
        writer = CheckpointWriter(clean_db, second, export_dir=tmp_path / "cp")
        writer.run_once()
        writer.close()
        ring = trusted_public_key()
        assert ring is not None and len(ring) == 2
        assert verify(clean_db, public_key=ring, export_dir=tmp_path / "cp").ok
        only_new = verify(clean_db, public_key=second.public_key(), export_dir=tmp_path / "cp")
        assert not only_new.ok and "not a trusted key" in only_new.first.detail
    finally:
        get_settings.cache_clear()


def test_two_databases_share_one_data_directory(app, clean_db, key, tmp_path):
    """Exported checkpoints are kept per log (system identifier + database name), so two
    databases whose services share one data directory each verify clean, and neither reads
    the other's exports (before, the second looked tampered: "missing from the database")."""
    from ledger.application.service import LedgerApplication
    from ledger.audit.sealing import log_export_dir
    from ledger.config import Settings
    from ledger.persistence.database import eventsourcing_env
    from ledger.persistence.migrate import NO_TIMEOUTS, migrate

    name = f"ledger_second_{uuid.uuid4().hex[:8]}"
    other = urlunparse(urlparse(clean_db)._replace(path="/" + name))
    with psycopg.connect(clean_db, autocommit=True, options=NO_TIMEOUTS) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate(other)
        second = LedgerApplication(env=eventsourcing_env(
            other, Settings(database_url=other, cache_size=0)))
        try:
            make_history(app)
            make_history(second, encounters=2)  # a different log: another size, other roots
        finally:
            second.close()
        shared = tmp_path / "one-data-dir" / "checkpoints"
        sizes = {}
        for url in (clean_db, other):
            writer = CheckpointWriter(url, key, export_dir=log_export_dir(shared, url))
            sizes[url] = writer.run_once().tree_size
            writer.close()
        assert sizes[clean_db] == 12 and sizes[other] == 8
        assert len([p for p in shared.iterdir() if p.is_dir()]) == 2
        for url in (clean_db, other):
            report = verify(url, public_key=key.public_key(),
                            export_dir=log_export_dir(shared, url))
            assert report.ok, report.problems
            assert report.exported_checkpoints == 1 and report.covered == sizes[url]
    finally:
        with psycopg.connect(clean_db, autocommit=True, options=NO_TIMEOUTS) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
