"""THE ledger's event recorder: the library's PostgreSQL application recorder plus hooks that
write other rows in the SAME transaction as the events (after the table lock and insert).

Hooks are passed to ``Application.save(..., side_writes=[...])``: each is a callable
``hook(cursor, stored_events, notification_ids)``. Used for idempotency records (API);
the hash chain (tamper evidence) extends ``_insert_stored_events`` here as well.

Exactly once across a lost commit acknowledgement (issue 13): every save carries a
``commit_token`` (a UUID) that is written to ``ledger_commits`` in the save's own transaction.
The library's ``insert_events`` retries by itself on a dropped connection (``@retry`` in
``eventsourcing/postgres.py``) and would then meet the rows it had already committed; this
recorder never retries an insert. When a save fails with the connection, the caller asks
``commit_outcome(token)``: it writes the token as a *fence* (``committed = false``), which
either finds the save's own row (the save committed) or makes it impossible for that save
ever to commit (its token insert would now conflict) — so "not committed" is a final answer
and the command may be re-run.

Selected through the library's ``APPLICATION_RECORDER_TOPIC`` setting (see
``ledger.persistence.database.eventsourcing_env``). One class for every concern, so concerns
compose.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.pq import TransactionStatus

from ledger.persistence.batch_seal import SealingRecorderMixin
from ledger.persistence.chain import ChainedRecorderMixin

log = logging.getLogger(__name__)

SideWrite = Callable[[Any, Sequence[StoredEvent], Sequence[int]], None]


# Above this many bytes of event state a save is sent without libpq's pipeline mode: a large
# INSERT in a pipeline deadlocked here (the server waits to read the rest of the statement
# while the client waits for results; seen from about 1 MB, reproduced with plain psycopg).
PIPELINE_MAX_BYTES = 256 * 1024


class LargeSavesWithoutPipeline(PostgresApplicationRecorder):
    """The library's insert WITHOUT its blind retry, run without pipeline mode when the save
    is large (same statements, same single transaction, same order: lock, notify, insert,
    side writes). Any exception inside the transaction rolls it back."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        if self.datastore.enable_db_functions:  # pragma: no cover - never enabled (hazard 1)
            raise RuntimeError("POSTGRES_ENABLE_DB_FUNCTIONS must not be set")
        pipelined = sum(len(e.state) for e in stored_events) <= PIPELINE_MAX_BYTES
        with self.datastore.get_connection() as conn:
            if not pipelined:
                with conn.transaction(), conn.cursor() as curs:
                    self._insert_events(curs, stored_events, **kwargs)
                    self._insert_stored_events(curs, stored_events, **kwargs)
                    return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
            with conn.pipeline() as pipeline:
                if self._ids_in_transaction(stored_events, kwargs):
                    with conn.transaction():
                        with conn.cursor() as curs:
                            self._insert_events(curs, stored_events, **kwargs)
                        with conn.cursor() as curs:
                            self._insert_stored_events(curs, stored_events, **kwargs)
                            # sync now, so a uniqueness violation is raised here
                            pipeline.sync()
                            return self._fetch_ids_after_insert_events(curs, stored_events,
                                                                       **kwargs)
                # Nothing needs the positions before the commit: the INSERT and the COMMIT
                # go in one round trip (the event-table lock, taken just before the INSERT,
                # is held for that round trip only).
                curs = conn.cursor()
                try:
                    with conn.transaction():
                        with conn.cursor() as first:
                            self._insert_events(first, stored_events, **kwargs)
                        self._insert_stored_events(curs, stored_events, **kwargs)
                    pipeline.sync()  # a uniqueness violation is raised here (nothing committed)
                except BaseException:
                    if conn.info.transaction_status == TransactionStatus.INERROR:
                        conn.rollback()  # the failed INSERT skipped the queued COMMIT
                    raise
                try:
                    return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
                finally:
                    curs.close()

    def _ids_in_transaction(self, stored_events: Sequence[StoredEvent],
                            kwargs: dict[str, Any]) -> bool:
        """Whether something is written with the batch's positions in its transaction."""
        return True


class LedgerRecorder(SealingRecorderMixin, ChainedRecorderMixin, LargeSavesWithoutPipeline):
    # ChainedRecorderMixin: each event's chain_hash, in the insert's transaction (issue 8).
    # SealingRecorderMixin: a signed checkpoint over each batch within LEDGER_SEAL_MAX_DELAY
    # after its commit by the background sealer, or (max delay 0) in its transaction (issue 14).
    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        hooks: Sequence[SideWrite] = kwargs.get("side_writes") or ()
        for hook in hooks:
            hook(curs, stored_events, ids or [])
        self._seal_batch(curs, ids, stored_events)
        return ids

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> None:
        # The commit token first: in the save's transaction, before the event-table lock.
        super()._insert_events(curs, stored_events, **kwargs)
        token = kwargs.get("commit_token")
        if token is not None:
            curs.execute("INSERT INTO ledger_commits (token, committed) VALUES (%s, true)",
                         (token,))

    def _ids_in_transaction(self, stored_events: Sequence[StoredEvent],
                            kwargs: dict[str, Any]) -> bool:
        # side writes (idempotency records) and an in-transaction seal need the positions
        return bool(kwargs.get("side_writes")) or self._seals_in_transaction()

    def commit_outcome(self, token: UUID, timeout: float = 1.5) -> bool | None:
        """Did the save carrying ``token`` commit? True / False (final: it never will), or
        None when the database could not be asked within ``timeout`` seconds.

        The fence row waits (bounded by lock_timeout) for a save still running on the server
        with the same token, so the answer is never "no" for a save that commits later."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.datastore.get_connection() as conn, conn.transaction():
                    conn.execute("SET LOCAL lock_timeout = '1s'")
                    conn.execute("INSERT INTO ledger_commits (token, committed) VALUES (%s,"
                                 " false) ON CONFLICT (token) DO NOTHING", (token,))
                    row = conn.execute("SELECT committed FROM ledger_commits WHERE token = %s",
                                       (token,)).fetchone()
                    return bool(row["committed"])
            except (OperationalError, InterfaceError) as exc:
                if time.monotonic() >= deadline:
                    log.warning("commit outcome unknown for now (%s)", type(exc).__name__)
                    return None
                time.sleep(0.1)

    def positions_of(self, keys: Sequence[tuple[Any, int]]) -> dict[tuple[Any, int], int]:
        """Log positions of committed events, by (originator id, version)."""
        if not keys:
            return {}
        with self.datastore.get_connection() as conn:
            rows = conn.execute(
                "SELECT e.originator_id, e.originator_version, e.notification_id"
                " FROM ledger_events e JOIN unnest(%s::uuid[], %s::bigint[]) AS k(id, v)"
                " ON e.originator_id = k.id AND e.originator_version = k.v",
                ([k[0] for k in keys], [k[1] for k in keys])).fetchall()
        return {(r["originator_id"], r["originator_version"]): r["notification_id"]
                for r in rows}

    def purge_commit_tokens(self, older_than_hours: int = 48) -> int:
        with self.datastore.get_connection() as conn:
            cur = conn.execute("DELETE FROM ledger_commits WHERE recorded_at < now() -"
                               " make_interval(hours => %s)", (older_than_hours,))
            return cur.rowcount
