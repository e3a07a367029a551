"""Effective time combined with recorded time (issue 19, item 2), on a hand-built scenario
with exact Decimal expectations:

- encounter S: a September service (2026-09-15, one line of 200.00 to PAYER-A), submitted in
  September, adjudicated on 2026-10-10 (paid 120.00, patient responsibility 30.00, CO-45
  50.00); the payer reverses that adjudication on 2026-11-05 (CLP02=22), recorded in November;
- encounter O: an October service (2026-10-05, 80.00 to PAYER-A), submitted, not adjudicated.

Recorded times are pinned (the events' timestamps), so "as known on 31 October" is
``as_of=2026-10-31T23:59:59Z``; "as known now" is the plain read."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from decimal import Decimal

import psycopg
import pytest

from bench.workload import CODE_SET, EncounterLife
from ledger.domain.encounter import Encounter
from ledger.domain.model import Actor, Adjustment, LineResult, ResponsibleParty
from ledger.domain.values import Money
from ledger.projections import asof
from ledger.projections import queries as q
from ledger.projections.runner import ProjectionRunner

# ruff: noqa: F811 - the private_* fixtures below are imported, then requested by name
from tests.integration.test_projections_fixtures import (  # noqa: F401
    private_app,
    private_db,
    private_env,
)

pytestmark = pytest.mark.postgres
BILLER = Actor("biller-1", "biller")
CODER = Actor("coder-a", "coder")
D = Decimal
SEPTEMBER = q.Effective(dos_from=date(2026, 9, 1), dos_to=date(2026, 9, 30))
OCT_31 = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)


def _at(monkeypatch, moment: datetime) -> None:
    """Events triggered from now on are recorded at ``moment``."""
    monkeypatch.setattr(Encounter.Event, "create_timestamp", staticmethod(lambda: moment))


def _encounter(dos: date, charge: str, patient: str) -> Encounter:
    enc = Encounter.open(
        facility_id="FAC-01", patient_ref=patient, service_from=dos, service_to=dos,
        place_of_service="11", claim_type="professional", actor=BILLER,
        responsible_parties=[ResponsibleParty("primary", "insurer", "PAYER-A", "Plan", "M-1"),
                             ResponsibleParty("patient", "patient", "", "", "")])
    enc.code_diagnosis("E119", code_set=CODE_SET, actor=CODER)
    enc.add_service_line(procedure_code="99213", charge=charge, pointers=[1], actor=CODER)
    enc.create_claim("C-1", actor=BILLER)
    enc.scrub_claim("C-1", ruleset_version="t", findings=[], actor=BILLER)
    enc.submit_claim("C-1", actor=BILLER, interchange_control="000000001", group_control="1",
                     transaction_control="0001")
    return enc


@pytest.fixture
def scenario(private_app, private_env, private_db, monkeypatch):
    _at(monkeypatch, datetime(2026, 9, 20, 12, tzinfo=UTC))
    s = _encounter(date(2026, 9, 15), "200.00", "PT-EFF-S")
    private_app.save(s)
    _at(monkeypatch, datetime(2026, 10, 6, 12, tzinfo=UTC))
    o = _encounter(date(2026, 10, 5), "80.00", "PT-EFF-O")
    private_app.save(o)
    _at(monkeypatch, datetime(2026, 10, 10, 12, tzinfo=UTC))
    line = s.claim_lines(s.claims["C-1"])[0]
    s.post_adjudication(
        "C-1", status_code="1", charge=Money(D("200.00")), paid=Money(D("120.00")),
        patient_responsibility=Money(D("30.00")), payer_icn="ICN-S-1",
        adjudication_date=date(2026, 10, 10),
        remittance=EncounterLife(random.Random(1), 1).remit("PAYER-A", date(2026, 10, 10)),
        claim_adjustments=[], actor=BILLER,
        lines=[LineResult(line.line_no, "99213", Money(D("200.00")), Money(D("120.00")),
                          Money(D("150.00")), line.units,
                          (Adjustment("CO", "45", Money(D("50.00"))),
                           Adjustment("PR", "2", Money(D("30.00")))))])
    private_app.save(s)
    _at(monkeypatch, datetime(2026, 11, 5, 12, tzinfo=UTC))
    life = EncounterLife(random.Random(2), 2)
    life.enc = s
    life.submitted = {"C-1": [(line.line_no, Money(D("200.00")))]}
    life.reverse("C-1", date(2026, 11, 5))
    private_app.save(s)
    monkeypatch.undo()
    runner = ProjectionRunner(private_env)
    try:
        runner.catch_up()
    finally:
        runner.close()
    with psycopg.connect(private_db, autocommit=True) as conn:
        yield conn


def _money(row: dict, *names: str) -> tuple:
    return tuple(row[n] for n in names)


def test_septembers_services_as_known_on_31_october_and_now(scenario):
    conn = scenario
    oct31 = asof.resolve(conn, as_of=OCT_31, projections=("claims",))
    assert oct31 is not None and oct31.moment == OCT_31
    then = q.payer_balances_effective(conn, SEPTEMBER, position=oct31.position,
                                      as_of=date(2026, 10, 31))
    now = q.payer_balances_effective(conn, SEPTEMBER, as_of=date(2026, 10, 31))
    assert len(then) == len(now) == 1
    measures = ("claims", "open_claims", "charged", "allowed", "paid", "contractual",
                "patient_responsibility", "outstanding")
    # as known on 31 October: adjudicated, the payer owes nothing more
    assert _money(then[0], *measures) == (1, 0, D("200.00"), D("150.00"), D("120.00"),
                                          D("50.00"), D("30.00"), D("0.00"))
    # as known now: the November reversal took it all back, the claim is open again
    assert _money(now[0], *measures) == (1, 1, D("200.00"), D("0.00"), D("0.00"),
                                         D("0.00"), D("0.00"), D("200.00"))
    assert now[0]["aging_31_60"] == D("200.00")  # submitted 2026-09-20, aged to 31 October
    # both dates on each figure: effective (service, adjudication, payment) and recorded
    assert (then[0]["service_from"], then[0]["last_adjudicated_on"],
            then[0]["last_paid_on"]) == (date(2026, 9, 15), date(2026, 10, 10),
                                         date(2026, 10, 10))
    assert then[0]["recorded_at"] == datetime(2026, 10, 10, 12, tzinfo=UTC)
    assert then[0]["recorded_position"] <= oct31.position < now[0]["recorded_position"]
    assert (now[0]["last_adjudicated_on"], now[0]["recorded_at"]) == (
        date(2026, 11, 5), datetime(2026, 11, 5, 12, tzinfo=UTC))
    # without the date-of-service filter the October service is there too
    every = q.payer_balances_effective(conn, q.Effective(dos_from=date(2026, 9, 1)),
                                       position=oct31.position, as_of=date(2026, 10, 31))
    assert _money(every[0], "claims", "charged", "outstanding") == (
        2, D("280.00"), D("80.00"))


def test_adjudication_and_payment_dates_combine_with_as_of(scenario):
    conn = scenario
    oct31 = asof.resolve(conn, as_of=OCT_31, projections=("claims",)).position
    october = {"adjudicated_from": date(2026, 10, 1), "adjudicated_to": date(2026, 10, 31)}
    # claims list: adjudicated in October, as known on 31 October vs now
    then = q.list_claims(conn, position=oct31, **october).items
    assert [(c["patient_ref"], c["paid"], c["last_paid_on"]) for c in then] == [
        ("PT-EFF-S", D("120.00"), date(2026, 10, 10))]
    assert q.list_claims(conn, **october).items == []  # now its last adjudication is November
    paid_november = q.list_claims(conn, paid_from=date(2026, 11, 1)).items
    assert [(c["paid"], c["status"]) for c in paid_november] == [(D("0.00"), "submitted")]
    # payer balances by payment date
    by_paid = q.payer_balances_effective(
        conn, q.Effective(paid_from=date(2026, 10, 1), paid_to=date(2026, 10, 31)),
        position=oct31)
    assert _money(by_paid[0], "claims", "paid") == (1, D("120.00"))
    assert q.payer_balances_effective(
        conn, q.Effective(paid_from=date(2026, 10, 1), paid_to=date(2026, 10, 31))) == []
    # patient balances of September's services: the patient owed 30.00 on 31 October
    patients = q.patient_balances_effective(conn, SEPTEMBER, position=oct31)
    assert [(p["patient_ref"], p["encounters"], p["owed"], p["credit"]) for p in patients] == [
        ("PT-EFF-S", 1, D("30.00"), D("0.00"))]
    assert patients[0]["service_from"] == date(2026, 9, 15)
    now = q.patient_balances_effective(conn, SEPTEMBER)
    assert [(p["patient_ref"], p["owed"]) for p in now] == [("PT-EFF-S", D("0.00"))]
    with pytest.raises(Exception) as bad:
        q.payer_balances_effective(conn, q.Effective(dos_from=date(2026, 10, 1),
                                                     dos_to=date(2026, 9, 1)))
    assert getattr(bad.value, "rule", "") == "effective.range"


def test_effective_balances_over_every_claim_equal_the_payer_balances(scenario):
    """Unfiltered, the per-claim sums equal the summed read model (now and as of)."""
    conn = scenario
    for position in (None, asof.resolve(conn, as_of=OCT_31, projections=("claims",)).position):
        table = {(r["payer_id"], r["party_kind"]): r
                 for r in q.payer_balances(conn, position=position)}
        sums = q.payer_balances_effective(conn, q.Effective(), position=position)
        assert {(r["payer_id"], r["party_kind"]) for r in sums} == set(table)
        for r in sums:
            t = table[(r["payer_id"], r["party_kind"])]
            for m in ("claims", "open_claims", "allowed", "paid", "contractual",
                      "patient_responsibility", "outstanding"):
                assert r[m] == t[m], (position, m)


def test_cli_report_by_effective_time(scenario, private_db, monkeypatch):
    import orjson
    from typer.testing import CliRunner

    from ledger.cli.main import app
    from ledger.config import get_settings

    monkeypatch.setenv("LEDGER_DATABASE_URL", private_db)
    get_settings.cache_clear()
    try:
        base = ["report", "payer-balances", "--dos-from", "2026-09-01", "--dos-to", "2026-09-30"]
        then = CliRunner().invoke(app, [*base, "--as-of", "2026-10-31T23:59:59Z"])
        assert then.exit_code == 0, then.output
        body = orjson.loads(then.output)
        assert body["effective"]["dos_from"] == "2026-09-01"
        assert [(p["paid"], p["outstanding"]) for p in body["payers"]] == [("120.00", "0.00")]
        now = orjson.loads(CliRunner().invoke(app, base).output)
        assert [(p["paid"], p["outstanding"]) for p in now["payers"]] == [("0.00", "200.00")]
        bad = CliRunner().invoke(app, ["report", "claims", "--paid-from", "2026-13-01"])
        assert bad.exit_code == 2 and "paid_from" in bad.output
    finally:
        get_settings.cache_clear()
