"""What every projection shares: a page of events, and a read model that applies a page and
records how far it got in one PostgreSQL transaction.

A read model *is* the library's ``PostgresTrackingRecorder`` (its tracking table, its
``_insert_tracking`` statement, ``max_tracking_id`` and ``wait``), applied page by page
instead of event by event. Exactly once holds because of four things done in that one
transaction (``ReadModel.process_page``):

1. the projection's tracking row is locked (``SELECT … FOR UPDATE``), so two runners of the
   same projection (two processes, or a rebuild beside a running runner) never apply pages
   at the same time (a runner that finds it locked leaves the page to the one holding it);
2. the page must start at or before the tracked position (``page.after <= position``): a page
   read from a position the projection has left (e.g. reset by a rebuild) is refused instead
   of leaving a hole;
3. only events after the tracked position are applied (events up to it were applied before);
4. the tracking row moves to the page's last position with the library's statement, which
   refuses to go backwards, and commits with the view change or not at all.

``LibraryProjection`` lets the library's own ``ProjectionRunner`` drive the same views event
by event; a test checks both build identical tables.

Pages are complete because the event store's writers take ``LOCK TABLE … IN EXCLUSIVE MODE``
before drawing notification ids and hold it to commit: ids become visible in id order, so a
reader that has seen id N has seen every committed id below N (a gap is a rolled-back write,
never one still in flight). ``tests/integration/test_projections_completeness.py`` checks this
with concurrent writers. Never set ``POSTGRES_ENABLE_DB_FUNCTIONS``: that insert path skips
the lock (see docs/eventsourcing-9.5.md, hazard 1).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.projection import Projection
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

log = logging.getLogger(__name__)

APPLICATION_NAME = "ledger"  # LedgerApplication.name: the log the projections follow
EVENTS_TABLE = "ledger_events"
NOTIFY_CHANNEL = "ledger_projections"  # payload "<projection>:<position>" after each page


class PagedEvent:
    """A domain event with its log position (notification id)."""

    __slots__ = ("position", "event", "encounter_id")

    def __init__(self, position: int, event: Any) -> None:
        self.position = position
        self.event = event
        self.encounter_id = event.originator_id

    def __repr__(self) -> str:
        return f"PagedEvent({self.position}, {type(self.event).__name__})"


@dataclass(frozen=True, slots=True)
class Page:
    """Every committed event with ``after < position <= end``, in log order."""

    after: int
    events: Sequence[PagedEvent]

    @property
    def end(self) -> int:
        return self.events[-1].position if self.events else self.after


class PageRefused(RuntimeError):
    """The page does not continue from the projection's tracked position (e.g. a rebuild
    reset it meanwhile). Nothing was written; re-read from the tracked position."""


class ProjectionBusy(PageRefused):
    """Another runner is applying a page to this projection right now. Nothing was written:
    that runner is doing the work."""


# A view table is only ever locked against a page by DDL, TRUNCATE or maintenance: give way
# quickly (the page rolls back and is retried) rather than queue behind it or deadlock.
PAGE_LOCK_TIMEOUT = "200ms"


def event_name(event: Any) -> str:
    """The readable event type: class name, with the encounter's ``Opened`` spelled out."""
    name = type(event).__name__
    return "EncounterOpened" if name == "Opened" else name


class ReadModel(PostgresTrackingRecorder):
    """A materialised view maintained from the ledger's event log, page by page.

    Subclasses set ``name`` (the tracking table is ``<name>_tracking``), ``tables`` (every
    table the view owns: emptied by a rebuild, compared by the rebuild test) and implement
    ``apply(curs, events)``, which writes the effect of ``events`` using ``curs`` only.
    """

    name: ClassVar[str] = ""
    tables: ClassVar[tuple[str, ...]] = ()
    # Rows are compared in this order by the rebuild test: {table: primary-key columns}.
    keys: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, datastore: PostgresDatastore, *,
                 tracking_table_name: str | None = None,
                 application_name: str = APPLICATION_NAME, **kwargs: Any) -> None:
        super().__init__(datastore, tracking_table_name=tracking_table_name or
                         f"{self.name}_tracking", **kwargs)
        self.application_name = application_name
        schema, table = Identifier(self.datastore.schema), Identifier(self.tracking_table_name)

        def tracking(text: str) -> Composed:  # a statement on {0}.{1}, this view's tracking table
            return SQL(text).format(schema, table)

        self._lock_statement = tracking(
            "SELECT notification_id FROM {0}.{1} WHERE application_name = %s FOR UPDATE")
        self._try_lock_statement = tracking(
            "SELECT notification_id FROM {0}.{1} WHERE application_name = %s "
            "FOR UPDATE SKIP LOCKED")
        self._exists_statement = tracking("SELECT 1 FROM {0}.{1} WHERE application_name = %s")
        self._ensure_statement = tracking(
            "INSERT INTO {0}.{1} (application_name, notification_id) VALUES (%s, 0) "
            "ON CONFLICT (application_name) DO NOTHING")
        self._reset_statement = tracking(
            "UPDATE {0}.{1} SET notification_id = 0 WHERE application_name = %s")
        # Test hook: called inside the page transaction after the view change, before the
        # tracking row moves (a crash here must leave no trace).
        self.before_tracking: Callable[[Page], None] | None = None

    # ------------------------------------------------------------------ to implement
    def apply(self, curs: Cursor[DictRow], events: Sequence[PagedEvent]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ tracking
    def _lock_position(self, curs: Cursor[DictRow], *, wait: bool = True) -> int:
        """Lock the tracking row and return the tracked position. ``wait=False``: raise
        ``ProjectionBusy`` at once if another transaction holds it."""
        curs.execute(self._lock_statement if wait else self._try_lock_statement,
                     (self.application_name,), prepare=True)
        row = curs.fetchone()
        if row is None:
            curs.execute(self._exists_statement, (self.application_name,), prepare=True)
            if curs.fetchone() is not None:
                raise ProjectionBusy(f"{self.name}: another runner is applying a page")
            # table emptied (tests) or a new application name
            curs.execute(self._ensure_statement, (self.application_name,))
            curs.execute(self._lock_statement, (self.application_name,), prepare=True)
            row = curs.fetchone()
            assert row is not None
        return int(row["notification_id"] or 0)

    def position(self) -> int:
        """The tracked position: every event up to it is reflected in the view."""
        return self.max_tracking_id(self.application_name) or 0

    def process_page(self, page: Page, *, commit: bool = True) -> int:
        """Apply the events of ``page`` this view has not applied yet, and track them, in one
        transaction. Returns the tracked position afterwards.

        Raises ``PageRefused`` (nothing written) when the page does not continue from the
        tracked position, ``ProjectionBusy`` when another runner is applying a page to this
        view, and a lock-timeout error when DDL holds one of its tables (rolled back).
        ``commit=False``: a trial (everything is rolled back), to find a failing event.
        """
        with self.datastore.transaction(commit=commit) as curs:
            position = self._lock_position(curs, wait=False)
            curs.execute(f"SET LOCAL lock_timeout = '{PAGE_LOCK_TIMEOUT}'")
            if page.after > position:
                raise PageRefused(f"{self.name}: page starts after {page.after}, "
                                  f"tracked position is {position}")
            if page.end <= position:
                return position
            todo = [e for e in page.events if e.position > position]
            self.apply(curs, todo)
            if self.before_tracking is not None:
                self.before_tracking(page)
            # The library's own statement: refuses (IntegrityError) to move backwards.
            self._insert_tracking(curs, Tracking(self.application_name, page.end))
            curs.execute(
                "INSERT INTO projection_status (name, last_page_at, last_page_events, runner) "
                "VALUES (%s, now(), %s, %s) ON CONFLICT (name) DO UPDATE SET "
                "last_page_at = EXCLUDED.last_page_at, "
                "last_page_events = EXCLUDED.last_page_events, runner = EXCLUDED.runner",
                (self.name, len(todo), _runner_id()), prepare=True)
            curs.execute("SELECT pg_notify(%s, %s)",
                         (NOTIFY_CHANNEL, f"{self.name}:{page.end}"), prepare=True)
            return page.end

    def reset(self) -> None:
        """Empty the view and move its tracking back to the first event (one transaction).

        A runner elsewhere notices on its next page (its page no longer continues from the
        tracked position) and starts again from the beginning, as does the rebuild.
        DELETE rather than TRUNCATE: the service role may delete but not truncate.
        """
        with self.datastore.transaction(commit=True) as curs:
            self._lock_position(curs)
            for table in self.tables:
                curs.execute(SQL("DELETE FROM {0}.{1}").format(
                    Identifier(self.datastore.schema), Identifier(table)))
            curs.execute(self._reset_statement, (self.application_name,))
            if getattr(self, "history_tables", ()):  # rebuilt from 0: history complete again
                curs.execute(
                    "INSERT INTO read_model_history_start (name, position) VALUES (%s, 0) "
                    "ON CONFLICT (name) DO UPDATE SET position = 0", (self.name,))
            curs.execute(
                "INSERT INTO projection_status (name, rebuilt_at) VALUES (%s, now()) "
                "ON CONFLICT (name) DO UPDATE SET rebuilt_at = EXCLUDED.rebuilt_at, "
                "last_error = NULL, last_error_at = NULL, last_error_position = NULL, "
                "last_error_event = NULL", (self.name,))

    def record_error(self, error: BaseException, *, position: int | None = None,
                     event: str | None = None) -> None:
        """Remember the last failure for `ledger projections status` and /ready: the error's
        type and SQLSTATE (not its message: a database message can quote row values), and
        the log position and type of the event it failed on."""
        text = type(error).__name__
        sqlstate = getattr(getattr(error, "__cause__", None), "sqlstate", None) or \
            getattr(error, "sqlstate", None)
        if sqlstate:
            text += f" (SQLSTATE {sqlstate})"
        try:
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(
                    "INSERT INTO projection_status (name, last_error, last_error_at, runner,"
                    " last_error_position, last_error_event) "
                    "VALUES (%s, %s, now(), %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
                    "last_error = EXCLUDED.last_error, last_error_at = EXCLUDED.last_error_at, "
                    "runner = EXCLUDED.runner, last_error_position = "
                    "EXCLUDED.last_error_position, last_error_event = EXCLUDED.last_error_event",
                    (self.name, text, _runner_id(), position, event))
        except Exception:  # noqa: BLE001 - status is best effort
            log.warning("projection %s: could not record its error", self.name)


class LibraryProjection(Projection[ReadModel]):
    """Drives a read model event by event through the library's own ``ProjectionRunner``
    (one transaction per event). Subclass with ``name`` = the view's name. Used to show that
    the page-by-page runner builds exactly what the library's runner builds."""

    topics: tuple[str, ...] = ()

    def __init__(self, view: ReadModel) -> None:
        super().__init__(view)
        self._last = view.position()

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:  # type: ignore[override]
        page = Page(self._last, [PagedEvent(tracking.notification_id, domain_event)])
        self._last = self.view.process_page(page)


@functools.cache
def _runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def refuse_db_functions(env: dict[str, str]) -> None:
    """The runner relies on the writers' table lock; the DB-functions insert path skips it.

    Not a ledger setting (``ledger.config`` has none for it): the event store library's own
    variable, which the library reads from ``env`` over ``os.environ`` (its
    ``Application.construct_env``), so both are looked at here the same way."""
    for key in ("LEDGER_POSTGRES_ENABLE_DB_FUNCTIONS", "POSTGRES_ENABLE_DB_FUNCTIONS"):
        value = str(env.get(key, os.environ.get(key, ""))).lower()
        if value in ("y", "yes", "t", "true", "on", "1"):
            raise RuntimeError(f"{key} is set: that insert path skips the event table lock, "
                               "and projections could skip events. Unset it.")


__all__ = ["IntegrityError", "Page", "PagedEvent", "PageRefused", "ProjectionBusy", "ReadModel",
           "APPLICATION_NAME", "EVENTS_TABLE", "NOTIFY_CHANNEL", "event_name"]
