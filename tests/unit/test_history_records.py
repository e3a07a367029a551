"""The history hook computes an encounter's record after each event incrementally (figures
only of the claims an event can change; the previous trends contribution kept after events
that cannot change it). After every event of the randomized workload, the incremental
record must equal the record computed from scratch: otherwise the history tables would
differ from what the read models said at that position."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from bench.workload import run_workload
from ledger.domain.encounter import Encounter
from ledger.projections import claims, trends
from ledger.projections.base import PagedEvent


@pytest.fixture(scope="module")
def streams() -> dict[Any, list[PagedEvent]]:
    events: dict[Any, list[PagedEvent]] = defaultdict(list)
    position = 0

    def save(*aggregates: Any) -> list[Any]:
        nonlocal position
        for agg in aggregates:
            for e in agg.collect_events():
                position += 1
                events[agg.id].append(PagedEvent(position, e))
        return []

    run_workload(save, encounters=600, seed=1919, concurrency=40)
    return events


def test_incremental_records_equal_full_records(streams):
    kinds: set[type] = set()
    kept = 0
    for stream in streams.values():
        cs = claims.start_state(stream[0])
        ts = trends.TrendState(stream[0].event.mutate(None))
        c_rec = claims.history_record(cs)
        t_rec = trends.history_record(ts)
        for pe in stream[1:]:
            claims.fold_state(cs, pe)
            pe.event.mutate(ts.enc)
            kinds.add(type(pe.event))
            c_rec = claims.history_record(cs, pe, c_rec)
            assert c_rec == claims.history_record(cs), (type(pe.event).__name__, pe.position)
            t_new = trends.history_record(ts, pe, t_rec)
            kept += t_new is t_rec
            assert t_new == trends.contribution(ts.enc), (type(pe.event).__name__, pe.position)
            t_rec = t_new
    # the workload exercised the shortcuts: most event kinds, and records kept as they were
    shortcuts = claims.FIGURES_KEPT | claims.FIGURES_OF_ITS_CLAIM | trends.CONTRIBUTION_KEPT
    assert len(kinds & shortcuts) >= 20 and kept > 100


def test_every_shortcut_names_an_encounter_event():
    for cls in claims.FIGURES_KEPT | claims.FIGURES_OF_ITS_CLAIM | trends.CONTRIBUTION_KEPT:
        assert issubclass(cls, Encounter.Event)
    assert not claims.FIGURES_KEPT & claims.FIGURES_OF_ITS_CLAIM
    for cls in claims.FIGURES_OF_ITS_CLAIM:
        assert "claim_number" in cls.__annotations__, cls.__name__
