"""The command line as an operator meets it (issue 17, item 6): full help everywhere, roles as
a choice, `--json` that prints only JSON on stdout, tables that are not cut when piped, a
missing database as one line, and a demo that says what it loaded (with a dispute the demo
advocate can read) or why it loaded nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
import typer.main
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ledger.cli.main import app
from tests.conftest import FIXTURES, _server_url, _with_db

LEDGER = str(Path(sys.executable).parent / "ledger")


def _commands(cmd, path=()):
    if hasattr(cmd, "commands"):
        yield path, cmd
        for name, sub in cmd.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield path, cmd


def test_every_command_and_parameter_has_help():
    commands = list(_commands(typer.main.get_command(app)))
    assert len(commands) > 25
    for path, cmd in commands:
        assert (cmd.help or "").strip(), f"ledger {' '.join(path)}: no help"
        for param in getattr(cmd, "params", []):
            if param.name != "help" and path:
                assert (getattr(param, "help", None) or "").strip(), \
                    f"ledger {' '.join(path)}: {param.name} has no help"
    out = CliRunner().invoke(app, ["users", "create", "--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0 and "coder|biller|auditor|advocate|admin" in out.output


def test_role_is_a_choice():
    out = CliRunner().invoke(app, ["users", "create", "someone", "--role", "superuser"])
    assert out.exit_code == 2 and "superuser" in out.output


@pytest.mark.postgres
def test_a_missing_database_is_one_line_saying_how_to_create_it(tmp_path):
    missing = _with_db(_server_url(), f"ledger_missing_{uuid.uuid4().hex[:8]}")
    env = {**os.environ, "LEDGER_DATABASE_URL": missing, "LEDGER_DATA_DIR": str(tmp_path)}
    done = subprocess.run([LEDGER, "migrate"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0] and "ledger db create" in lines[0]
    created = subprocess.run([LEDGER, "db", "create"], env=env, capture_output=True,
                             text=True, timeout=60)
    try:
        assert created.returncode == 0, created.stderr
        assert subprocess.run([LEDGER, "migrate"], env=env, capture_output=True,
                              timeout=120).returncode == 0
    finally:
        with psycopg.connect(_server_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{missing.rsplit("/", 1)[1].split("?")[0]}"'
                         " WITH (FORCE)")


@pytest.mark.postgres
def test_import_json_prints_only_json_on_stdout(clean_db, tmp_path):
    env = {**os.environ, "LEDGER_DATABASE_URL": clean_db, "LEDGER_DATA_DIR": str(tmp_path)}
    files = [str(FIXTURES / "scenarios/s01_original_freq1.837p"),
             str(FIXTURES / "x12/linuxforhealth-x12/835_005010X221A1__tertiary-payment.835")]
    done = subprocess.run([LEDGER, "import", "--json", *files], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1  # the second file is quarantined
    report = json.loads(done.stdout)  # nothing but JSON on stdout
    assert len(report["files"]) == 2 and report["ok"] is False
    assert "835.line_balance" in json.dumps(report["files"][1])
    # without --json the table is printed whole even though it is piped (no 80-column cut)
    table = subprocess.run([LEDGER, "import", *files], env={**env, "COLUMNS": "80"},
                           capture_output=True, text=True, timeout=120)
    assert "quarantined" in table.stdout and "…" not in table.stdout


@pytest.mark.postgres
def test_piped_tables_are_not_cut(clean_db, tmp_path):
    env = {**os.environ, "LEDGER_DATABASE_URL": clean_db, "LEDGER_DATA_DIR": str(tmp_path),
           "COLUMNS": "80"}
    long_id = "operator-" + "x" * 70
    subprocess.run([LEDGER, "users", "create", long_id, "--role", "auditor", "--quiet"],
                   env=env, check=True, capture_output=True, timeout=60)
    listed = subprocess.run([LEDGER, "users", "list"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert long_id in listed.stdout and "…" not in listed.stdout


@pytest.mark.postgres
def test_the_demo_says_what_it_loaded_and_the_advocate_sees_the_dispute(clean_db):
    from api.main import create_app
    from ledger.config import Settings
    from ledger.demo import demo_users, load_demo, next_steps

    first = load_demo(clean_db)
    text = "\n".join(first.describe())
    assert len(first.loaded) == 5 and "dispute D-DEMO-1" in text and "demo-advocate" in text
    again = load_demo(clean_db)
    assert again.loaded == [] and "already holds" in again.describe()[0]
    tokens = demo_users(clean_db)
    assert set(tokens) == {"demo-coder", "demo-biller", "demo-auditor", "demo-advocate",
                           "demo-admin"}
    steps = "\n".join(next_steps("http://127.0.0.1:8000", tokens))
    assert tokens["demo-biller"] in steps and "/queues/disputes-denials" in steps
    assert demo_users(clean_db) == {}  # created once
    disputed = next(eid for what, eid in first.loaded if "dispute" in what)
    other = next(eid for what, eid in first.loaded if "inpatient" in what)
    advocate = {"Authorization": f"Bearer {tokens['demo-advocate']}"}
    settings = Settings(database_url=clean_db, cache_size=0)
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/encounters/{disputed}", headers=advocate).status_code == 200
        assert client.get(f"/encounters/{other}", headers=advocate).status_code == 404
        body = client.get(f"/encounters/{disputed}", headers=advocate).json()
        assert [d["dispute_id"] for d in body["disputes"]] == ["D-DEMO-1"]


def test_problem_types_are_pages_of_the_service():
    from api.errors import PROBLEM_BASE

    assert PROBLEM_BASE == "/problems/"


@pytest.mark.postgres
def test_a_problem_type_page_answers(clean_db):
    from api.main import create_app
    from ledger.config import Settings
    from tests.api.conftest import headers, provision

    provision(clean_db)
    with TestClient(create_app(Settings(database_url=clean_db, cache_size=0,
                                        projections_in_process=False))) as client:
        r = client.post("/encounters/00000000-0000-0000-0000-000000000000/diagnoses",
                        json={"code": "E11.9"}, headers=headers("coder-a", "coder"))
        kind = r.json()["type"]
        assert kind.startswith("/problems/") and kind.endswith(r.json()["rule"])
        page = client.get(kind)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert r.json()["rule"] in page.text
        assert client.get("/problems/<script>").status_code == 404
