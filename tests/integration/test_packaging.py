"""Packaging (issue 17, item 2): the wheel carries the migrations, declares every import, keeps
test tools out of its runtime requirements, and the lock file pins them all; an installed
wheel migrates a scratch database and serves /health.

The wheel is built without build isolation (offline; setuptools>=77 is a dev dependency) from a
copy of the source, and installed with --no-deps into a fresh venv whose dependencies come from
the development venv's site-packages through a .pth line (not processed as a site dir, so the
project's editable install is invisible there): what runs is the wheel's code and data only.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from importlib.metadata import packages_distributions
from pathlib import Path

import httpx
import psycopg
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT, _server_url, _with_db

pytestmark = pytest.mark.postgres

TEST_TOOLS = {"pytest", "pytest-timeout", "httpx", "hypothesis", "ruff", "schemathesis", "mypy",
              "setuptools"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "requirements.lock"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("ledger", "api", "migrations"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "-w", str(out), str(src)],
                   check=True, capture_output=True, timeout=120)
    (built,) = out.glob("claims_ledger-*.whl")
    return built


def _metadata(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(z.read(name).decode())
    return [Requirement(r) for r in meta.get_all("Requires-Dist") or []]


def _runtime(wheel: Path) -> list[Requirement]:
    return [r for r in _metadata(wheel) if r.marker is None]


def test_the_wheel_ships_every_migration(wheel):
    with zipfile.ZipFile(wheel) as z:
        shipped = sorted(Path(n).name for n in z.namelist()
                         if n.startswith("ledger/migrations/") and n.endswith(".sql"))
    assert shipped == sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    assert len(shipped) >= 10


def test_the_wheel_ships_every_data_file_of_the_packages(wheel):
    """Code sets and other data beside the code (not only .py files) are in the wheel."""
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    data = [p.relative_to(ROOT).as_posix() for folder in ("ledger", "api")
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    missing = [name for name in data if name not in names]
    assert not missing, f"not in the wheel (add to [tool.setuptools.package-data]): {missing}"


def test_runtime_requirements_exclude_test_tools_and_cover_every_import(wheel):
    runtime = _runtime(wheel)
    names = {canonicalize_name(r.name) for r in runtime}
    assert not names & TEST_TOOLS, names & TEST_TOOLS
    # extras bring named packages: psycopg[binary,pool] -> psycopg-binary, psycopg-pool
    declared = names | {canonicalize_name(f"{r.name}-{e}") for r in runtime for e in r.extras}
    dists = packages_distributions()
    stdlib = set(sys.stdlib_module_names)
    imported: dict[str, str] = {}
    for path in [*(ROOT / "ledger").rglob("*.py"), *(ROOT / "api").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0]
                if top not in stdlib and top not in ("ledger", "api", "__future__"):
                    imported.setdefault(top, str(path.relative_to(ROOT)))
    undeclared = {top: where for top, where in imported.items()
                  if not {canonicalize_name(d) for d in dists.get(top, [top])} & declared}
    assert not undeclared, f"imported but not in [project] dependencies: {undeclared}"


def test_the_lock_file_pins_every_runtime_requirement_with_hashes(wheel):
    text = (ROOT / "requirements.lock").read_text()
    pins = {canonicalize_name(m.group(1)): m.group(2)
            for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, re.M)}
    for req in _runtime(wheel):
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements.lock (run make lock)"
        assert req.specifier.contains(pins[name], prereleases=True), (req, pins[name])
    assert not set(pins) & TEST_TOOLS
    assert text.count("--hash=sha256:") >= len(pins)


@pytest.fixture
def installed(wheel: Path, tmp_path: Path) -> Path:
    """A fresh venv with only the wheel installed (dependencies: see the module docstring)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig;print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True
                          ).stdout.strip()
    Path(site, "_ledger_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True,
                   timeout=120)
    where = subprocess.run([str(python), "-c", "import ledger;print(ledger.__file__)"],
                           cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    assert Path(where.strip()).is_relative_to(venv)  # the wheel's code, not the checkout's
    return venv


@pytest.fixture
def scratch_db() -> Iterator[str]:
    server = _server_url()
    name = f"ledger_wheel_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_db(server, name)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_installed_wheel_migrates_and_serves(installed, scratch_db, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(LEDGER_DATABASE_URL=scratch_db, LEDGER_DATA_DIR=str(tmp_path / "data"),
               LEDGER_LOG_LEVEL="WARNING", LEDGER_CODES_CACHE_DIR="")
    ledger = str(installed / "bin" / "ledger")
    done = subprocess.run([ledger, "migrate"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    count = len(list((ROOT / "migrations").glob("*.sql")))
    assert f"applied {count} migration(s)" in done.stdout

    port = _free_port()
    proc = subprocess.Popen([ledger, "serve", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                body = r.json()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert body is not None, proc.stdout.read() if proc.poll() is not None else "timeout"
        assert r.status_code == 200 and body["status"] == "ok"
        assert body["database"]["embedded"] is False
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_an_installation_without_migrations_fails_loudly(installed, scratch_db, tmp_path):
    site = next(installed.glob("lib/python*/site-packages"))
    for sql in (site / "ledger" / "migrations").glob("*.sql"):
        sql.unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(LEDGER_DATABASE_URL=scratch_db, LEDGER_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run([str(installed / "bin" / "ledger"), "migrate"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "no migrations found" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    with psycopg.connect(scratch_db) as conn:  # nothing was created
        assert conn.execute("SELECT to_regclass('ledger_migrations')").fetchone()[0] is None
