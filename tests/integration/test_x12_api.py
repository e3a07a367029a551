"""POST /remittances and POST /claims/x12 through the real app: bearer tokens, the uploader
recorded as the actor, refusals as problem+json with the import report."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from ledger.config import Settings
from tests.api.conftest import headers, provision
from tests.conftest import FIXTURES

pytestmark = pytest.mark.postgres

BILLER = headers("biller-1", "biller")


@pytest.fixture
def client(clean_db):
    provision(clean_db)
    with TestClient(create_app(Settings(database_url=clean_db, cache_size=0))) as c:
        yield c


def test_upload_837_then_835(client):
    hdr = {**BILLER, "content-type": "application/edi-x12", "x-file-name": "s01.837p"}
    r = client.post("/claims/x12", content=(FIXTURES / "scenarios/s01_original_freq1.837p"
                                            ).read_bytes(), headers=hdr)
    assert r.status_code == 200 and r.json()["outcome"] == "imported"
    body = (FIXTURES / "scenarios/s01_copay_co45.835").read_bytes()
    r = client.post("/remittances", content=body, headers=hdr)
    assert r.status_code == 200 and (r.json()["outcome"], r.json()["posted"]) == ("posted", 1)
    r = client.post("/remittances", content=body, headers=hdr)
    assert r.json()["outcome"] == "duplicate"
    trail = client.get("/audit/trail", headers=headers("auditor-1", "auditor")).json()["items"]
    assert trail and {row["actor_id"] for row in trail} <= {"biller-1"}


def test_quarantine_and_wrong_type(client):
    r = client.post("/remittances", headers=BILLER, content=(
        FIXTURES / "x12/linuxforhealth-x12/835_005010X221A1__tertiary-payment.835").read_bytes())
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert "835.line_balance" in r.json()["report"]["rules"]
    r = client.post("/remittances", headers=BILLER, content=(
        FIXTURES / "scenarios/s01_original_freq1.837p").read_bytes())
    assert r.status_code == 400 and r.json()["report"]["rules"] == ["x12.transaction_type"]
    r = client.post("/claims/x12", content=b"not x12", headers=BILLER)
    assert r.status_code == 400 and r.json()["field"] == "body"


def test_only_billers_upload(client):
    r = client.post("/remittances", content=b"ISA", headers=headers("coder-a", "coder"))
    assert r.status_code == 403
    assert client.post("/remittances", content=b"ISA").status_code == 401


def test_exceptions_listed_for_billers_and_auditors_and_resolved_by_an_event(client):
    from pathlib import Path

    here = Path(__file__).resolve().parents[1] / "fixtures" / "x12"
    hdr = {**BILLER, "content-type": "application/edi-x12"}
    for name in ("c1_originals.837p", "r1_first_payments.835"):
        path = "/claims/x12" if name.endswith("837p") else "/remittances"
        assert client.post(path, content=(here / name).read_bytes(), headers=hdr
                           ).status_code == 200
    r = client.post("/remittances", content=(here / "r5_same_payment_new_trace.835"
                                             ).read_bytes(), headers=hdr)
    assert r.status_code == 200 and r.json()["held"] == 1
    auditor = headers("auditor-1", "auditor")
    listed = client.get("/exceptions", headers=auditor)
    assert listed.status_code == 200
    (item,) = listed.json()["exceptions"]
    assert (item["kind"], item["claim_number"], item["payer_id"], item["trace_number"],
            item["amount"], item["rule"]) == ("duplicate_payment", "ENC7005", "1512345678",
                                              "EFT7500", "114.82", "payment.duplicate")
    assert client.get("/exceptions", headers=headers("coder-a", "coder")).status_code == 403
    url = f"/exceptions/{item['exception_id']}/resolve"
    assert client.post(url, json={"action": "dismissed", "reason": "x"},
                       headers=auditor).status_code == 403
    bad = client.post(url, json={"action": "deleted", "reason": "x"}, headers=BILLER)
    assert bad.status_code == 422
    bad = client.get("/exceptions?status=maybe", headers=BILLER)
    assert bad.status_code == 422 and bad.json()["rule"] == "exceptions.status"
    ok = client.post(url, json={"action": "dismissed", "reason": "re-sent remittance"},
                     headers=BILLER)
    assert ok.status_code == 200 and ok.json()["resolution"] == "dismissed"
    again = client.post(url, json={"action": "posted", "reason": "x"}, headers=BILLER)
    assert again.status_code == 409 and again.json()["rule"] == "exceptions.open"
    assert client.get("/exceptions", headers=BILLER).json()["exceptions"] == []
    done = client.get("/exceptions?status=resolved", headers=BILLER).json()["exceptions"]
    assert [(d["resolution"], d["resolved_by"]) for d in done] == [("dismissed", "biller-1")]
