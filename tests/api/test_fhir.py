"""FHIR R4 read API (issue 18) through the HTTP API on real PostgreSQL: every resource the API
returns for the domain scenarios validates with fhir.resources (its R4B models, the closest to
R4 4.0.1 it ships) and its money equals the claims read model."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fhir.resources.R4B import get_fhir_model_class
from psycopg.rows import dict_row

from ledger.fhir import resources as fr
from tests.api import test_api_scenarios as http
from tests.api.conftest import headers

pytestmark = pytest.mark.postgres

AUDITOR = headers("auditor-1", "auditor")
FHIR_JSON = "application/fhir+json"
TYPES = ("ExplanationOfBenefit", "Claim", "ClaimResponse", "Coverage")


def fhir(client, path: str, status: int = 200, hdrs: dict | None = None, **params) -> Any:
    r = client.get(path, headers=hdrs or http.BILLER, params=params or None)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON), r.headers["content-type"]
    return json.loads(r.content, parse_float=Decimal)


def validate(resource: dict[str, Any]) -> None:
    """Structure and cardinality per fhir.resources (R4B); raises on any error."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def caught_up(client) -> None:
    head = http.ok(client.get("/projections/status", headers=AUDITOR))["head"]
    http.ok(client.get("/claims", params={"min_position": head}, headers=http.BILLER))


def read_model(url: str, eid: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT * FROM current_claims WHERE encounter_id = %s",
                            (eid,)).fetchall()
    return {r["claim_number"]: r for r in rows}


def _amount(entry: dict[str, Any]) -> Decimal:
    return Decimal(str(entry["amount"]["value"]))


def _code(concept: dict[str, Any], system: str) -> str | None:
    return next((c["code"] for c in concept.get("coding", []) if c["system"] == system), None)


def eob_money(eob: dict[str, Any]) -> dict[str, Any]:
    """What an EOB says in money: totals by category and every CAS adjustment (group, CARC)
    summed over the items and the header."""
    totals = {(c["system"], c["code"]): _amount(t) for t in eob["total"]
              for c in t["category"]["coding"][:1]}
    adjustments: dict[tuple[str, str], Decimal] = {}
    entries = [a for item in eob.get("item", []) for a in item.get("adjudication", [])]
    entries += eob.get("adjudication", [])
    for a in entries:
        group = _code(a["category"], fr.CAS_GROUP)
        if group is not None:
            key = (group, _code(a["reason"], fr.CARC))
            adjustments[key] = adjustments.get(key, Decimal(0)) + _amount(a)
    return {"submitted": totals[(fr.ADJ, "submitted")],
            "allowed": totals[(fr.ADJ, "eligible")],
            "paid": totals[(fr.C4BB_ADJ, "paidtoprovider")],
            "patient": totals[(fr.C4BB_ADJ, "memberliability")],
            "payment": Decimal(str(eob["payment"]["amount"]["value"])),
            "deductible": totals.get((fr.ADJ, "deductible"), Decimal(0)),
            "coinsurance": totals.get((fr.C4BB_ADJ, "coinsurance"), Decimal(0)),
            "copay": totals.get((fr.ADJ, "copay"), Decimal(0)),
            "contractual": totals.get(fr.CONTRACTUAL[:2], Decimal(0)),
            "adjustments": adjustments}


def assert_money_matches(eob: dict[str, Any], row: dict[str, Any]) -> None:
    money = eob_money(eob)
    assert money["paid"] == money["payment"] == row["paid"]
    assert money["patient"] == row["patient_responsibility"]
    assert money["allowed"] == row["allowed"]
    assert money["contractual"] == row["contractual"]
    expected = {(a["group"], a["reason"]): Decimal(a["amount"]) for a in row["adjustments"]}
    assert money["adjustments"] == expected
    for name, carc in (("deductible", "1"), ("coinsurance", "2"), ("copay", "3")):
        assert money[name] == expected.get(("PR", carc), Decimal(0)), name
    # the item-level money adds up to the totals (claim-level money is on the header)
    assert sum((v for (g, _), v in money["adjustments"].items() if g == "PR"),
               Decimal(0)) == row["patient_responsibility"]


def every_resource(client, eid: str) -> dict[str, list[dict[str, Any]]]:
    """Every resource of the encounter, found by search on its patient and read by id."""
    out: dict[str, list[dict[str, Any]]] = {}
    hexid = eid.replace("-", "")
    for rtype in TYPES:
        found = []
        bundle = fhir(client, f"/fhir/{rtype}", _count=200)
        validate(bundle)
        for entry in bundle.get("entry", []):
            res = entry["resource"]
            if res["id"].startswith(hexid):
                read = fhir(client, f"/fhir/{rtype}/{res['id']}")
                assert read == res
                validate(read)
                found.append(read)
        out[rtype] = found
    return out


def eob_for(resources: dict[str, list[dict[str, Any]]], number: str) -> dict[str, Any]:
    return next(e for e in resources["ExplanationOfBenefit"]
                if any(i["value"] == number for i in e["identifier"]))


def test_scenario_1_eob_validates_and_money_equals_the_read_model(client, settings):
    eid = http.scenario_1(client)
    caught_up(client)
    resources = every_resource(client, eid)
    assert len(resources["ExplanationOfBenefit"]) == 1
    eob = resources["ExplanationOfBenefit"][0]
    row = read_model(settings.database_url, eid)["S1-0001"]
    assert_money_matches(eob, row)
    assert eob["status"] == "active" and eob["outcome"] == "complete"
    assert eob["patient"]["reference"] == "Patient/PT-2001"
    assert [d["diagnosisCodeableConcept"]["coding"][0] for d in eob["diagnosis"]] == [
        {"system": fr.ICD10CM, "code": "E11.9"}, {"system": fr.ICD10CM, "code": "I10"}]
    assert [i["productOrService"]["coding"][0]["code"] for i in eob["item"]] == [
        "99214", "83036", "36415"]
    assert eob_money(eob)["copay"] == Decimal("30.00")
    assert eob_money(eob)["contractual"] == Decimal("95.18")
    assert [c["order"] for c in resources["Coverage"]] == [1, 2]
    (claim,) = resources["Claim"]
    assert Decimal(str(claim["total"]["value"])) == Decimal("240.00")
    (response,) = resources["ClaimResponse"]
    assert response["request"]["reference"] == f"Claim/{claim['id']}"
