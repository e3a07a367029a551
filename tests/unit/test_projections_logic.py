"""The projections' event handling without a database: over random encounter lives, the
claims projection's state mirrors the Encounter aggregate (balances per bucket, statuses,
money), the audit trail describes every event without PHI, and trends stay consistent."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from ledger.domain.errors import InvalidValue
from ledger.projections import audit, claims, queries, trends
from ledger.projections.base import PagedEvent
from ledger.projections.rows import accumulate
from ledger.projections.workload import run_workload

ZERO = Decimal("0.00")


@pytest.fixture(scope="module")
def lives() -> tuple[dict[Any, list[PagedEvent]], dict[Any, Any]]:
    events: dict[Any, list[PagedEvent]] = defaultdict(list)
    final: dict[Any, Any] = {}
    position = 0

    def save(*aggregates: Any) -> list[Any]:
        nonlocal position
        for agg in aggregates:
            for e in agg.collect_events():
                position += 1
                events[agg.id].append(PagedEvent(position, e))
            final[agg.id] = agg
        return []

    run_workload(save, encounters=300, seed=99, concurrency=20)
    return events, final


def test_claims_state_mirrors_the_aggregate(lives):
    events, final = lives
    for eid, stream in events.items():
        state = claims._opened(stream[0])
        for pe in stream[1:]:
            handler = claims.HANDLERS.get(type(pe.event))
            if handler:
                handler(state, pe.event, pe)
        enc = final[eid]
        for bucket in ("primary", "secondary", "tertiary", "patient"):
            assert state.balance(bucket) == enc.balance(bucket).amount, (eid, bucket)
        assert state.total_charge == enc.total_charge.amount
        assert state.diagnoses == [d.code for d in enc.diagnoses]
        for number, c in enc.claims.items():
            mine = state.claims[number]
            assert (mine.status, mine.paid, mine.patient_responsibility, mine.payer_icn,
                    mine.replaced_by, mine.appeal_open) == (
                c.status, c.paid.amount, c.patient_responsibility.amount, c.payer_icn,
                c.replaced_by, c.appeal_open), (eid, number)
            if mine.status == "paid":
                assert mine.outstanding == ZERO, "a paid claim is balanced"
        for n, ln in enc.lines.items():
            mine_ln = state.lines[int(n)]
            assert (mine_ln.charge, mine_ln.paid, mine_ln.removed, mine_ln.pointers) == \
                (ln.current_charge.amount, ln.paid.amount, ln.removed, list(ln.pointers))


def test_audit_describes_every_event_without_phi(lives):
    events, _ = lives
    for stream in events.values():
        ctx = audit.EncounterContext(stream[0].event.service_from, {}, 0)
        for pe in stream:
            describe = audit.DESCRIBERS[type(pe.event).__name__]
            summary, codes, claim, amount, effective, changes = describe(pe.event, ctx)
            assert summary
            assert "PT-" not in summary and "M-1" not in summary and "M-2" not in summary
            assert "Plan" not in summary
            assert all(isinstance(c, str) and c for c in codes)
            if type(pe.event).__name__ in ("DiagnosisRevised", "ServiceLineRevised"):
                assert "→" in summary and changes


def test_trends_contributions_follow_current_coding(lives):
    events, final = lives
    totals: dict[tuple[Any, ...], list[Any]] = {}
    for eid, stream in events.items():
        e0 = stream[0].event
        state = trends.TrendEncounter(eid, e0.responsible_parties[0].bucket)
        counters = trends.Counters()
        for pe in stream[1:]:
            handler = trends.HANDLERS.get(type(pe.event).__name__)
            if handler:
                handler(state, pe.event, counters)
        enc = final[eid]
        assert state.diagnoses == [d.code for d in enc.diagnoses]
        dx: dict[tuple[Any, ...], list[Any]] = {}
        services: dict[tuple[Any, ...], list[Any]] = {}
        trends._contribute(state, dx, services, +1)
        principal = enc.diagnoses[0].code
        assert dx[(principal, "principal")][2] == enc.total_charge.amount
        charged = sum((v[3] for k, v in services.items() if k[:2] == (principal, "principal")),
                      ZERO)
        assert charged == enc.total_charge.amount
        for k, v in dx.items():
            accumulate(totals, k, v, +1)
    assert all(v[0] > 0 for v in totals.values())


def test_accumulate_adds_and_subtracts():
    target: dict[tuple[Any, ...], list[Any]] = {}
    accumulate(target, ("a",), [1, Decimal("2.50")], +1)
    accumulate(target, ("a",), [1, Decimal("1.00")], -1)
    assert target == {("a",): [0, Decimal("1.50")]}


@pytest.mark.parametrize("cursor", ["x", "-1", "1.5"])
def test_bad_cursor_is_refused(cursor):
    with pytest.raises(InvalidValue) as err:
        queries._cursor(cursor)
    assert err.value.field == "cursor"


@pytest.mark.parametrize("limit", [0, 501, True])
def test_bad_limit_is_refused(limit):
    with pytest.raises(InvalidValue) as err:
        queries._limit(limit)
    assert err.value.field == "limit"


def test_codes_are_normalised():
    assert queries.normalise_code(" r10.31 ") == "R1031"
