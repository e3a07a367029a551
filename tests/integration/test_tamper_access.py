"""The read-access log is sealed like the events: changing, deleting or slipping in an access
record after it was sealed makes `ledger verify` fail. Records are sealed only once final, in
(tx, id) order, so a slow transaction's record is never skipped."""

from __future__ import annotations

import time

import psycopg
import pytest

from ledger.audit.access import record_access
from ledger.audit.checkpoints import generate_key
from ledger.audit.seals import load_exported_seals
from ledger.audit.verify import verify
from ledger.audit.writer import CheckpointWriter

pytestmark = pytest.mark.postgres


@pytest.fixture
def key(tmp_path):
    return generate_key(tmp_path / "k.pem")


def seal(url, key, tmp_path, expect: int | None = None):
    """Seal; with ``expect``, until that many records are sealed: a record is final only once
    every older transaction in the cluster has ended (other test sessions share it)."""
    writer = CheckpointWriter(url, key, export_dir=tmp_path / "cp")
    deadline = time.monotonic() + 60
    try:
        while True:
            writer.catch_up()
            with psycopg.connect(url) as conn:
                sealed = conn.execute("SELECT coalesce(max(tree_size), 0) FROM "
                                      "ledger_access_seals").fetchone()[0]
            if expect is None or sealed >= expect or time.monotonic() > deadline:
                return sealed
            time.sleep(0.05)
    finally:
        writer.close()


def check(url, key, tmp_path):
    return verify(url, public_key=key.public_key(), export_dir=tmp_path / "cp")


def record(url, n: int) -> list[int]:
    return [record_access(url, actor=f"coder-{i}", actor_role="coder",
                          resource_type="encounter", resource_id=f"r-{i}", client="10.0.0.9",
                          status=200) for i in range(n)]


def test_sealed_access_records_verify(clean_db, key, tmp_path):
    record(clean_db, 3)
    assert seal(clean_db, key, tmp_path, expect=3) == 3
    record(clean_db, 2)
    assert seal(clean_db, key, tmp_path, expect=5) == 5
    report = check(clean_db, key, tmp_path)
    assert report.ok, report.problems
    assert (report.access_seals, report.access_records) == (2, 5)
    seals = load_exported_seals(tmp_path / "cp")
    assert [s.tree_size for s in seals] == [3, 5] and seals[1].extends(seals[0])
    assert seals[1].signature_valid(key.public_key())


@pytest.mark.parametrize("tamper", [
    "UPDATE ledger_access_log SET actor = 'someone-else' WHERE id = 2",
    "UPDATE ledger_access_log SET outcome = 'denied' WHERE id = 2",
    "DELETE FROM ledger_access_log WHERE id = 2",
    "DELETE FROM ledger_access_log WHERE id = 3",
    "INSERT INTO ledger_access_log (actor, resource_type, outcome, tx) "
    "SELECT 'forger', 'encounter', 'allowed', tx FROM ledger_access_log WHERE id = 1",
])
def test_altered_access_log_is_detected(clean_db, key, tmp_path, tamper):
    record(clean_db, 3)
    assert seal(clean_db, key, tmp_path, expect=3) == 3
    record(clean_db, 1)  # a later record, not sealed yet
    with psycopg.connect(clean_db) as conn:  # the owner
        conn.execute(tamper)
    report = check(clean_db, key, tmp_path)
    assert not report.ok
    assert report.first.kind in ("modified", "truncated", "inserted")
    assert "access" in report.first.detail


def test_a_slow_transactions_record_is_sealed_in_order_not_skipped(clean_db, key, tmp_path):
    slow = psycopg.connect(clean_db)
    try:
        record_access(slow, actor="slow", resource_type="encounter")  # not committed yet
        record(clean_db, 2)  # later transactions, committed
        assert seal(clean_db, key, tmp_path) == 0  # nothing is final: "slow" is older
        slow.commit()
    finally:
        slow.close()
    assert seal(clean_db, key, tmp_path, expect=3) == 3
    report = check(clean_db, key, tmp_path)
    assert report.ok and report.access_records == 3
