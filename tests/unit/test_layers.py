"""The layer contracts (.importlinter, run by `make lint`) stay complete: the domain's
forbidden list names every package and module of ``ledger`` outside the domain, so one added
later is covered too (import-linter's forbidden contracts take no "everything but" form)."""

from __future__ import annotations

import configparser
import pkgutil

import ledger
from tests.conftest import ROOT


def test_the_domain_contract_forbids_every_other_part_of_ledger() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    forbidden = set(config["importlinter:contract:domain-is-pure"]["forbidden_modules"].split())
    parts = {f"ledger.{m.name}" for m in pkgutil.iter_modules(ledger.__path__)}
    assert parts - {"ledger.domain"} <= forbidden, "add them to .importlinter"
    assert {"api", "bench", "tests"} <= forbidden
