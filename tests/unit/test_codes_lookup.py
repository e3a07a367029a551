"""Looking a code up by hand: ``lookup_code`` (what GET /codes/{system}/{code} returns), the
router, and ``ledger codes lookup``. No database."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api import errors
from api.routes.codes import router
from ledger.codes.icd10cm import default_code_set
from ledger.codes.lookup import CodeSets, lookup_code, ndc_billing_form, systems_for
from ledger.codes.places import PLACE_OF_SERVICE
from ledger.codes.procedures import CptDescriptors, HcpcsCodeSet
from ledger.domain.errors import NotFound
from ledger.domain.values import PLACES_OF_SERVICE

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "codes"
FY2026 = "ICD-10-CM FY2026 (April 1, 2026 update)"


@pytest.fixture(scope="module")
def sets() -> CodeSets:
    return CodeSets(default_code_set(), CptDescriptors(FIXTURES / "cpt_descriptors_test.csv"),
                    HcpcsCodeSet(FIXTURES / "hcpcs_test_anweb.txt"))


def test_icd10cm_lookup(sets):
    r = lookup_code("icd10cm", "j45901", sets=sets)
    assert r == {"system": "icd10cm", "system_name": "ICD-10-CM", "input": "j45901",
                 "code": "J45.901", "valid": True, "billable": True,
                 "description": "Unspecified asthma with (acute) exacerbation",
                 "version": FY2026, "date_of_service": None, "rule": "", "message": ""}
    r = lookup_code("icd10cm", "R10.3", date(2026, 3, 10), sets=sets)
    assert (r["valid"], r["billable"], r["rule"]) == (True, False, "icd10cm.not_billable")
    assert r["date_of_service"] == "2026-03-10" and "needs more characters" in r["message"]
    r = lookup_code("icd10cm", "E11.9", date(2020, 1, 1), sets=sets)
    assert (r["valid"], r["rule"]) == (False, "icd10cm.dos")


def test_procedure_lookups(sets):
    r = lookup_code("cpt", "99213", sets=sets)
    assert r["valid"] and r["billable"] and r["message"] == "Category I"
    assert r["description"] == "Office visit for an established patient (test text)"
    assert r["version"] == "CPT descriptors (cpt_descriptors_test.csv)"
    assert lookup_code("cpt", "0001F", sets=sets)["message"].startswith("Category II")
    bad = lookup_code("cpt", "99213X", sets=sets)
    assert (bad["valid"], bad["rule"]) == (False, "procedure.format")
    assert "'99213X' is not a CPT" in bad["message"]
    assert lookup_code("cpt", "J1100", sets=sets)["rule"] == "cpt.format"
    r = lookup_code("hcpcs", "j1100", sets=sets)
    assert (r["code"], r["billable"]) == ("J1100", True)
    assert r["description"] == "Injection, dexamethasone sodium phosphate, 1 mg"
    assert r["version"] == "HCPCS (hcpcs_test_anweb.txt)"
    gone = lookup_code("hcpcs", "S9999", date(2026, 3, 10), sets=sets)
    assert (gone["valid"], gone["billable"], gone["rule"]) == (True, False, "hcpcs.dos")
    assert lookup_code("hcpcs", "J9999", sets=sets)["rule"] == "hcpcs.unknown"
    plain = CodeSets(default_code_set(), CptDescriptors())
    r = lookup_code("hcpcs", "J1100", sets=plain)
    assert r["billable"] and "format only" in r["version"]
    assert "© AMA" in lookup_code("cpt", "99213", sets=plain)["version"]


@pytest.mark.parametrize("system,code,valid,expect", [
    ("modifier", "25", True, "significant, separately identifiable E/M"),
    ("modifier", "GA", True, "payer policy, individual case"),  # from the HCPCS file
    ("modifier", "Q9", False, "not a modifier the ledger knows"),
    ("modifier", "259", False, "2 letters or digits"),
    ("pos", "11", True, "Office"),
    ("pos", "00", False, "not a CMS place-of-service code"),
    ("npi", "1234567893", True, ""),
    ("npi", "1234567890", False, "check digit is wrong"),
    ("revenue", "0450", True, ""),
    ("revenue", "450", False, "4 digits"),
    ("ndc", "00409-4888-02", True, ""),
    ("ndc", "0409-4888-02", False, "bill it in the 11-digit 5-4-2 form 00409-4888-02"),
])
def test_other_systems(sets, system, code, valid, expect):
    r = lookup_code(system, code, sets=sets)
    assert r["valid"] is valid and r["billable"] is valid
    assert expect in (r["description"] if valid else r["message"])


def test_unknown_system_and_format_detection():
    with pytest.raises(NotFound) as err:
        lookup_code("snomed", "123")
    assert err.value.rule == "code_system.exists"
    assert systems_for("J1100") == ["icd10cm", "hcpcs"]
    assert systems_for("E11.9") == ["icd10cm"]
    assert systems_for("99213") == ["cpt"]
    assert systems_for("25") == ["pos", "modifier"]
    assert systems_for("99213X") == []
    assert ndc_billing_form("12345-678-90") == "12345-0678-90"
    assert ndc_billing_form("12345-6789-0") == "12345-6789-00"
    assert ndc_billing_form("123-456-78") is None


def test_place_of_service_names_cover_the_domain_codes():
    assert set(PLACE_OF_SERVICE) == PLACES_OF_SERVICE


def test_get_codes_route():
    app = FastAPI()
    errors.install(app)
    app.include_router(router)
    client = TestClient(app)
    r = client.get("/codes/icd10cm/S52.521A", params={"date_of_service": "2026-04-10"})
    assert r.status_code == 200
    assert r.json()["billable"] and r.json()["version"] == FY2026
    r = client.get("/codes/icd10cm/S30.1XXA", params={"date_of_service": "2025-05-01"})
    assert r.json()["billable"] and r.json()["version"].startswith("ICD-10-CM FY2025")
    r = client.get("/codes/icd10cm/S52.521")
    assert r.status_code == 200 and r.json()["rule"] == "icd10cm.not_billable"
    r = client.get("/codes/snomed/123")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["rule"] == "code_system.exists"


def test_ledger_codes_lookup_command():
    from ledger.cli.main import app

    runner = CliRunner()
    ok = runner.invoke(app, ["codes", "lookup", "E11.9"])
    assert ok.exit_code == 0, ok.output
    assert "Type 2 diabetes" in ok.output and "FY2026" in ok.output
    refused = runner.invoke(app, ["codes", "lookup", "S52.521", "--json"])
    assert refused.exit_code == 1
    row = orjson.loads(refused.output.splitlines()[0])
    assert row["rule"] == "icd10cm.not_billable" and "7th character" in row["message"]
    both = runner.invoke(app, ["codes", "lookup", "99213X", "--json"])
    rules = [orjson.loads(line)["rule"] for line in both.output.splitlines()]
    assert both.exit_code == 1 and rules == ["icd10cm.format", "procedure.format"]
    dated = runner.invoke(app, ["codes", "lookup", "E11.9", "--date", "2026-13-01"])
    assert dated.exit_code == 2
    files = runner.invoke(app, ["codes", "files"])
    assert files.exit_code == 0 and "74719 billable" in files.output.replace(",", "")
