"""Read models built from the Encounter aggregate itself.

A page's events are applied to the same ``Encounter`` class the commands use (its own
``apply`` methods, through the library's ``mutate``, which also checks each event is the next
version), and the view writes its rows from the aggregate's state. So a new event or state
field of the aggregate reaches the read models without a second implementation of its rules.

Each view keeps the encounters it has applied in a bounded in-memory cache. A cached state is
used only when its version is exactly the one before the page's first event of that
encounter; otherwise (not cached, evicted, another runner applied events meanwhile, a page
rolled back after being applied, a rebuild) the state is rebuilt by replaying the
encounter's earlier events from the event store, in the page's transaction, all such
encounters of a page in one query. The state is a pure function of the log prefix, so the
cache can change speed, never rows. A page that fails drops its encounters from the cache.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from ledger.domain.encounter import Encounter
from ledger.gc_pause import gc_paused
from ledger.projections.base import EVENTS_TABLE, PagedEvent, ReadModel

log = logging.getLogger(__name__)

S = TypeVar("S")  # a view's per-encounter state; it holds the aggregate as ``.enc``

DEFAULT_CACHE_SIZE = 2_000  # encounters per view; a miss costs one replay query per page


class AggregateReadModel(ReadModel, Generic[S]):
    """A read model whose per-encounter state wraps an ``Encounter``. Subclasses implement
    ``start`` (state from the ``Opened`` event), ``fold`` (what the view keeps beside the
    aggregate: positions, times, queue items; the aggregate itself is mutated here) and
    ``write`` (rows and counters from the states before and after the page)."""

    cache_size: ClassVar[int] = DEFAULT_CACHE_SIZE
    # The *_history tables this view keeps (ledger.projections.history); empty: none.
    history_tables: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, mapper: Mapper[Any] | None = None,
                 history: bool = True, events_schema: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mapper = mapper
        # Keep the history tables (as-of reads) in the page's transaction. Off only to
        # measure what history costs (bench/asof.py).
        self.history = history and bool(self.history_tables)
        # encounter id -> (state, its measure as last written)
        self._cache: OrderedDict[UUID, tuple[S, Any]] = OrderedDict()
        self.replayed = 0  # encounters rebuilt from the store (metric)
        self._replay = SQL(
            "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state "
            "FROM {0}.{1} e JOIN unnest(%s::uuid[], %s::bigint[]) AS b(id, upto) "
            "ON e.originator_id = b.id AND e.originator_version < b.upto "
            "ORDER BY e.originator_id, e.originator_version"
        ).format(Identifier(events_schema or self.datastore.schema), Identifier(EVENTS_TABLE))

    # ------------------------------------------------------------------ to implement
    def start(self, pe: PagedEvent) -> S:
        raise NotImplementedError

    def fold(self, state: S, pe: PagedEvent, live: bool) -> None:
        """Apply ``pe`` to ``state`` (mutate its aggregate). ``live`` is False while an
        encounter's earlier events are replayed to rebuild its state: side counters (e.g.
        per-page revision counts) must then not count them again."""
        raise NotImplementedError

    def measure(self, state: S) -> Any:
        """What ``write`` needs of a state as it was before the page (e.g. its contribution
        to summed counters), taken before the page's events mutate it."""
        raise NotImplementedError

    def write(self, curs: Cursor[DictRow], events: Sequence[PagedEvent],
              before: dict[UUID, Any], after: dict[UUID, S],
              ids: list[UUID]) -> dict[UUID, Any]:
        """Write the page; return each state's measure after it (kept with the cached state:
        the next page's "before")."""
        raise NotImplementedError

    def history_record(self, state: S, pe: PagedEvent | None = None,
                       previous: Any = None) -> Any:
        """What the history needs of a state (after each event of a page).

        ``previous`` is the encounter's record before ``pe`` (None: compute from scratch):
        a view may reuse what ``pe`` cannot have changed, and returns ``previous`` itself
        when the event changed nothing the history keeps (no step is then recorded). The
        result must equal the record computed from scratch (tests/unit/test_history_records)."""
        raise NotImplementedError

    def write_history(self, curs: Cursor[DictRow],
                      steps: Sequence[tuple[PagedEvent, Any, Any]]) -> None:
        """Write the history versions of a page: ``steps`` holds, per event in log order,
        (the event, the record of its encounter before it or None, the record after it).
        Runs before ``write`` (the current rows are still those before the page)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the page
    def apply(self, curs: Cursor[DictRow], events: Sequence[PagedEvent]) -> None:
        mine = [pe for pe in events if isinstance(pe.event, Encounter.Event)]
        first: dict[UUID, int] = {}
        for pe in mine:
            first.setdefault(pe.encounter_id, pe.event.originator_version)
        # The cached aggregates are many small objects that live long: the cyclic garbage
        # collector would scan them again and again while a page allocates (``gc_paused``).
        with gc_paused():
            try:
                states, before = self._states(curs, first)
                if self.history:
                    self._advance_with_history(curs, states, mine)
                else:
                    self.advance(states, mine, live=True)
                after = self.write(curs, mine, before, states, list(first))
            except BaseException:
                for eid in first:
                    self._cache.pop(eid, None)
                raise
        for eid, st in states.items():
            self._remember(eid, st, after[eid])

    def advance(self, states: dict[UUID, S], events: Sequence[PagedEvent], *,
                live: bool) -> None:
        for pe in events:
            state = states.get(pe.encounter_id)
            if state is None:
                if not isinstance(pe.event, Encounter.Opened):
                    raise LookupError(f"{self.name}: event {pe.position} (version "
                                      f"{pe.event.originator_version}) for an encounter "
                                      "whose earlier events were not found")
                states[pe.encounter_id] = self.start(pe)
            else:
                self.fold(state, pe, live)

    def _advance_with_history(self, curs: Cursor[DictRow], states: dict[UUID, S],
                              events: Sequence[PagedEvent]) -> None:
        """``advance`` one event at a time, recording each encounter after every event, and
        write the history versions those records make."""
        records = {eid: self.history_record(st) for eid, st in states.items()}
        steps: list[tuple[PagedEvent, Any, Any]] = []
        record_of = self.history_record
        for pe in events:
            self.advance(states, (pe,), live=True)
            eid = pe.encounter_id
            previous = records.get(eid)
            record = record_of(states[eid], pe, previous)
            if record is previous:
                continue  # nothing the history keeps changed: no version
            steps.append((pe, previous, record))
            records[eid] = record
        self.write_history(curs, steps)

    def _states(self, curs: Cursor[DictRow], first: dict[UUID, int]
                ) -> tuple[dict[UUID, S], dict[UUID, Any]]:
        """The states before the page, and their measures."""
        states: dict[UUID, S] = {}
        measures: dict[UUID, Any] = {}
        missing: dict[UUID, int] = {}
        for eid, version in first.items():
            if version <= 1:
                continue  # opened in this page
            cached = self._cache.get(eid)
            if cached is not None and cached[0].enc.version == version - 1:  # type: ignore[attr-defined]
                states[eid], measures[eid] = cached
            else:
                missing[eid] = version
        if missing:
            rebuilt = self._rebuild(curs, missing)
            states.update(rebuilt)
            measures.update((eid, self.measure(st)) for eid, st in rebuilt.items())
        return states, measures

    def _rebuild(self, curs: Cursor[DictRow], missing: dict[UUID, int]) -> dict[UUID, S]:
        if self.mapper is None:
            from ledger.persistence.transcoding import OrjsonTranscoder  # noqa: PLC0415

            self.mapper = Mapper(transcoder=OrjsonTranscoder())
        curs.execute(self._replay, (list(missing), list(missing.values())))
        to_event = self.mapper.to_domain_event
        earlier = [PagedEvent(r["notification_id"], to_event(StoredEvent(
            r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]))))
            for r in curs.fetchall()]
        states: dict[UUID, S] = {}
        self.advance(states, earlier, live=False)
        for eid, version in missing.items():
            st = states.get(eid)
            if st is None or st.enc.version != version - 1:  # type: ignore[attr-defined]
                raise LookupError(f"{self.name}: the store holds no complete history before "
                                  f"version {version} of an encounter in this page")
        self.replayed += len(missing)
        return states

    def _remember(self, eid: UUID, state: S, measure: Any) -> None:
        self._cache[eid] = (state, measure)
        self._cache.move_to_end(eid)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def forget(self) -> None:
        """Drop every cached state (they would be rebuilt on demand anyway)."""
        self._cache.clear()

    def reset(self) -> None:
        self.forget()
        super().reset()
