"""The suite leaves the user's data directory alone (issue 17, item 1): a `make run` beside
`make test` keeps its database, keys and exported checkpoints to itself, and the tests never
read what the running service exported."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import builders as s
from tests.conftest import ROOT, SESSION_DIR, USER_DATA_DIR, _server_url

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _writers_do_not_seal(monkeypatch):
    """These tests make another log's checkpoints with the checkpoint job, which seals what
    writers left unsealed (as with LEDGER_SEAL_PER_BATCH=0)."""
    from ledger.config import get_settings

    monkeypatch.setenv("LEDGER_SEAL_PER_BATCH", "0")
    get_settings.cache_clear()


def _tree(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``directory``: content hash and modification time (ns)."""
    return {str(p.relative_to(directory)): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                            p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_every_data_dir_setting_points_at_the_session_dir():
    from ledger.codes.icd10cm import _cache_dir  # noqa: PLC2701
    from ledger.config import Settings

    audit = Settings()
    for path in (Settings().data_dir, audit.key_file, audit.export_dir):
        resolved = Path(path).resolve()
        assert resolved.is_relative_to(SESSION_DIR), path
        assert not resolved.is_relative_to(USER_DATA_DIR), path
    assert Settings().database_url is None  # never the user's LEDGER_DATABASE_URL
    cache = _cache_dir()
    assert cache is None or Path(cache).resolve().is_relative_to(ROOT / ".ledger" / "test")


def test_a_user_data_dir_with_another_logs_checkpoints_is_neither_read_nor_written(
        app, clean_db, tmp_path):
    """The failure this fixes: `make run` exported checkpoints of its database into
    `.ledger/checkpoints/`, and `test_verify_over_http` read them ("exported checkpoint is
    missing from the database"). Here a user data dir holds real checkpoints of another log
    (and its key); a test session run with LEDGER_DATA_DIR / LEDGER_CHECKPOINT_DIR pointing at
    it passes, and the directory is byte-for-byte and mtime-for-mtime unchanged."""
    from ledger.audit.checkpoints import generate_key
    from ledger.audit.writer import CheckpointWriter

    user_dir = tmp_path / "user-data"
    key = generate_key(user_dir / "keys" / "checkpoint-ed25519.pem")
    eid = s.open_encounter(app)
    for code in ("E119", "I10", "J069"):
        s.code(app, eid, code)
    writer = CheckpointWriter(clean_db, key, export_dir=user_dir / "checkpoints")
    try:
        assert writer.run_once() is not None
    finally:
        writer.close()
    before = _tree(user_dir)
    assert any(name.startswith("checkpoints/checkpoint-") for name in before)

    env = {**os.environ, "LEDGER_DATA_DIR": str(user_dir),
           "LEDGER_CHECKPOINT_DIR": str(user_dir / "checkpoints"),
           "LEDGER_CHECKPOINT_KEY_FILE": str(user_dir / "keys" / "checkpoint-ed25519.pem"),
           "LEDGER_DATABASE_URL": clean_db,  # the "running service's" database
           "LEDGER_TEST_DATABASE_URL": _server_url()}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/integration/test_chain_access.py::test_verify_over_http",
         "tests/integration/test_chain_checkpoints.py::test_the_in_process_job_of_ledger_serve"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout
    assert _tree(user_dir) == before
