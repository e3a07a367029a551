"""Explain a figure: the parts are the events that moved it, with signed amounts that sum to the
figure the aggregate holds (scenario 7 numbers: paid 67.00, CO-45 38.00, PR-3 25.00; a
patient payment, a refund, a write-off; then a reversal)."""

from __future__ import annotations

from datetime import date

import pytest

from ledger.domain.errors import InvalidValue
from ledger.domain.values import Money
from ledger.explain import describe, explain, figure_reader, figures_of
from tests.unit.test_encounter_rules import BILLER, pay, submitted


def events_of(enc):
    return list(enc.collect_events())


def m(text: str) -> Money:
    return Money.parse(text)


def paid_encounter():
    enc = submitted("130.00")
    assert pay(enc)
    enc.record_patient_payment("40.00", method="card", received_on=date(2026, 4, 5),
                               actor=BILLER)
    enc.issue_refund("15.00", method="check", issued_on=date(2026, 4, 9), actor=BILLER,
                     reason="overpaid")
    return enc


def test_patient_balance_is_explained_by_its_events():
    enc = paid_encounter()
    result = explain(events_of(enc), "balance:patient")
    assert result["value"] == enc.balance("patient") == m("0.00")
    assert [(p["event"], p["amount"]) for p in result["parts"]] == [
        ("PatientResponsibilityAssigned", m("25.00")),
        ("PatientPaymentReceived", m("-40.00")),
        ("RefundIssued", m("15.00"))]
    assert [p["sign"] for p in result["parts"]] == ["+", "-", "+"]
    assert result["parts"][1]["effective_date"] == date(2026, 4, 5)
    assert result["parts"][2]["reason"] == "overpaid"
    assert "copay 25.00 to patient" in result["parts"][0]["detail"]


def test_every_figure_sums_to_the_aggregate_at_every_version():
    enc = submitted("130.00")
    assert pay(enc)
    enc.write_off("5.00", bucket="patient", category="small_balance", approver_id="mgr-1",
                  actor=BILLER, reason="under threshold")
    enc.record_patient_payment("40.00", method="card", received_on=date(2026, 4, 5),
                               actor=BILLER)
    enc.issue_refund("15.00", method="check", issued_on=date(2026, 4, 9), actor=BILLER,
                     reason="overpaid")
    events = events_of(enc)
    assert enc.balance("patient") == m("-5.00")  # a credit: the parts still sum to it
    for version in range(1, len(events) + 1):
        replayed = None
        for e in events[:version]:
            replayed = e.mutate(replayed)
        for figure in figures_of(replayed):
            result = explain(events, figure, as_of_version=version)
            assert result["value"] == figure_reader(figure)(replayed), (version, figure)
            assert sum((p["amount"] for p in result["parts"]), Money.zero()) == result["value"]
            assert all(not p["amount"].is_zero() for p in result["parts"])


def test_a_claims_paid_after_a_reversal_nets_to_zero():
    enc = submitted("130.00")
    assert pay(enc)
    assert pay(enc, status="22", charge="-130.00", paid="-67.00", co="-38.00", pr="-25.00",
               trace="T2")
    result = explain(events_of(enc), "claim:C-1:paid")
    assert [p["amount"] for p in result["parts"]] == [m("67.00"), m("-67.00")]
    assert result["value"] == m("0.00") and "CLP02 22" in result["parts"][1]["detail"]


def test_unknown_figures_name_the_field():
    events = events_of(submitted())
    for figure in ("balance:nobody", "claim:C-1:color", "line:x:paid", "nonsense", "claim:"):
        with pytest.raises(InvalidValue) as info:
            explain(events, figure)
        assert info.value.field == "figure"
    assert explain(events, "claim:NOPE:paid")["value"] == m("0.00")
    assert describe(events[0]) == ""
