"""The Dockerfile and compose.yaml (issue 17, item 3), checked statically: Docker is not on
the development machines or CI, so the image is not built here. What can be checked is: the
image is slim, runs as a non-root user, has a health check and installs from the lock file;
compose has PostgreSQL, a migration step, the API with --workers, the projection runner and
the checkpoint job as separate services, volumes for data and keys; and every command they
run is a real `ledger` command."""

from __future__ import annotations

import re
import shlex

import yaml
from typer.testing import CliRunner

from ledger.cli.main import app
from tests.conftest import ROOT


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_the_image_is_slim_non_root_locked_and_health_checked():
    text = _dockerfile()
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert bases and all(b.endswith("-slim") for b in bases), bases
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*(\n\s+.*)*?/health", text, re.M)
    assert "--require-hashes -r /src/requirements.lock" in text
    assert "pip install --no-deps /src" in text  # the project from its wheel, migrations in
    for copied in ("ledger", "api", "migrations", "requirements.lock"):
        assert re.search(rf"^COPY .*\b{re.escape(copied)}\b", text, re.M), copied
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".ledger", ".git"} <= set(ignored)


def test_compose_runs_each_part_as_its_own_service_with_data_and_key_volumes():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"db", "migrate", "api", "projections", "checkpoints"} <= set(services)
    assert services["db"]["image"].startswith("postgres:")
    assert services["db"]["healthcheck"]["test"]
    commands = {name: services[name]["command"] for name in
                ("migrate", "api", "projections", "checkpoints")}
    assert commands["api"][:2] == ["serve", "--workers"]
    assert commands["projections"] == ["projections", "run"]
    assert commands["checkpoints"] == ["checkpoints", "run"]
    env = services["api"]["environment"]
    assert env["LEDGER_PROJECTIONS_IN_PROCESS"] == "0"  # the projections service runs them
    assert env["LEDGER_CHECKPOINTS_IN_PROCESS"] == "0"
    assert env["LEDGER_DATABASE_URL"].startswith("postgresql://") and "@db:5432/" in \
        env["LEDGER_DATABASE_URL"]
    assert {"pgdata", "ledger-data", "ledger-keys"} <= set(compose["volumes"])
    mounts = {m.split(":")[0]: m for m in services["checkpoints"]["volumes"]}
    assert "ledger-keys" in mounts and not mounts["ledger-keys"].endswith(":ro")
    api_mounts = {m.split(":")[0]: m for m in services["api"]["volumes"]}
    assert api_mounts["ledger-keys"].endswith(":ro")  # only the checkpoint job writes keys
    for name in ("api", "projections", "checkpoints"):
        assert services[name]["depends_on"]["migrate"]["condition"] == \
            "service_completed_successfully"


def test_every_command_the_containers_run_exists():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    runs = [s["command"] for s in compose["services"].values() if "command" in s]
    runs.append(shlex.split(re.search(r'^CMD \[(.*)\]', _dockerfile(), re.M).group(1)
                            .replace('"', "").replace(",", " ")))
    health = compose["services"]["projections"]["healthcheck"]["test"]
    runs.append(health[2:])
    runner = CliRunner()
    for argv in runs:
        words = [w for w in argv if not w.startswith("-") and not w.startswith("$")
                 and not w.isdigit()]
        result = runner.invoke(app, [*words, "--help"])
        assert result.exit_code == 0, (argv, result.output)
