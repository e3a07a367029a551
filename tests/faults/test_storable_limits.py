"""The read models accept every event the domain accepts (issue 13, item 2): what a column
cannot hold is refused at the edge and in the domain with a 422 naming the field — a 12-digit
charge, a NUL byte in a body, a path or a query, a date that is not one — and the projections
stay running afterwards."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ledger.domain.encounter import Encounter
from ledger.domain.errors import InvalidValue
from ledger.domain.values import MAX_AMOUNT, Money
from tests import builders as s
from tests.api.conftest import headers

pytestmark = pytest.mark.postgres

BILLER = headers("biller-1", "biller")
CODER = headers("coder-a", "coder")
AUDITOR = headers("auditor-1", "auditor")
ENCOUNTER = {"facility_id": "FAC-01", "patient_ref": "PT-5001", "service_from": "2026-03-10",
             "place_of_service": "11", "responsible_parties": [
                 {"bucket": "primary", "kind": "insurer", "payer_id": "PAYER-A"}]}
LINE = {"procedure_code": "99213", "charge": "130.00", "pointers": [1],
        "rendering_npi": s.NPI}


def _refused(response, field: str, rule: str | None = None) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert body["field"] == field, body
    if rule:
        assert body["rule"] == rule, body


def test_oversized_money_nul_bytes_and_non_dates_get_422_and_projections_keep_running(client):
    opened = client.post("/encounters", json=ENCOUNTER, headers=BILLER)
    assert opened.status_code == 201
    eid = opened.json()["encounter_id"]
    assert client.post(f"/encounters/{eid}/diagnoses", json={"code": "E11.9"},
                       headers=CODER).status_code == 200
    # a 12-digit charge (fits numeric(14,2) exactly, not the sums of the read models)
    _refused(client.post(f"/encounters/{eid}/lines",
                         json={**LINE, "charge": "999999999999.99"}, headers=CODER), "charge")
    _refused(client.post(f"/encounters/{eid}/lines",
                         json={**LINE, "charge": str(MAX_AMOUNT + 1)}, headers=CODER), "charge")
    # NUL bytes: body (top level and nested), path, query
    _refused(client.post("/encounters", json={**ENCOUNTER, "patient_ref": "PT\u0000X"},
                         headers=BILLER), "patient_ref", "text.control_characters")
    parties = [{"bucket": "primary", "kind": "insurer", "payer_id": "PAYER\u0000A"}]
    _refused(client.post("/encounters", json={**ENCOUNTER, "responsible_parties": parties},
                         headers=BILLER), "responsible_parties[0].payer_id",
             "text.control_characters")
    _refused(client.post(f"/encounters/{eid}/lines",
                         json={**LINE, "description": "bell\u0007"}, headers=CODER),
             "description", "text.control_characters")
    _refused(client.get("/patients/PT%00X/balance", headers=BILLER), "patient_ref",
             "text.control_characters")
    _refused(client.get(f"/encounters/{eid}/claims/C%001", headers=BILLER), "claim_number",
             "text.control_characters")
    _refused(client.get("/claims?payer_id=PAYER%00A", headers=BILLER), "payer_id",
             "text.control_characters")
    _refused(client.get("/audit/trail?actor_id=a%00", headers=AUDITOR), "actor_id",
             "text.control_characters")
    # dates: 0 is not a date; none before 1900; dates of service at most a year ahead
    _refused(client.post("/encounters", json={**ENCOUNTER, "service_from": 0},
                         headers=BILLER), "service_from")
    _refused(client.post("/encounters", json={**ENCOUNTER, "service_from": "1899-12-31"},
                         headers=BILLER), "service_from", "date.range")
    far = (date.today() + timedelta(days=400)).isoformat()
    _refused(client.post("/encounters", json={**ENCOUNTER, "service_from": far},
                         headers=BILLER), "service_from", "date.range")
    # nothing of that was written, and the read models still follow the log
    line = client.post(f"/encounters/{eid}/lines", json={**LINE, "charge": str(MAX_AMOUNT)},
                       headers=CODER)
    assert line.status_code == 200, line.text
    position = line.headers["x-log-position"]
    claims = client.get(f"/claims?min_position={position}", headers=BILLER)
    assert claims.status_code == 200, claims.text
    trail = client.get(f"/audit/trail?encounter_id={eid}&min_position={position}",
                       headers=AUDITOR)
    assert trail.status_code == 200, trail.text
    status = client.get("/projections/status", headers=AUDITOR).json()
    assert all(p["lag"] == 0 for p in status["projections"]), status
    ready = client.get("/ready")
    assert ready.status_code == 200, ready.text
    assert all(p["state"] == "ok" for p in ready.json()["projections"])


def test_the_domain_refuses_what_the_store_cannot_hold():
    """The same limits without the API (an import, a script): one copy of each rule."""
    with pytest.raises(InvalidValue) as caught:
        Money.parse("999999999999.99", "charge")
    assert (caught.value.field, caught.value.rule) == ("charge", "money.max")
    details = dict(facility_id="FAC-01", patient_ref="PT-1", service_from=date(2026, 3, 10),
                   service_to=None, place_of_service="11", responsible_parties=s.parties(),
                   actor=s.BILLER)
    with pytest.raises(InvalidValue) as caught:
        Encounter.open(**{**details, "patient_ref": "PT\x00"})
    assert (caught.value.field, caught.value.rule) == ("patient_ref",
                                                       "text.control_characters")
    with pytest.raises(InvalidValue) as caught:
        Encounter.open(**{**details, "service_from": date(1850, 1, 1)})
    assert caught.value.rule == "date.range"
    with pytest.raises(InvalidValue) as caught:
        Encounter.open(**{**details, "service_from": date(2030, 1, 1)},
                       today=date(2026, 12, 1))
    assert (caught.value.field, caught.value.rule) == ("service_from", "date.range")
    enc = Encounter.open(**details)
    enc.code_diagnosis("E11.9", code_set=_code_set(), actor=s.CODER_A)
    with pytest.raises(InvalidValue) as caught:
        enc.add_service_line(procedure_code="99213", charge="100.00", pointers=[1],
                             description="a\x00b", actor=s.CODER_A, rendering_npi=s.NPI)
    assert caught.value.rule == "text.control_characters"
    assert "description" in caught.value.field


def _code_set():
    from ledger.codes.icd10cm import default_code_set

    return default_code_set()


def test_a_number_is_not_a_date_in_a_filter_either(client):
    _refused(client.get("/claims?dos_from=0", headers=BILLER), "dos_from", "date.format")
    assert client.get("/claims?dos_from=2026-01-01", headers=BILLER).status_code == 200
