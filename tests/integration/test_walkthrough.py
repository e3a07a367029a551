"""The README walk-through (issue 17, item 6) is a script, and it runs: scripts/walkthrough.sh
starts the service on LEDGER_PORT (here on a scratch database of the test server), waits for
/health, captures tokens into variables and takes a claim from open to paid. The README shows
the same script, verbatim."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT, _server_url, _with_db

pytestmark = pytest.mark.postgres
SCRIPT = ROOT / "scripts" / "walkthrough.sh"


def test_the_readme_shows_the_script_verbatim():
    body = SCRIPT.read_text()
    start = body.index("set -euo pipefail")
    assert body[start:] in (ROOT / "README.md").read_text()


def test_the_walkthrough_runs(tmp_path):
    server = _server_url()
    name = f"ledger_walk_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "LEDGER_DATABASE_URL": _with_db(server, name),
           "LEDGER_PORT": str(port), "LEDGER_DATA_DIR": str(tmp_path),
           "LEDGER": str(Path(sys.executable).parent / "ledger")}
    try:
        done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                              timeout=240)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "claim C-0001: paid" in done.stdout
        assert '"status":"ok"' in done.stdout  # it waited for /health
        with psycopg.connect(_with_db(server, name)) as conn:
            users = {r[0] for r in conn.execute("SELECT user_id FROM ledger_users")}
        assert users == {"walk-coder", "walk-biller"}
        # the server it started is gone: the port is free again
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
