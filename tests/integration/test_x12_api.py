"""POST /remittances and POST /claims/x12 (router mounted on a bare app here)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.routes_x12 import router
from tests.conftest import FIXTURES

pytestmark = pytest.mark.postgres


@pytest.fixture
def client(app, clean_db):
    api = FastAPI()
    api.include_router(router)
    api.state.ledger = app
    api.state.database_url = clean_db
    with TestClient(api) as c:
        yield c


def test_upload_837_then_835(client):
    hdr = {"content-type": "application/edi-x12", "x-file-name": "s01.837p"}
    r = client.post("/claims/x12", content=(FIXTURES / "scenarios/s01_original_freq1.837p"
                                            ).read_bytes(), headers=hdr)
    assert r.status_code == 200 and r.json()["outcome"] == "imported"
    body = (FIXTURES / "scenarios/s01_copay_co45.835").read_bytes()
    r = client.post("/remittances", content=body, headers=hdr)
    assert r.status_code == 200 and (r.json()["outcome"], r.json()["posted"]) == ("posted", 1)
    r = client.post("/remittances", content=body, headers=hdr)
    assert r.json()["outcome"] == "duplicate"


def test_quarantine_and_wrong_type(client):
    r = client.post("/remittances", content=(
        FIXTURES / "x12/linuxforhealth-x12/835_005010X221A1__tertiary-payment.835").read_bytes())
    assert r.status_code == 422 and "835.line_balance" in r.json()["rules"]
    r = client.post("/remittances", content=(FIXTURES / "scenarios/s01_original_freq1.837p"
                                             ).read_bytes())
    assert r.status_code == 400 and r.json()["rules"] == ["x12.transaction_type"]
    r = client.post("/claims/x12", content=b"not x12")
    assert r.status_code == 400
