"""The ledger application: command functions (one per user action) over the Encounter
aggregate, stored by the ``eventsourcing`` library in PostgreSQL; the replay reads (an
encounter now, at a version or as recorded at a moment, its history) are ``replay.py``'s.

A command loads the encounter, calls one domain method, and saves every event it recorded
in one transaction. The result carries the new version (the ETag) and the log position of
the last event (for read-your-writes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Any, ClassVar
from uuid import UUID, uuid4

from anyio import to_thread
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    Recording,
    Transcoder,
)

from ledger.application.handlers import HANDLERS, Context
from ledger.application.replay import ReplayReads
from ledger.application.results import CommandResult, CommitWrite, commit_hook
from ledger.application.writer import GroupCommitWriter, Job, WriterPool
from ledger.audit.sealing import install_from_settings
from ledger.codes.edits import edit_tables_from_settings
from ledger.codes.icd10cm import default_code_set
from ledger.domain.codeset import DiagnosisCodeSet
from ledger.domain.commands import Command, ScrubClaim, named
from ledger.domain.encounter import Encounter
from ledger.domain.errors import ConcurrencyConflict, NotFound, PreconditionFailed
from ledger.domain.model import Actor
from ledger.domain.scrubber import EditTables
from ledger.persistence.database import (
    APP_NAME,
    CommitNotMade,
    CommitOutcomeUnknown,
    DatabaseUnavailable,
)
from ledger.persistence.topics import register_old_topics
from ledger.persistence.transcoding import OrjsonTranscoder

log = logging.getLogger(__name__)
register_old_topics()  # events stored under a class's earlier module path still load

class LedgerApplication(ReplayReads, Application[UUID]):
    name = APP_NAME
    snapshotting_intervals: ClassVar[dict[type, int]] = {Encounter: 50}
    MAX_RETRIES = 3

    def __init__(self, env: dict[str, str] | None = None,
                 code_set: DiagnosisCodeSet | None = None,
                 edit_tables: EditTables | None = None,
                 snapshot_interval: int | None = None,
                 appeal_window_days: int = 120,
                 group_commit: bool = False,
                 group_commit_window: float = 0.0,
                 group_commit_max_batch: int = 256,
                 group_commit_writers: int = 1,
                 seal: bool = True) -> None:
        """``seal=False``: no checkpoint per batch (a read-only event store on a replica)."""
        if snapshot_interval:
            self.snapshotting_intervals = {Encounter: snapshot_interval}
        super().__init__(env)
        datastore = getattr(self.recorder, "datastore", None)
        if datastore is not None:  # POSTGRES_PRE_PING: ping only connections that may be dead
            from ledger.persistence.database import check_cheaply

            check_cheaply(datastore.pool)
        self.code_set: DiagnosisCodeSet = code_set or default_code_set()
        self.edit_tables = edit_tables if edit_tables is not None else \
            edit_tables_from_settings()
        self.appeal_window_days = appeal_window_days
        self.writer: GroupCommitWriter | WriterPool | None = None
        if group_commit and group_commit_writers > 1:
            self.writer = WriterPool(self, group_commit_writers, window=group_commit_window,
                                     max_batch=group_commit_max_batch)
        elif group_commit:
            self.writer = GroupCommitWriter(self, window=group_commit_window,
                                            max_batch=group_commit_max_batch)
        # issue 14: a signed checkpoint over every batch this application commits
        self.sealer = install_from_settings(self) if seal else None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.sealer is not None:
            # deferred events sealed (while the pool is open), the newest checkpoint copied out
            self.sealer.close()
        super().close()

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()

    def save(self, *objs: Any, **kwargs: Any) -> list[Any]:
        """The library's save, without its per-object runtime-Protocol isinstance checks for
        encounters (they cost ~0.1 ms per aggregate, which group commit multiplies)."""
        processing = ProcessingEvent[UUID]()
        others = []
        for obj in objs:
            if type(obj) is Encounter:
                processing.events.extend(obj.collect_events())
                processing.aggregates[obj.id] = obj
            elif obj is not None:
                others.append(obj)
        if others:
            processing.collect_events(*others)
        processing.saved_kwargs.update(kwargs)
        token = uuid4()
        processing.saved_kwargs["commit_token"] = token
        try:
            recordings = self._record(processing)
        except (OperationalError, InterfaceError) as exc:
            return self._after_lost_connection(processing, token, exc)
        self._take_snapshots(processing)
        self._notify(recordings)
        return recordings

    def _after_lost_connection(self, processing: ProcessingEvent[UUID], token: UUID,
                               exc: Exception) -> list[Any]:
        """The save failed with its connection: find out, never guess, whether it committed.
        Committed: its recordings (positions read back). Not committed (fenced): CommitNotMade.
        The database cannot be asked: CommitOutcomeUnknown. Never re-inserts."""
        if _never_connected(exc):
            raise DatabaseUnavailable("the database is not reachable") from exc
        outcome = self.recorder.commit_outcome(token)  # type: ignore[attr-defined]
        if outcome is None:
            raise CommitOutcomeUnknown("the database dropped the connection during a save; "
                                       "its outcome is not known yet") from exc
        if outcome is False:
            raise CommitNotMade("the database dropped the connection before the save "
                                "committed; nothing was written") from exc
        log.warning("a commit acknowledgement was lost; the save had committed (not re-run)")
        events = processing.events
        positions = self.recorder.positions_of(  # type: ignore[attr-defined]
            [(e.originator_id, e.originator_version) for e in events])
        recordings = []
        for event in events:
            stored = self.mapper.to_stored_event(event)
            nid = positions[(event.originator_id, event.originator_version)]
            recordings.append(Recording(event, Notification(
                id=nid, originator_id=stored.originator_id,
                originator_version=stored.originator_version, topic=stored.topic,
                state=stored.state)))
        return recordings

    # ------------------------------------------------------------------ write side
    def open_encounter(self, *, actor: Actor, write_with: CommitWrite | None = None,
                       **details: Any) -> CommandResult:
        details.setdefault("today", date.today())  # the clock is read here, not in the domain
        if self.writer is not None:
            def create(_: None) -> tuple[Encounter, UUID]:
                enc = Encounter.open(actor=actor, **details)
                return enc, enc.id

            return self.writer.submit(Job(None, create, None, write_with))
        enc = Encounter.open(actor=actor, **details)
        recordings = self._save(enc, value=enc.id, write_with=write_with)
        return CommandResult(enc.id, enc.version, recordings[-1].notification.id, enc.id,
                             len(recordings))

    async def open_encounter_async(self, *, actor: Actor,
                                   write_with: CommitWrite | None = None,
                                   **details: Any) -> CommandResult:
        details.setdefault("today", date.today())
        if self.writer is None:
            return await to_thread.run_sync(
                lambda: self.open_encounter(actor=actor, write_with=write_with, **details))

        def create(_: None) -> tuple[Encounter, UUID]:
            enc = Encounter.open(actor=actor, **details)
            return enc, enc.id

        return await self.writer.submit_async(Job(None, create, None, write_with))

    def handle(self, command: Command, *, actor: Actor, expected_version: int | None = None,
               write_with: CommitWrite | None = None) -> CommandResult:
        """Run one command on its encounter (``ledger/domain/commands.py``; its handler in
        ``ledger/application/handlers.py``).

        ``expected_version`` (an If-Match) makes a stale caller fail with
        ``PreconditionFailed`` before anything runs, and a race lost at save time fail with
        ``ConcurrencyConflict``. Without it, a race lost at save time re-runs the command
        against the new state (up to three times): the command's own rules decide again.
        """
        return self.run_on(command.encounter_id, self._job(command, actor),
                           expected_version=expected_version, write_with=write_with)

    async def handle_async(self, command: Command, *, actor: Actor,
                           expected_version: int | None = None,
                           write_with: CommitWrite | None = None) -> CommandResult:
        """``handle`` for asyncio callers (the API): with group commit the command waits for
        its batch without holding a worker thread; otherwise it runs in a thread."""
        if self.writer is None:
            return await to_thread.run_sync(
                lambda: self.handle(command, actor=actor, expected_version=expected_version,
                                    write_with=write_with))
        return await self.writer.submit_async(Job(
            command.encounter_id, self._job(command, actor), expected_version, write_with))

    def _job(self, command: Command, actor: Actor) -> Callable[[Encounter], Any]:
        handler = HANDLERS.get(type(command))
        if handler is None:
            raise NotFound("command", "command.exists",
                           f"command: no handler for {type(command).__name__}")
        context = Context(actor, self.code_set, self.edit_tables, self.appeal_window_days)
        return lambda enc: handler(enc, command, context)

    # Callers that name a command by its domain method (scripts, the demo scenarios, tests).
    def execute(self, encounter_id: UUID, command: str, *, actor: Actor,
                expected_version: int | None = None, write_with: CommitWrite | None = None,
                **kwargs: Any) -> CommandResult:
        """``handle`` of the command named ``command`` (e.g. ``"add_service_line"``)."""
        return self.handle(named(command, encounter_id, kwargs), actor=actor,
                           expected_version=expected_version, write_with=write_with)

    async def execute_async(self, encounter_id: UUID, command: str, *, actor: Actor,
                            expected_version: int | None = None,
                            write_with: CommitWrite | None = None,
                            **kwargs: Any) -> CommandResult:
        """``handle_async`` of the command named ``command``."""
        return await self.handle_async(named(command, encounter_id, kwargs), actor=actor,
                                       expected_version=expected_version,
                                       write_with=write_with)

    def scrub_claim(self, encounter_id: UUID, claim_number: str, *, actor: Actor,
                    expected_version: int | None = None,
                    write_with: CommitWrite | None = None) -> CommandResult:
        return self.handle(ScrubClaim(encounter_id=encounter_id, claim_number=claim_number),
                           actor=actor, expected_version=expected_version,
                           write_with=write_with)

    def run_on(self, encounter_id: UUID, fn: Callable[[Encounter], Any], *,
               expected_version: int | None = None,
               write_with: CommitWrite | None = None) -> CommandResult:
        if self.writer is not None:
            return self.writer.submit(Job(encounter_id, fn, expected_version, write_with))
        attempts = 1 if expected_version is not None else self.MAX_RETRIES
        for attempt in range(1, attempts + 1):
            enc = self.get_encounter(encounter_id)
            if expected_version is not None and enc.version != expected_version:
                raise PreconditionFailed(
                    "If-Match", "version.matches",
                    f"If-Match: the encounter is at version {enc.version}, not "
                    f"{expected_version}; reload it and retry")
            value = fn(enc)
            if not enc.pending_events:
                return CommandResult(enc.id, enc.version, None, value, 0)
            try:
                recordings = self._save(enc, value=value, write_with=write_with)
            except IntegrityError:
                if attempt == attempts:
                    raise ConcurrencyConflict(
                        "version", "version.conflict",
                        "version: another change was saved to this encounter first; reload "
                        "it and retry") from None
                log.info("encounter version conflict, re-running command (attempt %d)", attempt)
                continue
            return CommandResult(enc.id, enc.version, recordings[-1].notification.id, value,
                                 len(recordings))
        raise AssertionError("unreachable")  # pragma: no cover

    def _save(self, enc: Encounter, *, value: Any = None,
              write_with: CommitWrite | None = None) -> list[Any]:
        """Save one encounter's pending events. ``write_with`` writes more rows in the same
        transaction, given the command's result (e.g. the idempotency record)."""
        if write_with is None:
            return self.save(enc)
        # enc.version already counts the pending events
        hook = commit_hook(enc.id, enc.version, len(enc.pending_events), value, write_with)
        return self.save(enc, side_writes=[hook])

    # ------------------------------------------------------------------ log head
    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0


def _never_connected(exc: BaseException) -> bool:
    """True when the save never had a connection (the pool gave none in time): then nothing
    was sent, so nothing can have committed."""
    from psycopg_pool import PoolTimeout

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, PoolTimeout):
            return True
        cause = cause.__cause__
    return False
