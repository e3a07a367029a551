"""`ledger import FILE…`: type detection, summary table, exit status."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.conftest import FIXTURES

pytestmark = pytest.mark.postgres


def test_ledger_import_summary(clean_db, monkeypatch):
    from ledger.cli.main import app
    from ledger.config import get_settings

    monkeypatch.setenv("LEDGER_DATABASE_URL", clean_db)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        files = [str(FIXTURES / "scenarios/s01_original_freq1.837p"),
                 str(FIXTURES / "scenarios/s01_copay_co45.835"),
                 str(FIXTURES / "scenarios/s01_copay_co45.835"),
                 str(FIXTURES / "x12/keironstoddart-edi-835-parser/emedny_sample.txt")]
        result = runner.invoke(app, ["import", *files])
        assert result.exit_code == 0, result.output
        out = result.output
        for word in ("imported", "posted", "duplicate", "unmatched", "quarantined", "total"):
            assert word in out
        bad = runner.invoke(app, ["import", str(
            FIXTURES / "x12/linuxforhealth-x12/835_005010X221A1__tertiary-payment.835"),
            "--json"])
        assert bad.exit_code == 1
        assert "835.line_balance" in bad.output
    finally:
        get_settings.cache_clear()
