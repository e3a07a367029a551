"""Which pg_dump/pg_restore a backup uses: the closest version at or above the server's (a
newer pg_dump writes settings, e.g. ``SET transaction_timeout``, that an older server refuses
when the dump is restored)."""

from __future__ import annotations

import pytest

from ledger.persistence.backup import BackupError, find_tool


def fake_tool(folder, name: str, major: int):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) {major}.1'\n")
    path.chmod(0o755)
    return path


def test_the_closest_version_at_or_above_the_server_is_chosen(tmp_path, monkeypatch):
    path = fake_tool(tmp_path / "bin16", "pg_dump", 16)
    monkeypatch.setenv("LEDGER_PG_BIN", str(path.parent))
    tool = find_tool("pg_dump", 16)  # the embedded package ships 18: 16 is closer
    assert (tool.path, tool.major) == (path, 16)
    assert find_tool("pg_dump", 17).major >= 17  # 16 cannot serve a 17 server


def test_no_tool_new_enough_is_refused_with_a_hint(tmp_path, monkeypatch):
    with pytest.raises(BackupError, match="LEDGER_PG_BIN"):
        find_tool("pg_dump", 99)
