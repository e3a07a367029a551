"""Scenarios 1, 2, 3 and 7 imported through X12, then read from the claims and balances views
(ledger.projections) caught up: the numbers of shared/docs/domain.md."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import psycopg
import pytest

from ledger.projections import queries as q
from ledger.projections.runner import ProjectionRunner
from ledger.x12.importer import X12Importer
from tests import builders as s
from tests.conftest import FIXTURES
from tests.integration.test_x12_import import remittance_835, submit

pytestmark = pytest.mark.postgres
SCEN = FIXTURES / "scenarios"


def caught_up(app_env, url):
    with ProjectionRunner(app_env) as runner:
        runner.catch_up()
    return psycopg.connect(url)


def D(text):
    return Decimal(text)


def test_views_after_x12_imports(app, app_env, clean_db):
    imp = X12Importer(app, clean_db)
    eid1 = imp.import_path(SCEN / "s01_original_freq1.837p").encounters[0]
    assert imp.import_path(SCEN / "s01_copay_co45.835").posted == 1

    eid2 = s.open_encounter(app, patient_ref="PT-1002")
    s.code(app, eid2, "M54.50")
    s.line(app, eid2, "99203", "250.00", [1])
    s.line(app, eid2, "72100", "120.00", [1])
    submit(app, eid2, "ENC1002")
    assert imp.import_path(SCEN / "s02_deductible_coins.835").posted == 1

    eid3 = s.open_encounter(app, patient_ref="PT-1003")
    s.code(app, eid3, "M54.50")
    s.line(app, eid3, "97110", "180.00", [1], units=4, modifiers=["GP"])
    submit(app, eid3, "ENC1003")
    assert imp.import_path(SCEN / "s03a_denial_co50.835").posted == 1

    eid7 = s.open_encounter(app, patient_ref="PT-1007")
    s.code(app, eid7, "E11.9")
    line = s.line(app, eid7, "99213", "130.00", [1])
    submit(app, eid7, "ENC1007")
    imp.import_bytes(remittance_835(21, "EFT7001", "67.00", [
        "CLP*ENC1007*1*130.00*67.00*25.00*12*A0004*11*1", "SVC*HC:99213*130.00*67.00**1",
        "CAS*CO*45*38.00", "CAS*PR*3*25.00"]))
    app.execute(eid7, "revise_service_line", actor=s.CODER_B, line_no=line,
                reason="MDM moderate", procedure_code="99214", charge="180.00")
    submit(app, eid7, "ENC1007R", frequency="7", original_icn="A0004")
    assert imp.import_bytes(remittance_835(22, "EFT7002", "36.50", [
        "CLP*ENC1007*22*-130.00*-67.00*-25.00*12*A0004*11*1", "SVC*HC:99213*-130.00*-67.00**1",
        "CAS*CO*45*-38.00", "CAS*PR*3*-25.00",
        "CLP*ENC1007R*1*180.00*103.50*25.00*12*A0005*11*7", "SVC*HC:99214*180.00*103.50**1",
        "CAS*CO*45*51.50", "CAS*PR*3*25.00"])).posted == 2

    with caught_up(app_env, clean_db) as conn:
        c1 = q.get_claim(conn, "ENC1001", eid1)
        assert (c1["status"], c1["paid"], c1["contractual"], c1["patient_responsibility"]) == (
            "paid", D("114.82"), D("95.18"), D("30.00"))
        assert (c1["balance_primary"], c1["balance_patient"]) == (D("0.00"), D("30.00"))
        p1 = q.patient_balance(conn, app.get_encounter(eid1).patient_ref)
        assert (p1["owed"], p1["copay"]) == (D("30.00"), D("30.00"))

        c2 = q.get_claim(conn, "ENC1002", eid2)
        assert (c2["paid"], c2["balance_primary"], c2["balance_patient"]) == (
            D("80.00"), D("0.00"), D("120.00"))
        p2 = q.patient_balance(conn, "PT-1002")
        assert (p2["owed"], p2["deductible"], p2["coinsurance"]) == (
            D("120.00"), D("100.00"), D("20.00"))

        c3 = q.get_claim(conn, "ENC1003", eid3)
        assert c3["status"] == "denied" and c3["balance_patient"] == D("0.00")
        assert c3["denial_deadline"] is not None and c3["denial_deadline"] > date(2026, 4, 14)

        original = q.get_claim(conn, "ENC1007", eid7)
        replacement = q.get_claim(conn, "ENC1007R", eid7)
        assert original["paid"] == D("0.00") and original["replaced_by"] == "ENC1007R"
        assert (replacement["paid"], replacement["frequency"], replacement["original_icn"]) == (
            D("103.50"), "7", "A0004")
        assert replacement["balance_patient"] == D("25.00")
        assert replacement["balance_primary"] == D("0.00")
        p7 = q.patient_balance(conn, "PT-1007")
        assert p7["owed"] == D("25.00")
