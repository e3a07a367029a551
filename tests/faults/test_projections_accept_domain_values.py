"""Every value the domain accepts, every projection can store (issue 13, item 2). Hypothesis
draws arbitrary text (any code point, control characters included), amounts up to the
limits, dates across the allowed range and units, runs them through the domain's commands,
saves what the domain accepts, and has every projection apply it: none may fail.

A value the domain refuses is fine (that is the point of the limits); a value it accepts and a
projection cannot hold stops that read model for good, since events never change."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application.service import LedgerApplication
from ledger.domain.errors import LedgerError
from ledger.domain.model import Adjustment, LineResult, RemittanceRef, ResponsibleParty
from ledger.domain.values import EARLIEST_DATE, FUTURE_ALLOWANCE, MAX_AMOUNT, Money
from ledger.projections.runner import ProjectionRunner
from tests import builders as s

pytestmark = pytest.mark.postgres

TODAY = date.today()
# any code point (surrogates included), with the ones a store chokes on drawn often
NASTY = ["\x00", "\x07", "\x1b", "\x7f", "\ud800", "\udfff", "\u0085", "\u2028", "\U0001f600",
         "'", "\\", "%", "\t\n\r"]
nasty = st.builds(lambda a, b, c: a + b + c, st.text(max_size=4), st.sampled_from(NASTY),
                  st.text(max_size=4))
texts = st.text(max_size=30) | nasty
ids = st.text(min_size=1, max_size=20) | nasty
EDGES = [MAX_AMOUNT, MAX_AMOUNT + Decimal("0.01"), Decimal("999999999999.99"),
         Decimal("99999999999.99"), Decimal("0.01")]
positive = st.sampled_from(EDGES) | st.decimals(min_value=Decimal("0.01"),
                                                max_value=MAX_AMOUNT * 2, places=2)
amounts = positive | positive.map(lambda d: -d)
dates = st.dates(min_value=EARLIEST_DATE - timedelta(days=3),
                 max_value=TODAY + FUTURE_ALLOWANCE * 2) | st.sampled_from(
    [date(1, 1, 1), date(9999, 12, 31), EARLIEST_DATE, TODAY + FUTURE_ALLOWANCE])
units = st.sampled_from([Decimal("99999.999"), Decimal("100000"), Decimal(1)]) | st.decimals(
    min_value=Decimal("0.001"), max_value=Decimal("200000"), places=3)


@st.composite
def encounters(draw: Any) -> dict[str, Any]:
    return {
        "open": dict(facility_id=draw(ids), patient_ref=draw(ids),
                     service_from=draw(dates), service_to=None, place_of_service="11",
                     responsible_parties=[
                         ResponsibleParty("primary", "insurer", draw(ids), draw(texts),
                                          draw(texts)),
                         ResponsibleParty("patient", "patient", "", "", "")]),
        "lines": draw(st.lists(st.tuples(positive, units, texts), min_size=1, max_size=3)),
        "adjustment": (draw(amounts), draw(texts)),
        "claim_number": draw(ids),
        "paid_fraction": draw(st.sampled_from([Decimal(0), Decimal("0.5"), Decimal(1)])),
        "remit": (draw(ids), draw(dates)),
        "payment": (draw(positive), draw(dates)),
        "dispute": (draw(ids), draw(texts), draw(texts)),
    }


def _try(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except LedgerError:  # the domain refused it: nothing was written
        return None


def _run(app: LedgerApplication, plan: dict[str, Any]) -> None:
    opened = _try(app.open_encounter, actor=s.BILLER, claim_type="professional",
                  **plan["open"])
    if opened is None:
        return
    eid = opened.encounter_id
    _try(app.execute, eid, "code_diagnosis", actor=s.CODER_A, code="E11.9")
    lines = []
    for charge, count, text in plan["lines"]:
        added = _try(app.execute, eid, "add_service_line", actor=s.CODER_A,
                     procedure_code="99213", charge=str(charge), units=str(count),
                     pointers=[1], rendering_npi=s.NPI, description=text)
        if added is not None:
            lines.append((added.value, Money(charge)))
    if not lines:
        return
    amount, reason = plan["adjustment"]
    _try(app.execute, eid, "adjust_charge", actor=s.BILLER, line_no=lines[0][0],
         amount=str(amount), reason=reason or "r")
    enc = app.get_encounter(eid)
    claim = plan["claim_number"]
    if _try(app.execute, eid, "create_claim", actor=s.BILLER, claim_number=claim) is None:
        return
    _try(app.scrub_claim, eid, claim, actor=s.BILLER)
    _try(app.execute, eid, "submit_claim", actor=s.BILLER, claim_number=claim)
    enc = app.get_encounter(eid)
    results, total, total_paid = [], Money.zero(), Money.zero()
    for line_no, _ in lines:
        line = enc.lines.get(str(line_no))
        if line is None:
            continue
        charge = line.current_charge
        paid = Money((charge.amount * plan["paid_fraction"]).quantize(Decimal("0.01")))
        adjs = (Adjustment("CO", "45", charge - paid),) if charge != paid else ()
        results.append(LineResult(line_no, "99213", charge, paid, paid, line.units, adjs))
        total, total_paid = total + charge, total_paid + paid
    trace, paid_on = plan["remit"]
    _try(app.execute, eid, "post_adjudication", actor=s.BILLER, claim_number=claim,
         status_code="1", charge=total, paid=total_paid, patient_responsibility=Money.zero(),
         payer_icn=trace, adjudication_date=paid_on,
         remittance=RemittanceRef(plan["open"]["responsible_parties"][0].payer_id, trace,
                                  "sha256:x", paid_on),
         claim_adjustments=[], lines=results, remarks=[])
    pay, received = plan["payment"]
    _try(app.execute, eid, "record_patient_payment", actor=s.BILLER, amount=str(pay),
         method="cash", received_on=received)
    dispute_id, description, note = plan["dispute"]
    _try(app.execute, eid, "open_dispute", actor=s.BILLER, dispute_id=dispute_id,
         line_nos=[lines[0][0]], category="billing_error", advocate_id="advocate-1",
         description=description or "d")
    _try(app.execute, eid, "add_dispute_note", actor=s.ADVOCATE, dispute_id=dispute_id,
         note=note or "n")


@pytest.fixture(scope="module")
def ledger_and_runner(database_url: str):
    from ledger.config import Settings
    from ledger.persistence.database import eventsourcing_env

    env = eventsourcing_env(database_url, Settings(database_url=database_url, cache_size=0))
    app = LedgerApplication(env=env)
    runner = ProjectionRunner(env, parallel=False)
    yield app, runner
    runner.close()
    app.close()


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(plan=encounters())
def test_every_projection_stores_what_the_domain_accepts(ledger_and_runner, plan):
    app, runner = ledger_and_runner
    _run(app, plan)
    head = app.max_position()
    positions = runner.catch_up(until=head)  # raises the first projection error
    assert all(p >= head for p in positions.values()), positions
