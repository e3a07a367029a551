"""Tamper tests (issue 8, acceptance 1): each bypasses the application with SQL as the owner
role, then `ledger verify` must fail naming the place; the untouched database passes.

History used by every test (make_history): three encounters e0, e1, e2 with four events each,
interleaved in the log, so e1's versions 1-4 sit at positions 2, 5, 8, 11 of 12. A signed
checkpoint seals all twelve before the tampering (deleting an encounter's newest event, a whole
encounter, or forging with a recomputed chain is caught by the checkpoint, not the chain).
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from ledger.audit.checkpoints import generate_key
from ledger.audit.verify import verify
from ledger.audit.writer import CheckpointWriter
from ledger.persistence.chain import GENESIS, chain_hash
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
def key(tmp_path: Path):
    return generate_key(tmp_path / "keys" / "checkpoint.pem")


@pytest.fixture
def sealed(app, clean_db, key, tmp_path):
    """The history, sealed by one checkpoint (exported to tmp_path/checkpoints)."""
    ids = make_history(app)
    writer = CheckpointWriter(clean_db, key, export_dir=tmp_path / "checkpoints")
    checkpoint = writer.run_once()
    writer.close()
    assert checkpoint is not None and checkpoint.tree_size == 12
    return ids


def run_sql(url: str, *statements: str, params: tuple = ()) -> None:
    with psycopg.connect(url) as conn:  # the owner: the append-only trigger lets it through
        for sql in statements:
            conn.execute(sql, params if "%s" in sql else ())


def check(url: str, key, tmp_path: Path, encounter=None):
    return verify(url, encounter=encounter, public_key=key.public_key(),
                  export_dir=tmp_path / "checkpoints")


def assert_first(report, kind: str, encounter, version: int, position: int | None) -> None:
    assert not report.ok
    first = report.first
    assert (first.kind, first.encounter_id, first.version) == (kind, encounter, version), \
        report.problems[:4]
    if position is not None:
        assert first.position == position, report.problems[:4]


def test_untouched_database_passes(sealed, clean_db, key, tmp_path):
    report = check(clean_db, key, tmp_path)
    assert report.ok, report.problems
    assert (report.events, report.encounters, report.covered, report.checkpoints) == (12, 3, 12, 1)
    assert report.exported_checkpoints == 1 and not report.warnings
    for eid in sealed:
        one = check(clean_db, key, tmp_path, encounter=eid)
        assert one.ok and one.events == 4


def test_one_byte_of_one_state_changed(sealed, clean_db, key, tmp_path):
    e1 = sealed[1]
    run_sql(clean_db, "UPDATE ledger_events SET state = set_byte(state, 10, "
            "get_byte(state, 10) # 1) WHERE originator_id = %s AND originator_version = 2",
            params=(e1,))
    assert_first(check(clean_db, key, tmp_path), "modified", e1, 2, 5)
    assert_first(check(clean_db, key, tmp_path, encounter=e1), "modified", e1, 2, 5)
    assert check(clean_db, key, tmp_path, encounter=sealed[0]).ok


def test_an_event_in_the_middle_deleted(sealed, clean_db, key, tmp_path):
    e1 = sealed[1]
    run_sql(clean_db, "DELETE FROM ledger_events WHERE originator_id = %s "
            "AND originator_version = 2", params=(e1,))
    report = check(clean_db, key, tmp_path)
    assert_first(report, "missing", e1, 2, 5)
    assert_first(check(clean_db, key, tmp_path, encounter=e1), "missing", e1, 2, 5)


def test_an_event_in_the_middle_deleted_is_caught_by_the_chain_alone(app, clean_db, key,
                                                                      tmp_path):
    ids = make_history(app)  # no checkpoint at all
    run_sql(clean_db, "DELETE FROM ledger_events WHERE originator_id = %s "
            "AND originator_version = 2", params=(ids[1],))
    report = check(clean_db, key, tmp_path)
    assert_first(report, "missing", ids[1], 2, 8)  # named at the next event present
    assert "version 2 is missing" in report.first.detail


def test_the_last_event_of_an_encounter_deleted(sealed, clean_db, key, tmp_path):
    e1 = sealed[1]
    run_sql(clean_db, "DELETE FROM ledger_events WHERE originator_id = %s "
            "AND originator_version = 4", params=(e1,))
    assert_first(check(clean_db, key, tmp_path), "missing", e1, 4, 11)
    assert_first(check(clean_db, key, tmp_path, encounter=e1), "missing", e1, 4, 11)


def test_the_newest_events_of_the_log_deleted(sealed, clean_db, key, tmp_path):
    run_sql(clean_db, "DELETE FROM ledger_events WHERE notification_id >= 11")
    report = check(clean_db, key, tmp_path)
    assert_first(report, "truncated", sealed[1], 4, 11)
    assert report.counts["truncated"] >= 2


def test_a_whole_encounter_deleted(sealed, clean_db, key, tmp_path):
    e1 = sealed[1]
    run_sql(clean_db, "DELETE FROM ledger_events WHERE originator_id = %s", params=(e1,))
    report = check(clean_db, key, tmp_path)
    assert_first(report, "missing", e1, 1, 2)
    assert report.counts["missing"] == 4
    assert_first(check(clean_db, key, tmp_path, encounter=e1), "missing", e1, 1, 2)


def test_two_events_versions_swapped(sealed, clean_db, key, tmp_path):
    e1 = sealed[1]
    run_sql(clean_db,
            "UPDATE ledger_events SET originator_version = -1 WHERE originator_id = %s "
            "AND originator_version = 2",
            "UPDATE ledger_events SET originator_version = 2 WHERE originator_id = %s "
            "AND originator_version = 3",
            "UPDATE ledger_events SET originator_version = 3 WHERE originator_id = %s "
            "AND originator_version = -1", params=(e1,))
    report = check(clean_db, key, tmp_path)
    assert_first(report, "reordered", e1, 2, 5)
    assert_first(check(clean_db, key, tmp_path, encounter=e1), "reordered", e1, 2, 5)


def test_two_events_versions_swapped_is_caught_by_the_chain_alone(app, clean_db, key,
                                                                  tmp_path):
    ids = make_history(app)
    e1 = ids[1]
    run_sql(clean_db,
            "UPDATE ledger_events SET originator_version = -1 WHERE originator_id = %s "
            "AND originator_version = 2",
            "UPDATE ledger_events SET originator_version = 2 WHERE originator_id = %s "
            "AND originator_version = 3",
            "UPDATE ledger_events SET originator_version = 3 WHERE originator_id = %s "
            "AND originator_version = -1", params=(e1,))
    report = check(clean_db, key, tmp_path)
    assert report.first.kind == "reordered" and report.first.encounter_id == e1


def _rechain(url: str, encounter) -> None:
    """What a careful forger does: recompute the encounter's whole chain."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT originator_version, topic, state FROM ledger_events "
                            "WHERE originator_id = %s ORDER BY originator_version",
                            (encounter,)).fetchall()
        prev = GENESIS
        for version, topic, state in rows:
            prev = chain_hash(prev, encounter, version, topic, bytes(state))
            conn.execute("UPDATE ledger_events SET chain_hash = %s WHERE originator_id = %s "
                         "AND originator_version = %s", (prev, encounter, version))


def test_a_forged_event_inserted_with_a_recomputed_chain(sealed, clean_db, key, tmp_path):
    e1 = sealed[1]
    # Make room at version 3 (4 -> 5, 3 -> 4), insert a forged version 3 (a copy of version 2's
    # topic and state), and recompute the chain so that every hash checks out.
    run_sql(clean_db,
            "UPDATE ledger_events SET originator_version = 5 WHERE originator_id = %s "
            "AND originator_version = 4",
            "UPDATE ledger_events SET originator_version = 4 WHERE originator_id = %s "
            "AND originator_version = 3",
            "INSERT INTO ledger_events (originator_id, originator_version, topic, state, "
            "chain_hash) SELECT originator_id, 3, topic, state, chain_hash FROM ledger_events "
            "WHERE originator_id = %s AND originator_version = 2", params=(e1,))
    _rechain(clean_db, e1)
    report = check(clean_db, key, tmp_path)
    assert_first(report, "inserted", e1, 3, 8)
    assert "now at position 13" in report.first.detail
    assert report.counts.get("modified", 0) == 0 or report.first.kind == "inserted"
    assert_first(check(clean_db, key, tmp_path, encounter=e1), "inserted", e1, 3, 8)


def test_a_rewritten_event_with_a_recomputed_chain(sealed, clean_db, key, tmp_path):
    e1 = sealed[1]
    run_sql(clean_db, "UPDATE ledger_events SET state = set_byte(state, 10, "
            "get_byte(state, 10) # 1) WHERE originator_id = %s AND originator_version = 3",
            params=(e1,))
    _rechain(clean_db, e1)
    assert_first(check(clean_db, key, tmp_path), "modified", e1, 3, 8)
    assert_first(check(clean_db, key, tmp_path, encounter=e1), "modified", e1, 3, 8)


def test_a_forged_event_at_a_sealed_position(sealed, clean_db, key, tmp_path):
    """A forged event slipped in at a position before the others (a free notification id)."""
    e1 = sealed[1]
    with psycopg.connect(clean_db) as conn:
        prev = conn.execute("SELECT chain_hash FROM ledger_events WHERE originator_id = %s "
                            "AND originator_version = 4", (e1,)).fetchone()[0]
        topic, state = conn.execute("SELECT topic, state FROM ledger_events WHERE "
                                    "originator_id = %s AND originator_version = 4",
                                    (e1,)).fetchone()
        h = chain_hash(bytes(prev), e1, 5, topic, bytes(state))
        conn.execute("INSERT INTO ledger_events (originator_id, originator_version, topic, "
                     "state, chain_hash, notification_id) VALUES (%s, 5, %s, %s, %s, 0)",
                     (e1, topic, state, h))
    report = check(clean_db, key, tmp_path)
    assert_first(report, "inserted", e1, 5, 0)


def test_a_checkpoint_record_altered_or_deleted(sealed, app, clean_db, key, tmp_path):
    s_ids = sealed
    from tests import builders as s

    s.code(app, s_ids[0], "J45901")
    writer = CheckpointWriter(clean_db, key, export_dir=tmp_path / "checkpoints")
    assert writer.run_once().tree_size == 13
    writer.close()
    assert check(clean_db, key, tmp_path).ok
    # The owner rewrites the newest checkpoint's root: signature and export disagree.
    run_sql(clean_db, "UPDATE ledger_checkpoints SET root_hash = sha256(root_hash) "
            "WHERE tree_size = 13")
    report = check(clean_db, key, tmp_path)
    assert not report.ok and report.first.kind == "checkpoint"
    assert "signature" in report.first.detail
    # Deleting it (and the event it sealed) is caught by the exported copy.
    run_sql(clean_db, "DELETE FROM ledger_checkpoints WHERE tree_size = 13",
            "DELETE FROM ledger_audit_leaves WHERE notification_id = 13",
            "DELETE FROM ledger_events WHERE notification_id = 13")
    report = check(clean_db, key, tmp_path)
    assert not report.ok
    assert {"checkpoint", "truncated"} <= set(report.counts)
    assert any("missing from the database" in p.detail for p in report.problems)


def test_a_checkpoint_signed_by_another_key_is_refused(sealed, clean_db, tmp_path):
    other = generate_key(tmp_path / "other.pem")
    report = verify(clean_db, public_key=other.public_key())
    assert not report.ok and report.first.kind == "checkpoint"
    assert "not a trusted key" in report.first.detail


def test_cli_verify_exit_codes_and_the_first_bad_place(sealed, clean_db, key, tmp_path,
                                                       monkeypatch):
    from ledger.cli.main import app as cli
    from ledger.config import get_settings

    monkeypatch.setenv("LEDGER_DATABASE_URL", clean_db)
    monkeypatch.setenv("LEDGER_CHECKPOINT_KEY_FILE", str(tmp_path / "keys" / "checkpoint.pem"))
    monkeypatch.setenv("LEDGER_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        ok = runner.invoke(cli, ["verify"])
        assert ok.exit_code == 0, ok.output
        assert "OK" in ok.output
        e1 = sealed[1]
        run_sql(clean_db, "UPDATE ledger_events SET state = set_byte(state, 10, "
                "get_byte(state, 10) # 1) WHERE originator_id = %s AND originator_version = 2",
                params=(e1,))
        bad = runner.invoke(cli, ["verify"])
        assert bad.exit_code == 1
        assert "FAILED" in bad.output and "modified" in bad.output
        assert str(e1) in bad.output and "position 5" in bad.output
        one = runner.invoke(cli, ["verify", "--encounter", str(e1), "--json"])
        assert one.exit_code == 1
        assert '"kind": "modified"' in one.output
    finally:
        get_settings.cache_clear()


def test_the_leaf_record_altered_along_with_the_log(sealed, clean_db, key, tmp_path):
    """A forger who also deletes the sealed leaf: the signed root still gives it away."""
    e1 = sealed[1]
    run_sql(clean_db, "DELETE FROM ledger_events WHERE originator_id = %s "
            "AND originator_version = 4", "DELETE FROM ledger_audit_leaves WHERE "
            "originator_id = %s AND originator_version = 4", params=(e1,))
    report = check(clean_db, key, tmp_path)
    assert not report.ok
    assert report.first.kind in ("checkpoint", "truncated")
    assert any("leaf record" in w for w in report.warnings)


def test_a_snapshot_altered(app_env, clean_db, key, tmp_path):
    """Snapshots are a cache the application trusts: each must equal the replayed events."""
    from ledger.application.service import LedgerApplication

    snapshotting = LedgerApplication(env=app_env, snapshot_interval=2)
    try:
        ids = make_history(snapshotting)
    finally:
        snapshotting.close()
    e1 = ids[1]
    one = check(clean_db, key, tmp_path, encounter=e1)
    assert one.ok and one.snapshots == 2
    run_sql(clean_db, "UPDATE ledger_snapshots SET state = convert_to(replace(convert_from("
            "state, 'UTF8'), 'FAC-01', 'FAC-99'), 'UTF8') WHERE originator_id = %s "
            "AND originator_version = 4", params=(e1,))
    report = check(clean_db, key, tmp_path, encounter=e1)
    assert_first(report, "modified", e1, 4, None)
    assert "snapshot at version 4" in report.first.detail
    assert check(clean_db, key, tmp_path).ok  # the whole-log check skips snapshots by default
    full = verify(clean_db, public_key=key.public_key(), snapshots=True)
    assert_first(full, "modified", e1, 4, None)
    assert full.snapshots == 6
