"""The projection runner: follows the ledger's event log and keeps every read model current.

One runner runs any set of projections. It reads a page of the log once (from the lowest
tracked position among them), and hands the page to each projection, which applies what it
has not applied yet and moves its tracking row in its own transaction
(``ReadModel.process_page``). Several runners (the API process and a `ledger projections run`
worker, or a rebuild) may run at once: they take turns per page on each projection's tracking
row, and nothing is applied twice or skipped.

Waking up: a LISTEN on the event store's channel (the library NOTIFYs in every insert
transaction) wakes the runner at once; without a notification it polls every
``poll_interval`` seconds anyway, because a NOTIFY can be lost (library issue #305). A
watchdog compares the log's head with each projection's tracked position: a projection that
is behind and has not moved for ``stall_after`` seconds is logged as stalled, counted, and
the runner is kicked; a projection whose page failed is retried with back-off.

Read-your-writes: ``wait(position, timeout)`` returns as soon as the projections have reached
``position`` (an in-process condition, no polling).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.utils import Environment

from ledger.gc_pause import gc_paused
from ledger.persistence.transcoding import OrjsonTranscoder
from ledger.projections.aggregates import AggregateReadModel
from ledger.projections.audit import AuditTrailView
from ledger.projections.base import (
    APPLICATION_NAME,
    EVENTS_TABLE,
    Page,
    PagedEvent,
    PageRefused,
    ReadModel,
    event_name,
    refuse_db_functions,
)
from ledger.projections.claims import ClaimsView
from ledger.projections.reader import EventReader
from ledger.projections.trends import TrendsView
from ledger.projections.waiting import PositionWaiter

log = logging.getLogger(__name__)

VIEWS: dict[str, type[ReadModel]] = {
    ClaimsView.name: ClaimsView,
    AuditTrailView.name: AuditTrailView,
    TrendsView.name: TrendsView,
}


@dataclass
class ProjectionHealth:
    name: str
    position: int
    last_moved: float  # monotonic time the position last changed (or the runner started)
    failures: int = 0
    retry_at: float = 0.0
    stalls: int = 0
    last_error: str = ""


class ProjectionRunner:
    """Runs projections over the ledger's log. ``start()`` for a background runner (API,
    worker); ``catch_up()`` to process synchronously up to the current head (rebuilds, tests).
    """

    def __init__(self, env: Mapping[str, str], names: Iterable[str] | None = None, *,
                 page_size: int = 500, max_page_size: int = 10_000,
                 poll_interval: float = 0.5, watchdog_interval: float = 5.0,
                 stall_after: float = 30.0, parallel: bool = True,
                 reader: EventReader | None = None, history: bool = True,
                 view_schema: str | None = None) -> None:
        env = dict(env)
        refuse_db_functions(env)
        # The runner's own small pool, whatever the application's pool size is.
        for key in ("LEDGER_POSTGRES_POOL_SIZE", "LEDGER_POSTGRES_MAX_OVERFLOW"):
            env.pop(key, None)
        env["POSTGRES_POOL_SIZE"] = "2"
        env["POSTGRES_MAX_OVERFLOW"] = "4"  # one per view applying in parallel, + the reader
        env["CREATE_TABLE"] = "n"
        env.pop("LEDGER_CREATE_TABLE", None)
        self.factory: Any = InfrastructureFactory.construct(Environment(APPLICATION_NAME, env))
        self.datastore: PostgresDatastore = self.factory.datastore
        self.reader = reader or EventReader(
            self.datastore, self.factory.mapper(transcoder=OrjsonTranscoder()))
        selected = list(names) if names is not None else list(VIEWS)
        unknown = [n for n in selected if n not in VIEWS]
        if unknown:
            raise KeyError(f"no projection named {', '.join(unknown)} "
                           f"(known: {', '.join(VIEWS)})")
        # view_schema: build the views into that schema's tables (a scratch rebuild, see
        # ``rebuild_until``) while reading the log from the application's schema.
        self._view_factory: Any = None
        view_datastore = self.datastore
        if view_schema is not None:
            self._view_factory = InfrastructureFactory.construct(Environment(
                APPLICATION_NAME, {**env, "POSTGRES_SCHEMA": view_schema}))
            view_datastore = self._view_factory.datastore
            view_datastore.pool.kwargs["options"] = f"-c search_path={view_schema},public"

        def build(n: str) -> ReadModel:
            cls = VIEWS[n]
            if issubclass(cls, AggregateReadModel):
                return cls(view_datastore, history=history,
                           events_schema=self.datastore.schema)
            return cls(view_datastore)

        self.views: dict[str, ReadModel] = {n: build(n) for n in selected}
        for view in self.views.values():
            if isinstance(view, AggregateReadModel):
                view.mapper = self.reader.mapper  # replays decode as the reader does
        self.page_size = page_size
        self.max_page_size = max(page_size, max_page_size)
        self._limit = page_size  # grows while pages come back full (catching up)
        self._pool = ThreadPoolExecutor(len(self.views), "projection-view") \
            if parallel and len(self.views) > 1 else None
        self.poll_interval = poll_interval
        self.watchdog_interval = watchdog_interval
        self.stall_after = stall_after
        now = time.monotonic()
        self.health = {n: ProjectionHealth(n, v.position(), now) for n, v in self.views.items()}
        self._waiter = PositionWaiter(self.health)  # read-your-writes, fed by _set_position
        self._waiter.update(self.positions(), exact=True)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.database_down = False
        self.events_read = 0  # events read from the log (metric)
        self.pages = 0  # pages read (metric)

    # ------------------------------------------------------------------ positions
    def positions(self) -> dict[str, int]:
        return {n: h.position for n, h in self.health.items()}

    def _set_position(self, name: str, position: int) -> None:
        h = self.health[name]
        if position != h.position:
            h.position = position
            h.last_moved = time.monotonic()
            self._waiter.update({name: position}, exact=True)

    def refresh_positions(self) -> dict[str, int]:
        """Re-read every tracked position from the database (another process may have moved
        one, or a rebuild reset it)."""
        for name, view in self.views.items():
            self._set_position(name, view.position())
        return self.positions()

    def wait(self, position: int, timeout: float = 5.0,
             names: Iterable[str] | None = None) -> bool:
        """Block until the projections (all, or ``names``) reflect every event up to
        ``position``; False when ``timeout`` passes first."""
        return self._waiter.wait(position, names=names, timeout=timeout, nudge=self._nudge)

    def _nudge(self) -> float:
        self._wake.set()  # read the next page now rather than at the next poll
        return 0.25

    # ------------------------------------------------------------------ one page
    def run_page(self, *, raise_errors: bool = False, until: int | None = None) -> int:
        """Read one page after the lowest tracked position and apply it to every view that
        needs it. Returns the number of events read (0: nothing new). ``until``: apply no
        event after that position (a rebuild stopped there)."""
        with gc_paused():  # read, decode and apply: see gc_paused
            return self._run_page(raise_errors=raise_errors, until=until)

    def _run_page(self, *, raise_errors: bool, until: int | None) -> int:
        now = time.monotonic()
        active = [n for n, h in self.health.items() if h.retry_at <= now]
        if not active:
            return 0
        after = min(self.health[n].position for n in active)
        limit = self._limit
        page = self.reader.read(after, limit)
        if until is not None and page.events and page.end > until:
            page = Page(after, [e for e in page.events if e.position <= until])
        # Behind (a full page): read bigger pages, fewer rewrites per event; live: small ones.
        self._limit = min(limit * 2, self.max_page_size) if len(page.events) == limit \
            else self.page_size
        if not page.events:
            return 0
        due = [n for n in active if self.health[n].position < page.end]
        if self._pool is not None and len(due) > 1:
            outcomes = list(self._pool.map(lambda n: self._apply(n, page), due))
        else:
            outcomes = [self._apply(n, page) for n in due]
        for name, error in zip(due, outcomes, strict=True):
            if error is not None:
                if raise_errors:
                    raise error.error if isinstance(error, _EventFailure) else error
                self._failed(name, error)
        self._database_up()
        self.events_read += len(page.events)
        self.pages += 1
        return len(page.events)

    def _apply(self, name: str, page: Page) -> BaseException | None:
        """Apply the page to one view (its own transaction); return the error, if any."""
        view = self.views[name]
        try:
            self._set_position(name, view.process_page(page))
            h = self.health[name]
            h.failures, h.retry_at, h.last_error = 0, 0.0, ""
        except PageRefused:  # reset meanwhile, or another runner is on it: re-read
            self._set_position(name, view.position())
        except Exception as exc:  # noqa: BLE001 - handed back to run_page
            if _transient(exc):  # gave way to DDL/TRUNCATE (lock timeout, deadlock)
                self.health[name].retry_at = time.monotonic() + 0.2
                log.info("projection %s gave way to a lock (%s); retrying", name,
                         type(exc.__cause__ or exc).__name__)
                return None
            if _unavailable(exc):  # an outage, not this projection's fault: retry soon
                self.health[name].retry_at = time.monotonic() + 0.25
                self._database_down(exc)
                return None
            return self._isolate(name, page, exc)  # which event?
        return None

    def _isolate(self, name: str, page: Page, error: BaseException) -> BaseException | None:
        """Which event of ``page`` fails? Trial runs (rolled back) of ever shorter prefixes
        of the page — always from the page's own start, so a view sees the events as it
        would in one page — find the first failing event; the prefix before it is then
        applied for real, and the failure names the event."""
        view = self.views[name]
        position = self.health[name].position
        events = [e for e in page.events if e.position > position]
        lo, hi = 0, len(events)  # events[:lo] apply cleanly; events[:hi] fail with `error`
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                view.process_page(Page(position, events[:mid]), commit=False)
                lo = mid
            except PageRefused:  # reset meanwhile, or another runner is on it: re-read
                self._set_position(name, view.position())
                return None
            except Exception as exc:  # noqa: BLE001 - narrowing down
                if _transient(exc) or _unavailable(exc):
                    self.health[name].retry_at = time.monotonic() + 0.25
                    return None
                hi, error = mid, exc
        if lo:
            try:
                self._set_position(name, view.process_page(Page(position, events[:lo])))
            except Exception:  # noqa: BLE001 - the next round starts over
                return None
        return _EventFailure(error, events[hi - 1]) if events else error

    def _database_down(self, exc: BaseException) -> None:
        if not self.database_down:
            self.database_down = True
            log.warning("projection runner: database unavailable (%s); retrying every "
                        "0.25 s", type(exc.__cause__ or exc).__name__)

    def _database_up(self) -> None:
        if self.database_down:
            self.database_down = False
            log.warning("projection runner: database available again; resuming")

    def wake(self) -> None:
        """Run a page now (e.g. when the database has come back)."""
        for h in self.health.values():
            if h.failures == 0:
                h.retry_at = 0.0
        self._wake.set()

    def _failed(self, name: str, exc: BaseException) -> None:
        event = exc.event if isinstance(exc, _EventFailure) else None
        error = exc.error if isinstance(exc, _EventFailure) else exc
        h = self.health[name]
        h.failures += 1
        delay = min(60.0, 0.5 * 2 ** min(h.failures, 7))
        h.retry_at = time.monotonic() + delay
        h.last_error = type(error).__name__
        # Type, position and event type only: a database message can quote row values.
        log.error("projection %s failed on event %s (%s) (%s); retrying in %.1fs",
                  name, event.position if event else h.position + 1,
                  event_name(event.event) if event else "?", h.last_error, delay)
        self.views[name].record_error(
            error, position=event.position if event else None,
            event=event_name(event.event) if event else None)

    def catch_up(self, until: int | None = None,
                 progress: Callable[[int, int], None] | None = None, *,
                 stop_at: bool = False) -> dict[str, int]:
        """Process pages until every view has reached ``until`` (default: the log's head
        now). Errors are raised. ``progress(position, head)`` is called after each page.
        ``stop_at``: apply no event after ``until`` (the views then stand exactly as they
        did when the log ended there)."""
        target = self.reader.head() if until is None else until
        self.refresh_positions()
        self._limit = self.max_page_size
        while min(self.health[n].position for n in self.health) < target:
            before = self.positions()
            if self.run_page(raise_errors=True,
                             until=target if stop_at else None) == 0:
                if any(h.retry_at > time.monotonic() for h in self.health.values()):
                    time.sleep(0.05)  # a view gave way to a lock: try again shortly
                    continue
                # Nothing after the lowest position: the rest were rolled back (gaps).
                break
            if self.positions() == before:
                time.sleep(0.05)  # another runner holds these views: let it work
            if progress is not None:
                progress(min(self.positions().values()), target)
        return self.positions()

    # ------------------------------------------------------------------ background
    def start(self) -> ProjectionRunner:
        self._stop.clear()
        for target, name in ((self._loop, "projections"), (self._listen, "projections-listen"),
                             (self._watchdog, "projections-watchdog")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def close(self) -> None:
        self.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.datastore.close()
        if self._view_factory is not None:
            self._view_factory.datastore.close()

    def __enter__(self) -> ProjectionRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_forever(self) -> None:
        """Start and block until ``stop()`` (e.g. from a signal handler)."""
        self.start()
        self._stop.wait()
        self.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                read = self.run_page()
            except Exception as exc:  # the log itself unreadable: wait and retry
                if _unavailable(exc):
                    self._database_down(exc)
                    self._stop.wait(0.25)
                else:
                    log.error("projection runner could not read the log (%s)",
                              type(exc).__name__)
                    self._stop.wait(1.0)
                read = 0
            if read < self.page_size:
                self._wake.wait(self.poll_interval)

    def _listen(self) -> None:
        """Wake the runner on the event store's NOTIFY (best effort: polling covers losses)."""
        pool = self.datastore.pool
        while not self._stop.is_set():
            try:
                with psycopg.connect(pool.conninfo, **{**pool.kwargs, "autocommit": True}) as c:
                    c.execute(f'LISTEN "{EVENTS_TABLE}"')
                    while not self._stop.is_set():
                        for _ in c.notifies(timeout=0.5, stop_after=1):
                            self._wake.set()
            except Exception as exc:
                if not self.database_down:
                    log.warning("projection runner: LISTEN connection lost (%s); polling "
                                "meanwhile", type(exc).__name__)
                self._stop.wait(0.5)

    def check(self) -> list[str]:
        """One watchdog round: returns the names of stalled projections (and kicks the
        runner). A projection is stalled when the log's head is past its position and the
        position has not moved for ``stall_after`` seconds."""
        head = self.reader.head()
        self.refresh_positions()
        now = time.monotonic()
        stalled = []
        for name, h in self.health.items():
            if h.position >= head:
                h.last_moved = now
                continue
            if now - h.last_moved >= self.stall_after:
                h.stalls += 1
                h.last_moved = now  # report again only after another stall_after
                stalled.append(name)
                log.warning("projection %s stalled at position %d (log head %d, %d behind%s)",
                            name, h.position, head, head - h.position,
                            f", last error {h.last_error}" if h.last_error else "")
                h.retry_at = 0.0
        if stalled:
            self._wake.set()
        return stalled

    def _watchdog(self) -> None:
        while not self._stop.wait(self.watchdog_interval):
            try:
                self.check()
            except Exception as exc:
                if not _unavailable(exc):
                    log.warning("projection watchdog: check failed (%s)", type(exc).__name__)


class _EventFailure(Exception):
    """A projection's failure on one identified event."""

    def __init__(self, error: BaseException, event: PagedEvent) -> None:
        super().__init__(type(error).__name__)
        self.error = error
        self.event = event


def _unavailable(exc: BaseException) -> bool:
    from eventsourcing.persistence import InterfaceError, OperationalError

    cause = exc.__cause__ or exc
    if isinstance(cause, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable):
        return False
    return isinstance(exc, OperationalError | InterfaceError) or isinstance(
        cause, psycopg.OperationalError | psycopg.InterfaceError)


def _transient(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc
    return isinstance(cause, psycopg.errors.LockNotAvailable | psycopg.errors.DeadlockDetected)


def runner_env(url: str | None = None) -> dict[str, str]:
    """The eventsourcing settings for the configured database (embedded by default)."""
    from ledger.config import get_settings
    from ledger.persistence.database import database_url, eventsourcing_env

    settings = get_settings()
    return eventsourcing_env(url or database_url(settings), settings)


def start_in_process(env: Mapping[str, str], settings: Any = None) -> ProjectionRunner:
    """Start a background runner for all projections (what the API does at start-up when
    ``LEDGER_PROJECTIONS_IN_PROCESS`` is true). Call ``close()`` at shutdown. ``settings``:
    the service's connection timeouts for the runner's connections."""
    runner = ProjectionRunner(env)
    if settings is not None:
        from ledger.persistence.database import apply_connection_options

        apply_connection_options(runner.datastore.pool, settings)
    return runner.start()


def rebuild_until(env: Mapping[str, str], name: str, until: int, schema: str) -> str:
    """Rebuild projection ``name`` from scratch, stopped at log position ``until``, into the
    new schema ``schema`` (its tables, tracking and status are created there like the real
    ones; the real read model is not touched). Returns the schema: read it with
    ``search_path = <schema>, public``; drop it with ``drop_scratch``."""
    import re

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
        raise ValueError("schema: lower-case letters, digits and _")
    cls = VIEWS[name]
    maker = ProjectionRunner(env, [], parallel=False)
    try:
        with maker.datastore.transaction(commit=True) as curs:
            curs.execute(f"CREATE SCHEMA {schema}")
            for table in (*cls.tables, f"{name}_tracking", "projection_status"):
                curs.execute(f"CREATE TABLE {schema}.{table} (LIKE public.{table} "
                             "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)")
    finally:
        maker.close()
    runner = ProjectionRunner(env, [name], parallel=False, view_schema=schema)
    try:
        runner.catch_up(until, stop_at=True)
    finally:
        runner.close()
    return schema


def drop_scratch(env: Mapping[str, str], schema: str) -> None:
    runner = ProjectionRunner(env, [], parallel=False)
    try:
        with runner.datastore.transaction(commit=True) as curs:
            curs.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        runner.close()
