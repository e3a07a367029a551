"""Group commit: concurrent commands on different encounters saved in one transaction.

The event store serialises writers with a table lock, so one transaction per command caps a
store at roughly a thousand commands a second; many encounters per transaction lift that
by an order of magnitude. One writer thread per process takes commands from a queue:

* it starts a batch as soon as a command arrives: a lone command is saved at once (it never
  waits for company); commands that arrive while a batch is being saved form the next batch,
  optionally waiting up to ``window`` seconds for more when others are already queued;
* every command of the batch runs against the encounter as the writer holds it (commands on
  the same encounter in one batch apply in arrival order); a command refused by a domain rule
  fails alone and records nothing;
* the batch's events, and each command's side writes (idempotency records), are saved in ONE
  transaction; each caller gets its result only after that commit;
* if the transaction fails (a version conflict: another process wrote one of the encounters),
  nothing of it was committed: every command of the batch is re-run on its own, against a
  fresh load, so one conflicting command fails alone and its batch-mates still commit;
* if the connection drops during the save, the batch is re-run only when the save is known
  (fenced by its commit token, see ledger/recorder.py) never to commit; when it did commit,
  its callers get their results; when the database cannot be asked, they get
  ``CommitOutcomeUnknown`` (503) and nothing is re-run.

The writer keeps the encounters it saved in memory (per process). A copy made stale by
another process is detected by the store's (encounter, version) uniqueness at save time and
reloaded, so the cache can never make a wrong write, only a retried one.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from ledger import metrics
from ledger.application.idempotency import ClaimLost
from ledger.application.loading import load_encounters
from ledger.domain.errors import ConcurrencyConflict, PreconditionFailed
from ledger.persistence.database import CommitNotMade, DatabaseUnavailable

if TYPE_CHECKING:
    from ledger.application.results import CommandResult, CommitWrite
    from ledger.application.service import LedgerApplication
    from ledger.domain.encounter import Encounter

log = logging.getLogger(__name__)


@dataclass
class Job:
    encounter_id: UUID | None  # None: the job creates the encounter
    fn: Callable[[Encounter | None], Any]  # returns (encounter, value) for creations
    expected_version: int | None
    write_with: CommitWrite | None
    future: Future = field(default_factory=Future)


class GroupCommitWriter:
    def __init__(self, app: LedgerApplication, *, max_batch: int = 256, window: float = 0.0,
                 cache_size: int = 10_000, claim: bool = True) -> None:
        self.app = app
        self.max_batch = max_batch
        self.window = window
        self.cache_size = cache_size
        self.claim = claim  # claim a batch's encounters (other processes' writers wait)
        # claims are taken while another writer of the store was seen lately (an encounter
        # moved on behind this writer's back, or a conflict): alone, a writer pays nothing
        self.contended_until = 0.0
        self._cache: OrderedDict[UUID, Encounter] = OrderedDict()
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._stopped = False
        self.batches = 0
        self.commands = 0
        self._thread.start()

    # ------------------------------------------------------------------ public
    def submit(self, job: Job) -> CommandResult:
        if self._stopped:
            raise RuntimeError("the writer is stopped")
        self._queue.put(job)
        return job.future.result()

    async def submit_async(self, job: Job) -> CommandResult:
        """``submit`` for asyncio callers: waits for the batch without holding a thread."""
        import asyncio

        if self._stopped:
            raise RuntimeError("the writer is stopped")
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()

        def transfer(done: Future) -> None:
            if waiter.cancelled():
                return
            exc = done.exception()
            if exc is not None:
                waiter.set_exception(exc)
            else:
                waiter.set_result(done.result())

        job.future.add_done_callback(lambda f: loop.call_soon_threadsafe(transfer, f))
        self._queue.put(job)
        return await waiter

    def close(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._queue.put(None)
            self._thread.join(timeout=10)

    def forget(self, encounter_id: UUID) -> None:
        self._cache.pop(encounter_id, None)

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch = [job]
            self._drain(batch)
            if self.window and len(batch) > 1:
                deadline = time.monotonic() + self.window
                while len(batch) < self.max_batch and time.monotonic() < deadline:
                    time.sleep(self.window / 4)
                    self._drain(batch)
            stop = any(j is None for j in batch)
            batch = [j for j in batch if j is not None]
            try:
                with self._claimed(batch):
                    self._commit(batch)
            except BaseException as exc:  # noqa: BLE001 - never let the writer die
                self._cache.clear()  # a copy may hold events that were never saved
                if isinstance(exc, OperationalError | InterfaceError):
                    exc = DatabaseUnavailable("the database is not reachable")
                else:
                    log.exception("writer batch failed unexpectedly")
                for j in batch:
                    if not j.future.done():
                        j.future.set_exception(exc)
            if stop:
                return

    @contextmanager
    def _claimed(self, batch: list[Job]) -> Iterator[None]:
        """While the batch runs and commits, its encounters are claimed (when another writer
        of the store was seen in the last CONTENDED_SECONDS) with session advisory
        locks (taken in one order, so writers never deadlock): another process's writer
        waits for them instead of writing them under this batch, whose save would then fail
        on the (encounter, version) uniqueness and be re-run command by command. Only a way
        to avoid that wasted work: the uniqueness still decides, so when the locks cannot be
        had (a stalled holder past CLAIM_TIMEOUT, no connection) the batch runs unclaimed."""
        keys = sorted({_claim_key(j.encounter_id) for j in batch if j.encounter_id is not None})
        if not keys or not self.claim or time.monotonic() > self.contended_until:
            yield
            return
        try:
            ctx = self.app.recorder.datastore.get_connection()
            conn = ctx.__enter__()
        except Exception:  # noqa: BLE001 - unclaimed; the save reports any outage
            yield
            return
        try:
            try:
                conn.execute(CLAIM_SQL, (CLAIM_TIMEOUT_MS, CLAIM_CLASS, keys))
            except Exception:  # noqa: BLE001 - a lock timeout: run unclaimed
                log.info("encounters not claimed within %d ms; the batch runs unclaimed",
                         CLAIM_TIMEOUT_MS)
                conn.execute("SELECT pg_advisory_unlock_all()")  # hold none while unclaimed
            yield
        finally:
            try:
                conn.execute("SELECT pg_advisory_unlock_all()")
            except Exception:  # noqa: BLE001 - a broken connection releases its locks
                pass
            ctx.__exit__(None, None, None)

    def _contended(self) -> None:
        self.contended_until = time.monotonic() + CONTENDED_SECONDS

    def _drain(self, batch: list[Job | None]) -> None:
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _load(self, encounter_id: UUID, fresh: bool,
              loaded: dict[UUID, Encounter] | None = None) -> Encounter:
        if not fresh:
            enc = self._cache.get(encounter_id)
            if enc is not None:
                self._cache.move_to_end(encounter_id)
                return enc
        if loaded is not None and encounter_id in loaded:
            return loaded.pop(encounter_id)
        return self.app.get_encounter(encounter_id)

    def _drop_stale(self, batch: list[Job]) -> dict[UUID, Encounter]:
        """Forget cached encounters that another process (or writer) has moved on, and load
        the batch's encounters that are not (or no longer) cached: one connection and two
        indexed queries per batch instead of two reads per encounter, so that neither a busy
        shared store (every batch a conflict and a retry) nor a cold cache costs round trips
        per command. (A write that lands after these reads is still caught by the store's
        (encounter, version) uniqueness at save time.) Returns the loaded encounters."""
        wanted = {j.encounter_id for j in batch if j.encounter_id is not None}
        if not wanted:
            return {}
        cached = {eid for eid in wanted if eid in self._cache}
        with self.app.recorder.datastore.get_connection() as conn:
            if cached:
                rows = conn.execute(
                    "SELECT originator_id, MAX(originator_version) AS v FROM ledger_events "
                    "WHERE originator_id = ANY(%s) GROUP BY originator_id", (list(cached),)
                ).fetchall()
                current = {r["originator_id"]: r["v"] for r in rows}
                for eid in cached:
                    if current.get(eid) != self._cache[eid].version:
                        self._contended()
                        self._cache.pop(eid, None)
            missing = [eid for eid in wanted if eid not in self._cache]
            if not missing:
                return {}
            return load_encounters(self.app, conn, missing)

    def _remember(self, enc: Encounter) -> None:
        self._cache[enc.id] = enc
        self._cache.move_to_end(enc.id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    # ------------------------------------------------------------------ one batch
    def _commit(self, batch: list[Job], fresh: bool = False) -> None:
        from ledger.application.results import CommandResult, commit_hook

        loaded = self._drop_stale(batch) if not fresh else {}
        touched: dict[UUID, Encounter] = {}
        # job, encounter, value, version after it, events it produced
        done: list[tuple[Job, Encounter, Any, int, int]] = []
        # Refusals are answered only once the batch's outcome is known: a refusal may have
        # seen a batch-mate's change on the same encounter, which stands only if it commits.
        refused: list[tuple[Job, BaseException]] = []
        for job in batch:
            try:
                if job.encounter_id is None:
                    enc, value = job.fn(None)
                    produced = len(enc.pending_events)
                else:
                    enc = touched.get(job.encounter_id) or self._load(job.encounter_id, fresh,
                                                                       loaded)
                    if job.expected_version is not None and enc.version != job.expected_version:
                        raise PreconditionFailed(
                            "If-Match", "version.matches",
                            f"If-Match: the encounter is at version {enc.version}, not "
                            f"{job.expected_version}; reload it and retry")
                    pending_before = len(enc.pending_events)
                    try:
                        value = job.fn(enc)
                    except BaseException:
                        if len(enc.pending_events) != pending_before:
                            # a command failed half-way: this copy is unusable; its other
                            # commands in this batch are re-run on their own afterwards
                            touched.pop(enc.id, None)
                            self._cache.pop(enc.id, None)
                        raise
                    produced = len(enc.pending_events) - pending_before
                touched[enc.id] = enc
                done.append((job, enc, value, enc.version, produced))
            except BaseException as exc:  # noqa: BLE001 - the caller gets its own error
                refused.append((job, exc))
        # jobs whose encounter copy was discarded after they ran: re-run on their own
        orphans = [d[0] for d in done if touched.get(d[1].id) is not d[1]]
        done = [d for d in done if touched.get(d[1].id) is d[1]]

        def settle_refusals() -> None:
            for job, exc in refused:
                job.future.set_exception(exc)
            for job in orphans:
                self._retry_alone(job)

        if not done:
            settle_refusals()
            return
        hooks = [commit_hook(enc.id, version, produced, value, job.write_with)
                 for job, enc, value, version, produced in done
                 if job.write_with is not None and produced]
        started = time.perf_counter()
        try:
            recordings = self.app.save(*touched.values(), side_writes=hooks) if hooks \
                else self.app.save(*touched.values())
        except CommitNotMade as exc:
            for enc_id in touched:
                self._cache.pop(enc_id, None)
            if fresh:  # already a re-run: give up cleanly (nothing was written)
                for job, *_ in done:
                    job.future.set_exception(exc)
                settle_refusals()
                return
            for job in [d[0] for d in done] + [r[0] for r in refused] + orphans:
                self._retry_alone(job)
            return
        except DatabaseUnavailable as exc:  # includes CommitOutcomeUnknown: never re-run
            for enc_id in touched:
                self._cache.pop(enc_id, None)
            for job in [d[0] for d in done] + [r[0] for r in refused] + orphans:
                job.future.set_exception(exc)
            return
        except (IntegrityError, ClaimLost) as exc:
            self._contended()
            for enc_id in touched:
                self._cache.pop(enc_id, None)
            if len(done) == 1 and not refused and not orphans and (
                    isinstance(exc, ClaimLost) or fresh):
                job = done[0][0]
                job.future.set_exception(exc if isinstance(exc, ClaimLost) else
                                         ConcurrencyConflict(
                    "version", "version.conflict",
                    "version: another change was saved to this encounter first; reload it "
                    "and retry"))
                return
            # isolate: nothing was committed; re-run each command alone on a fresh load
            # (the refused ones too: what refused them may not have been committed)
            for job in [d[0] for d in done] + [r[0] for r in refused] + orphans:
                self._retry_alone(job)
            return
        positions: dict[tuple[UUID, int], int] = {
            (r.domain_event.originator_id, r.domain_event.originator_version):
                r.notification.id for r in recordings}
        for enc in touched.values():
            self._remember(enc)
        metrics.observe_batch(len(done), time.perf_counter() - started)
        self.batches += 1
        self.commands += len(done)
        for job, enc, value, version, produced in done:
            position = positions.get((enc.id, version)) if produced else None
            job.future.set_result(CommandResult(enc.id, version, position, value, produced))
        settle_refusals()

    def _retry_alone(self, job: Job) -> None:
        attempts = 1 if job.expected_version is not None else 3
        for attempt in range(attempts):
            single = Job(job.encounter_id, job.fn, job.expected_version, job.write_with)
            try:
                self._commit([single], fresh=True)
            except BaseException as failure:  # noqa: BLE001 - the caller gets it
                self._cache.pop(job.encounter_id, None) if job.encounter_id else None
                if isinstance(failure, OperationalError | InterfaceError):
                    failure = DatabaseUnavailable("the database is not reachable")
                if not single.future.done():
                    single.future.set_exception(failure)
            exc = single.future.exception()
            if exc is None:
                job.future.set_result(single.future.result())
                return
            if not isinstance(exc, ConcurrencyConflict) or attempt == attempts - 1:
                job.future.set_exception(exc)
                return


# Claims are PostgreSQL advisory locks in the two-int keyspace (the ledger's other advisory
# locks use the bigint one): this class id and 32 bits of the encounter id (a collision only
# makes two batches take turns).
CLAIM_CLASS = 0x4C45  # "LE"
CLAIM_TIMEOUT_MS = 2000
CONTENDED_SECONDS = 30.0
# In the order of the (sorted) keys: the aggregate takes its input from a subquery ordered by
# each key's place in the array, so the locks are taken in that order whatever plan scans it
# (the planner may drop the sort: WITH ORDINALITY already yields that order). lock_timeout is
# set for this statement's transaction only (autocommit), before the first lock: no joined
# row, so no lock, exists before the CTE's row does.
CLAIM_SQL = ("WITH t AS MATERIALIZED (SELECT set_config('lock_timeout', %s::text || 'ms', true))"
             " SELECT count(pg_advisory_lock(%s::int, k)) FROM (SELECT u.k FROM t,"
             " unnest(%s::int[]) WITH ORDINALITY AS u(k, n) ORDER BY u.n) AS ordered")


def _claim_key(encounter_id: UUID) -> int:
    key = encounter_id.int & 0xFFFFFFFF
    return key - (1 << 32) if key >= 1 << 31 else key


class WriterPool:
    """Several group-commit writers, each owning the encounters whose id hashes to it (so two
    writers never hold the same encounter). While one writer's transaction waits for its
    commit, another prepares its batch: CPU work overlaps the database's."""

    def __init__(self, app: LedgerApplication, writers: int = 2, **options: Any) -> None:
        self.writers = [GroupCommitWriter(app, **options) for _ in range(max(1, writers))]
        self._next = 0

    def _pick(self, job: Job) -> GroupCommitWriter:
        if job.encounter_id is None:  # a new encounter: any writer
            self._next = (self._next + 1) % len(self.writers)
            return self.writers[self._next]
        return self.writers[job.encounter_id.int % len(self.writers)]

    def submit(self, job: Job) -> CommandResult:
        return self._pick(job).submit(job)

    async def submit_async(self, job: Job) -> CommandResult:
        return await self._pick(job).submit_async(job)

    def close(self) -> None:
        for w in self.writers:
            w.close()

    @property
    def batches(self) -> int:
        return sum(w.batches for w in self.writers)

    @property
    def commands(self) -> int:
        return sum(w.commands for w in self.writers)
