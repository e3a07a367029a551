"""The projections' event handling without a database: over random encounter lives, the
claims projection's state mirrors the Encounter aggregate (balances per bucket, statuses,
money), the audit trail describes every event without PHI, and trends stay consistent."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from bench.workload import run_workload
from ledger.domain import figures
from ledger.domain.errors import InvalidValue
from ledger.projections import audit, claims, queries, trends
from ledger.projections.base import PagedEvent
from ledger.projections.rows import accumulate

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


def test_claims_state_is_the_aggregate_and_its_figures_add_up(lives):
    """The view's state is the Encounter itself (applied through its own apply methods);
    the per-claim figures the view writes add up to the aggregate's own totals."""
    events, final = lives
    for eid, stream in events.items():
        state = claims.start_state(stream[0])
        for pe in stream[1:]:
            claims.fold_state(state, pe)
        enc = final[eid]
        assert state.enc.version == enc.version and state.events == len(stream)
        for bucket in ("primary", "secondary", "tertiary", "patient"):
            assert state.enc.balance(bucket) == enc.balance(bucket), (eid, bucket)
        paid_by_line: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for number, c in enc.claims.items():
            f = claims.claim_figures(state.enc.claims[number], state.claims[number])
            assert (f.paid, f.patient_responsibility) == (c.paid.amount,
                                                          c.patient_responsibility.amount)
            if c.status == "paid" and not c.replaced_by:
                assert f.outstanding == ZERO, "a paid claim is balanced"
            for n, money in figures.claim_line_money(c).items():
                paid_by_line[n] += money.paid.amount
        for n, ln in enc.lines.items():
            assert paid_by_line.get(int(n), ZERO) == ln.paid.amount, (eid, n)


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
        enc = stream[0].event.mutate(None)
        for pe in stream[1:]:
            pe.event.mutate(enc)
        assert enc.version == final[eid].version
        dx_rows, service_rows = trends.contribution(enc)
        dx = dict(dx_rows)
        services = dict(service_rows)
        principal = enc.diagnoses[0].code
        assert dx[(principal, "principal")][2] == enc.total_charge.amount
        charged = sum((v[3] for k, v in services.items() if k[:2] == (principal, "principal")),
                      ZERO)
        assert charged == enc.total_charge.amount
        paid = sum((v[5] for k, v in services.items() if k[:2] == (principal, "principal")),
                   ZERO)
        assert paid == sum((ln.paid.amount for ln in enc.active_lines()), ZERO)
        for k, v in dx.items():
            accumulate(totals, k, v, +1)
    assert all(v[0] > 0 for v in totals.values())


@pytest.mark.parametrize("kind,code,revenue,expected", [
    ("service", "99214", "", "service"),       # CPT
    ("service", "27447", "", "service"),       # surgery
    ("supply", "A4550", "", "supply"),         # a supply line
    ("service", "J1100", "", "supply"),        # a drug (HCPCS J) billed on a service line
    ("service", "L8699", "", "supply"),        # prosthetic implant
    ("service", "C1776", "", "supply"),        # joint device (implant)
    ("service", "E0601", "", "supply"),        # DME
    ("service", "G0008", "", "service"),       # HCPCS service (vaccine administration)
    ("service", "", "0278", "supply"),         # implants (revenue code 027x)
    ("service", "", "0272", "supply"),         # sterile supplies
    ("service", "", "0360", "service"),        # operating room
    ("service", "97110", "0420", "service"),   # physical therapy
])
def test_trend_labels_supplies_and_services(kind, code, revenue, expected):
    from ledger.codes.procedures import line_category

    assert line_category(kind, code, revenue) == expected


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
