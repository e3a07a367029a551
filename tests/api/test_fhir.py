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


def fhir(client, path: str, expect: int = 200, hdrs: dict | None = None, **params) -> Any:
    r = client.get(path, headers=hdrs if hdrs is not None else http.BILLER,
                   params=params or None)
    assert r.status_code == expect, r.text[:2000]
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


def claim_key(resource: dict[str, Any]) -> str:
    ids = {i.get("system"): i["value"] for i in resource.get("identifier", [])}
    return ids.get(fr.CLAIM_KEY) or ids[fr.CLAIM_NUMBER]


def check_encounter(client, url: str, eid: str) -> dict[str, list[dict[str, Any]]]:
    """Every resource of the encounter validates; every EOB's money equals its claims
    read-model row; the ClaimResponses of a claim add up to its net payment."""
    caught_up(client)
    resources = every_resource(client, eid)
    rows = read_model(url, eid)
    assert resources["ExplanationOfBenefit"]
    for eob in resources["ExplanationOfBenefit"]:
        assert_money_matches(eob, rows[claim_key(eob)])
        responses = [r for r in resources["ClaimResponse"]
                     if r["request"]["reference"] == f"Claim/{eob['id']}"]
        assert responses
        assert sum((Decimal(str(r["payment"]["amount"]["value"])) for r in responses),
                   Decimal(0)) == rows[claim_key(eob)]["paid"]
    claims = {claim_key(c) for c in resources["Claim"]}
    assert claims == set(rows)
    return resources


def test_scenario_2_deductible_and_coinsurance(client, settings):
    eid = http.scenario_2(client)
    eob = eob_for(check_encounter(client, settings.database_url, eid), "S2-0001")
    money = eob_money(eob)
    assert (money["deductible"], money["coinsurance"], money["patient"], money["paid"]) == (
        Decimal("100.00"), Decimal("20.00"), Decimal("120.00"), Decimal("80.00"))
    # per line: 99203 carries PR-1 100.00 and PR-2 12.00
    first = eob["item"][0]["adjudication"]
    assert {(_code(a["category"], fr.CAS_GROUP), _code(a["reason"], fr.CARC)): _amount(a)
            for a in first if "reason" in a} == {
        ("CO", "45"): Decimal("90.00"), ("PR", "1"): Decimal("100.00"),
        ("PR", "2"): Decimal("12.00")}


def scenario_3_denied(client) -> str:
    eid = http.open_encounter(client, "PT-2003")
    http.ok(client.post(f"/encounters/{eid}/diagnoses", json={"code": "M54.50"},
                        headers=http.CODER))
    http.add_line(client, eid, "97110", "180.00", [1], units="4", modifiers=["GP"])
    http.submit(client, eid, "S3-0001")
    http.adjudicate(client, eid, "S3-0001", status="4", charge="180.00", paid="0.00",
                    pr="0.00", icn="ICN-S3A", trace="TRN-S3A", lines=[
                        {"line_no": 1, "procedure_code": "97110", "submitted": "180.00",
                         "paid": "0.00", "units": "4",
                         "adjustments": [http.cas("CO", "50", "180.00")],
                         "remarks": ["N115"]}])
    return eid


def test_scenario_3_denial_then_appeal_then_paid(client, settings):
    url = settings.database_url
    eid = scenario_3_denied(client)
    denied = eob_for(check_encounter(client, url, eid), "S3-0001")
    (item,) = denied["item"]
    assert item["modifier"][0]["coding"][0]["code"] == "GP"
    assert Decimal(str(item["quantity"]["value"])) == 4
    reasons = [_code(a["reason"], fr.CARC) for a in item["adjudication"]
               if _code(a["category"], fr.C4BB_DISC) == "denialreason"]
    assert reasons == ["50"]
    assert eob_money(denied)["paid"] == 0 and eob_money(denied)["patient"] == 0
    http.ok(client.post(f"/encounters/{eid}/claims/S3-0001/appeals", headers=http.BILLER,
                        json={"filed_on": "2026-05-01", "reason": "medical necessity"}))
    in_appeal = eob_for(check_encounter(client, url, eid), "S3-0001")
    assert in_appeal["outcome"] == "queued"
    http.ok(client.post(f"/encounters/{eid}/claims/S3-0001/appeals/decision",
                        headers=http.BILLER,
                        json={"outcome": "overturned", "decided_on": "2026-06-01"}))
    http.adjudicate(client, eid, "S3-0001", status="1", charge="180.00", paid="112.64",
                    pr="28.16", icn="ICN-S3B", trace="TRN-S3B", date="2026-06-15", lines=[
                        {"line_no": 1, "procedure_code": "97110", "submitted": "180.00",
                         "paid": "112.64", "allowed": "140.80", "units": "4",
                         "adjustments": [http.cas("CO", "45", "39.20"),
                                         http.cas("PR", "2", "28.16")]}])
    resources = check_encounter(client, url, eid)
    paid = eob_for(resources, "S3-0001")
    money = eob_money(paid)
    assert (money["paid"], money["coinsurance"], money["allowed"]) == (
        Decimal("112.64"), Decimal("28.16"), Decimal("140.80"))
    assert not [a for a in paid["item"][0]["adjudication"]
                if _code(a["category"], fr.C4BB_DISC) == "denialreason"]
    assert len(resources["ClaimResponse"]) == 2  # the denial and the payment
    assert {r["identifier"][0]["value"] for r in resources["ClaimResponse"]} == {
        "ICN-S3A", "ICN-S3B"}


def test_scenario_8_inpatient_drg_stay(client, settings):
    body = {"facility_id": "FAC-H1", "patient_ref": "PT-1008", "service_from": "2026-03-02",
            "service_to": "2026-03-05", "place_of_service": "21",
            "claim_type": "institutional", "responsible_parties": [
                {"bucket": "primary", "kind": "insurer", "payer_id": "PAYER-A"},
                {"bucket": "patient", "kind": "patient"}]}
    eid = http.ok(client.post("/encounters", json=body, headers=http.BILLER), 201)[
        "encounter_id"]
    http.ok(client.post(f"/encounters/{eid}/diagnoses", json={"code": "M17.11", "poa": "Y"},
                        headers=http.CODER))
    for rev, proc, charge, units in (("0120", None, "3600.00", "3"),
                                     ("0360", None, "9800.00", "1"),
                                     ("0278", None, "6500.00", "1"),
                                     ("0272", None, "1150.00", "1"),
                                     ("0250", None, "640.00", "1"),
                                     ("0370", None, "1900.00", "1"),
                                     ("0420", "97110", "480.00", "4")):
        http.ok(client.post(f"/encounters/{eid}/lines", headers=http.CODER, json={
            "procedure_code": proc, "revenue_code": rev, "charge": charge, "units": units,
            "unit_type": "DA" if rev == "0120" else "UN", "pointers": [1],
            "line_date": "2026-03-02"}))
    http.submit(client, eid, "S8-0001")
    body = {"status_code": "1", "charge": "24070.00", "paid": "12650.00",
            "patient_responsibility": "1600.00", "payer_icn": "ICN-S8",
            "adjudication_date": "2026-04-20", "drg_code": "470",
            "remittance": {"payer_id": "PAYER-A", "trace_number": "TRN-S8",
                           "file_hash": "sha256:TRN-S8", "payment_date": "2026-04-20"},
            "claim_adjustments": [http.cas("CO", "45", "9820.00"),
                                  http.cas("PR", "1", "1600.00")]}
    bad = client.post(f"/encounters/{eid}/claims/S8-0001/adjudications",
                      json={**body, "drg_code": "47-0"}, headers=http.BILLER)
    assert bad.status_code == 422 and "drg_code" in bad.text
    http.ok(client.post(f"/encounters/{eid}/claims/S8-0001/adjudications", json=body,
                        headers=http.BILLER))
    eob = eob_for(check_encounter(client, settings.database_url, eid), "S8-0001")
    assert eob["type"]["coding"][0]["code"] == "institutional"
    assert eob["subType"]["coding"][0]["code"] == "inpatient"
    assert "Inpatient-Institutional" in eob["meta"]["profile"][0]
    info = {i["category"]["coding"][0]["code"]: i for i in eob["supportingInfo"]}
    assert info["typeofbill"]["code"]["coding"][0]["code"] == "0111"
    assert info["drg"]["code"]["coding"][0]["code"] == "470"  # CLP11
    assert info["admissionperiod"]["timingPeriod"] == {"start": "2026-03-02",
                                                       "end": "2026-03-05"}
    assert [i["revenue"]["coding"][0]["code"] for i in eob["item"]] == [
        "0120", "0360", "0278", "0272", "0250", "0370", "0420"]
    assert eob["diagnosis"][0]["onAdmission"]["coding"][0]["code"] == "Y"
    # DRG payment: claim-level adjustments on the header, money equal to the read model
    header = {(_code(a["category"], fr.CAS_GROUP), _code(a["reason"], fr.CARC)): _amount(a)
              for a in eob["adjudication"]}
    assert header == {("CO", "45"): Decimal("9820.00"), ("PR", "1"): Decimal("1600.00")}
    money = eob_money(eob)
    assert (money["submitted"], money["paid"], money["allowed"], money["deductible"]) == (
        Decimal("24070.00"), Decimal("12650.00"), Decimal("14250.00"), Decimal("1600.00"))


HERE_X12 = http.__file__.rsplit("/", 2)[0] + "/fixtures/x12/"


def upload(client, name: str) -> dict[str, Any]:
    path = "/remittances" if name.endswith(".835") else "/claims/x12"
    hdr = {**http.BILLER, "content-type": "application/edi-x12", "x-file-name": name}
    with open(HERE_X12 + name, "rb") as f:
        return http.ok(client.post(path, content=f.read(), headers=hdr))


def encounter_of(client, number: str) -> str:
    bundle = fhir(client, "/fhir/Claim", identifier=f"{fr.CLAIM_NUMBER}|{number}")
    ids = {e["resource"]["id"].split("-")[0] for e in bundle["entry"]}
    (hexid,) = ids
    return str(__import__("uuid").UUID(hex=hexid))


def test_cob_primary_then_secondary_and_replacement_with_reversal(client, settings):
    url = settings.database_url
    for name in ("c1_originals.837p", "r1_first_payments.835", "c2_corrections.837p",
                 "r2_reversal_correction.835", "r3_secondary_crossover.835"):
        upload(client, name)
    caught_up(client)
    # --- COB: primary forwards (CLP02 19), the secondary pays on its own claim
    cob = check_encounter(client, url, encounter_of(client, "ENC7004"))
    coverages = sorted(cob["Coverage"], key=lambda c: c["order"])
    assert [c["id"].split("-")[1] for c in coverages] == ["primary", "secondary", "patient"]
    assert coverages[-1]["type"]["coding"][0]["code"] == "pay"
    primary = next(e for e in cob["ExplanationOfBenefit"] if claim_key(e) == "ENC7004")
    secondary = next(e for e in cob["ExplanationOfBenefit"]
                     if claim_key(e) == "ENC7004~secondary")
    assert eob_money(primary)["paid"] == Decimal("114.82")
    assert eob_money(secondary)["paid"] == Decimal("20.00")
    assert eob_money(secondary)["patient"] == Decimal("10.00")
    focal = [i["coverage"]["reference"] for i in secondary["insurance"] if i["focal"]]
    assert focal == [f"Coverage/{coverages[1]['id']}"]
    # --- replacement (frequency 7): the payer reversed the original and paid the replacement
    corrected = check_encounter(client, url, encounter_of(client, "ENC7001"))
    original = next(e for e in corrected["ExplanationOfBenefit"]
                    if claim_key(e) == "ENC7001")
    replacement = next(e for e in corrected["ExplanationOfBenefit"]
                       if claim_key(e) == "ENC7001~r2")
    assert original["status"] == "entered-in-error"
    assert eob_money(original)["paid"] == 0
    (related,) = original["related"]
    assert related["claim"]["reference"] == f"Claim/{replacement['id']}"
    assert related["relationship"]["coding"][1]["code"] == "replaced-by"
    assert replacement["status"] == "active"
    assert replacement["related"][0]["relationship"]["coding"][0]["code"] == "prior"
    assert eob_money(replacement)["paid"] == Decimal("103.50")
    responses = [r for r in corrected["ClaimResponse"]
                 if r["request"]["reference"] == f"Claim/{original['id']}"]
    assert sorted(Decimal(str(r["payment"]["amount"]["value"])) for r in responses) == [
        Decimal("-67.00"), Decimal("67.00")]
    assert any("reversal of adjudication 1" in r["processNote"][0]["text"]
               for r in responses)
    # --- a void (frequency 8) of a paid claim: the voided claim and its EOB are cancelled
    voided = check_encounter(client, url, encounter_of(client, "ENC7003"))
    by_key = {claim_key(c): c for c in voided["Claim"]}
    assert by_key["ENC7003"]["status"] == by_key["ENC7003~v2"]["status"] == "cancelled"
    (eob,) = [e for e in voided["ExplanationOfBenefit"] if claim_key(e) == "ENC7003"]
    assert eob["status"] == "cancelled"
    assert eob["related"][0]["relationship"]["coding"][1]["code"] == "voided-by"


def test_history_vread_equals_the_encounter_replayed_to_that_version(client, app):
    from uuid import UUID

    from ledger.fhir.render import dumps
    from ledger.fhir.replay import replay_all
    from ledger.views import claim_view

    eid = scenario_3_denied(client)
    http.ok(client.post(f"/encounters/{eid}/claims/S3-0001/appeals", headers=http.BILLER,
                        json={"filed_on": "2026-05-01", "reason": "medical necessity"}))
    http.ok(client.post(f"/encounters/{eid}/claims/S3-0001/appeals/decision",
                        headers=http.BILLER,
                        json={"outcome": "overturned", "decided_on": "2026-06-01"}))
    http.adjudicate(client, eid, "S3-0001", status="1", charge="180.00", paid="112.64",
                    pr="28.16", icn="ICN-S3B", trace="TRN-S3B", date="2026-06-15", lines=[
                        {"line_no": 1, "procedure_code": "97110", "submitted": "180.00",
                         "paid": "112.64", "allowed": "140.80", "units": "4",
                         "adjustments": [http.cas("CO", "45", "39.20"),
                                         http.cas("PR", "2", "28.16")]}])
    rid = f"{UUID(eid).hex}-1"
    current = fhir(client, f"/fhir/ExplanationOfBenefit/{rid}")
    bundle = fhir(client, f"/fhir/ExplanationOfBenefit/{rid}/_history")
    validate(bundle)
    assert bundle["type"] == "history"
    vids = [int(e["resource"]["meta"]["versionId"]) for e in bundle["entry"]]
    assert vids == sorted(vids, reverse=True) and len(vids) >= 4
    assert bundle["entry"][0]["resource"] == current
    encounter = app.get_encounter(UUID(eid))
    first = min(vids)
    for vid in range(1, encounter.version + 1):
        if vid < first:  # no EOB before the first adjudication
            fhir(client, f"/fhir/ExplanationOfBenefit/{rid}/_history/{vid}", 404)
            continue
        got = fhir(client, f"/fhir/ExplanationOfBenefit/{rid}/_history/{vid}")
        validate(got)
        # the same EOB built from the events replayed to that version ...
        enc, stamps = replay_all(app.events.get(UUID(eid), lte=vid))
        built = fr.explanation_of_benefit(enc, enc.claims["S3-0001"], stamps)
        assert got == json.loads(dumps(built), parse_float=Decimal)
        assert int(got["meta"]["versionId"]) == max(v for v in vids if v <= vid)
        # ... and its money is the repository's encounter at that version (claim read)
        view = claim_view(*(lambda e: (e, e.claims["S3-0001"]))(
            app.get_encounter(UUID(eid), version=vid)))
        money = eob_money(got)
        assert (money["paid"], money["patient"], money["allowed"]) == (
            view["paid"].amount, view["patient_responsibility"].amount, view["allowed"].amount)
    denied = fhir(client, f"/fhir/ExplanationOfBenefit/{rid}/_history/{first}")
    assert eob_money(denied)["paid"] == 0 and denied["outcome"] == "complete"
    fhir(client, f"/fhir/ExplanationOfBenefit/{rid}/_history/{encounter.version + 1}", 404)
    outcome = fhir(client, f"/fhir/ExplanationOfBenefit/{rid}/_history/x1", 422)
    assert outcome["resourceType"] == "OperationOutcome"
    validate(outcome)


def test_errors_are_operation_outcomes_and_metadata_is_public(client):
    meta = fhir(client, "/fhir/metadata", hdrs={})
    validate(meta)
    assert meta["fhirVersion"] == "4.0.1"
    for path, status in (("/fhir/ExplanationOfBenefit/nope", 404),
                         ("/fhir/Patient/abc", 404),
                         (f"/fhir/Claim/{'0' * 32}-1", 404),
                         ("/fhir/ExplanationOfBenefit?_count=0", 422),
                         ("/fhir/ExplanationOfBenefit?_lastUpdated=yesterday", 422)):
        outcome = fhir(client, path, status)
        validate(outcome)
        assert outcome["issue"][0]["severity"] == "error"
    anonymous = fhir(client, "/fhir/Claim", 401, hdrs={"Authorization": "Bearer nope"})
    assert anonymous["issue"][0]["code"] == "login"
    admin = fhir(client, "/fhir/Claim", 403, hdrs=headers("admin-1", "admin"))
    assert admin["resourceType"] == "OperationOutcome"


def test_search_by_patient_identifier_status_dates_with_paging(client):
    http.scenario_1(client)
    http.scenario_2(client)
    eid3 = scenario_3_denied(client)
    caught_up(client)
    all_eobs = fhir(client, "/fhir/ExplanationOfBenefit")
    assert len(all_eobs["entry"]) == 3
    by_patient = fhir(client, "/fhir/ExplanationOfBenefit", patient="Patient/PT-2002")
    assert [claim_key(e["resource"]) for e in by_patient["entry"]] == ["S2-0001"]
    by_number = fhir(client, "/fhir/Claim", identifier="S3-0001")
    assert [e["resource"]["id"].split("-")[0] for e in by_number["entry"]] == [
        eid3.replace("-", "")]
    assert not fhir(client, "/fhir/ExplanationOfBenefit", status="cancelled").get("entry")
    created = fhir(client, "/fhir/ClaimResponse", created="2026-04-20")
    assert len(created["entry"]) == 3
    assert not fhir(client, "/fhir/ClaimResponse", created="gt2026-04-20").get("entry")
    stamps = sorted(e["resource"]["meta"]["lastUpdated"] for e in all_eobs["entry"])
    later = fhir(client, "/fhir/ExplanationOfBenefit", _lastUpdated=f"gt{stamps[0]}")
    assert len(later["entry"]) == 2
    # paging: one per page, following the next links, each resource once
    seen, page = [], fhir(client, "/fhir/ExplanationOfBenefit", _count=1)
    while True:
        validate(page)
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not nxt:
            break
        page = fhir(client, nxt[0].replace("http://testserver", ""))
    assert sorted(seen) == sorted(e["resource"]["id"] for e in all_eobs["entry"])
    coverages = fhir(client, "/fhir/Coverage", patient="PT-2001")
    assert [c["resource"]["order"] for c in coverages["entry"]] == [1, 2]


def test_bulk_export_ndjson_equals_the_api_reads_and_since_filters(client, app, settings,
                                                                    tmp_path):
    from datetime import datetime

    from ledger.fhir.export import export

    http.scenario_1(client)
    eid2 = http.scenario_2(client)
    result = export(settings.database_url, app.mapper, tmp_path / "all")
    assert result.encounters == 2
    assert result.counts == {"ExplanationOfBenefit": 2, "Claim": 2, "ClaimResponse": 2,
                             "Coverage": 4}
    for rtype in TYPES:
        lines = (tmp_path / "all" / f"{rtype}.ndjson").read_bytes().splitlines()
        assert len(lines) == result.counts[rtype]
        for line in lines:
            resource = json.loads(line, parse_float=Decimal)
            validate(resource)
            assert fhir(client, f"/fhir/{rtype}/{resource['id']}") == resource
    # --since: only what changed at or after the moment (scenario 2's adjudication)
    eob2 = fhir(client, "/fhir/ExplanationOfBenefit", patient="PT-2002")["entry"][0]["resource"]
    since = datetime.fromisoformat(eob2["meta"]["lastUpdated"])
    later = export(settings.database_url, app.mapper, tmp_path / "since", since=since)
    assert later.counts["ExplanationOfBenefit"] == 1 and later.counts["Coverage"] == 0
    (line,) = (tmp_path / "since" / "ExplanationOfBenefit.ndjson").read_bytes().splitlines()
    assert json.loads(line)["id"].startswith(eid2.replace("-", ""))


ADVOCATE = headers("advocate-1", "advocate")
OTHER_ADVOCATE = headers("advocate-2", "advocate")


def grant_access(client, eid: str, advocate: str) -> str:
    """Give an advocate access to an encounter the way the rest of the API does: an
    AccessGranted event (POST /encounters/{id}/grants); returns the grant id."""
    body = http.ok(client.post(f"/encounters/{eid}/grants", headers=http.BILLER, json={
        "grantee_id": advocate, "authorization_ref": "AUTH-18",
        "valid_until": "2099-01-01T00:00:00Z", "reason": "patient asked"}), 201)
    return body["result"]["grant_id"]


def test_advocate_without_access_gets_404_in_fhir_too(client):
    from uuid import UUID

    eid = http.scenario_1(client)
    grant_id = grant_access(client, eid, "advocate-1")
    caught_up(client)
    hexid = UUID(eid).hex
    vid = fhir(client, f"/fhir/ExplanationOfBenefit/{hexid}-1", hdrs=ADVOCATE)["meta"][
        "versionId"]
    paths = [f"/fhir/ExplanationOfBenefit/{hexid}-1", f"/fhir/Claim/{hexid}-1",
             f"/fhir/ClaimResponse/{hexid}-1-1", f"/fhir/Coverage/{hexid}-primary",
             f"/fhir/ExplanationOfBenefit/{hexid}-1/_history",
             f"/fhir/ExplanationOfBenefit/{hexid}-1/_history/{vid}"]
    for path in paths:
        assert fhir(client, path, hdrs=ADVOCATE)["resourceType"] != "OperationOutcome"
        outcome = fhir(client, path, 404, hdrs=OTHER_ADVOCATE)
        assert outcome["resourceType"] == "OperationOutcome"
        # the same answer as for an id that does not exist: no confirmation it does
        missing = fhir(client, path.replace(hexid, "0" * 32), 404, hdrs=OTHER_ADVOCATE)
        assert missing == outcome
    for rtype in TYPES:
        assert fhir(client, f"/fhir/{rtype}", hdrs=ADVOCATE).get("entry")
        assert not fhir(client, f"/fhir/{rtype}", hdrs=OTHER_ADVOCATE).get("entry")
    # the reads are in the access log against the encounter
    log = http.ok(client.get("/audit/access", params={"encounter_id": eid}, headers=AUDITOR))
    kinds = {(r["resource_type"], r["outcome"]) for r in log["items"]}
    assert ("ExplanationOfBenefit", "allowed") in kinds
    assert ("ExplanationOfBenefit", "not_found") in kinds
    # a revoked grant: 404 again
    http.ok(client.post(f"/encounters/{eid}/grants/{grant_id}/revoke", headers=http.BILLER,
                        json={"reason": "authorization withdrawn"}))
    for path in paths:
        fhir(client, path, 404, hdrs=ADVOCATE)
    assert not fhir(client, "/fhir/ExplanationOfBenefit", hdrs=ADVOCATE).get("entry")


def test_random_workload_every_resource_validates_and_eob_money_equals_read_model(
        client, settings, tmp_path):
    """Random claim lives (every event type: corrections, reversals, COB, appeals, disputes,
    write-offs) saved through the application the API serves; then every exported resource
    validates and every EOB's money equals the claims read model."""
    from bench.workload import run_workload
    from ledger.fhir.export import export

    ledger = client.app.state.ledger
    stats = run_workload(ledger.save, encounters=40, seed=18, concurrency=10)
    assert stats.events > 300
    caught_up(client)
    result = export(settings.database_url, ledger.mapper, tmp_path)
    assert result.encounters == 40 and result.counts["ExplanationOfBenefit"] > 10
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        rows = {(r["encounter_id"].hex, r["claim_number"]): r
                for r in conn.execute("SELECT * FROM current_claims").fetchall()}
    statuses = set()
    for rtype in TYPES:
        for line in (tmp_path / f"{rtype}.ndjson").read_bytes().splitlines():
            resource = json.loads(line, parse_float=Decimal)
            validate(resource)
            if rtype == "ExplanationOfBenefit":
                statuses.add(resource["status"])
                assert_money_matches(resource, rows[(resource["id"].split("-")[0],
                                                     claim_key(resource))])
    assert "active" in statuses


def test_export_over_http_streams_ndjson_for_staff_only(client):
    http.scenario_1(client)
    http.scenario_2(client)
    r = client.get("/fhir/$export", params={"_type": "ExplanationOfBenefit"},
                   headers=AUDITOR)
    assert r.status_code == 200 and r.headers["content-type"].startswith(
        "application/fhir+ndjson")
    eobs = [json.loads(line, parse_float=Decimal) for line in r.content.splitlines()]
    assert sorted(claim_key(e) for e in eobs) == ["S1-0001", "S2-0001"]
    for eob in eobs:
        validate(eob)
        assert fhir(client, f"/fhir/ExplanationOfBenefit/{eob['id']}") == eob
    later = client.get("/fhir/$export", headers=AUDITOR, params={
        "_type": "ExplanationOfBenefit",
        "_since": max(e["meta"]["lastUpdated"] for e in eobs)})  # the later one only
    assert len(later.content.splitlines()) == 1
    assert fhir(client, "/fhir/$export", 403, hdrs=ADVOCATE, _type="Claim")[
        "resourceType"] == "OperationOutcome"
    fhir(client, "/fhir/$export", 404, hdrs=AUDITOR, _type="Patient")


# elements of the CMS Blue Button samples that carry Medicare-only data the ledger has not got
CMS_ONLY = {"extension", "contained", "benefitBalance", "referral", "facility", "procedure",
            "class", "subscriberId"}


@pytest.mark.parametrize("rtype,sample", [("ExplanationOfBenefit", "eobReadCarrier.json"),
                                          ("Claim", "claimMcsRead.json"),
                                          ("ClaimResponse", "claimResponseMcsRead.json"),
                                          ("Coverage", "coverageRead.json")])
def test_shape_covers_the_cms_blue_button_sample(client, rtype, sample):
    """Every element the CMS Blue Button R4 sample of the type has (but Medicare-only ones)
    is in ours too, and ours validates (R4B models)."""
    from tests.conftest import FIXTURES  # ../shared/fixtures, or the verbatim copy here

    cms = json.loads((FIXTURES / "fhir" / "cms-bfd-fhir-r4" / sample).read_text())
    http.scenario_1(client)
    caught_up(client)
    (entry, *_) = fhir(client, f"/fhir/{rtype}")["entry"]
    ours = entry["resource"]
    validate(ours)
    assert set(cms) - CMS_ONLY <= set(ours), set(cms) - CMS_ONLY - set(ours)
    if "item" in cms:
        item_keys = {k for i in cms["item"] for k in i} - {
            "extension", "category", "informationSequence", "locationCodeableConcept",
            "locationAddress", "detail", "servicedPeriod",
            "modifier"}  # scenario 1 has no modifiers (scenario 3's are checked above)
        assert item_keys <= set(ours["item"][0]), item_keys - set(ours["item"][0])
