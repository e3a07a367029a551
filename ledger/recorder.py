"""THE ledger's event recorder: the library's PostgreSQL application recorder plus hooks that
write other rows in the SAME transaction as the events (after the table lock and insert).

Hooks are passed to ``Application.save(..., side_writes=[...])``: each is a callable
``hook(cursor, stored_events, notification_ids)``. Used for idempotency records (API);
the hash chain (tamper evidence) extends ``_insert_stored_events`` here as well.

Selected through the library's ``APPLICATION_RECORDER_TOPIC`` setting (see
``ledger.database.eventsourcing_env``). One class for every concern, so concerns compose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from ledger.audit.chain import ChainedRecorderMixin
from ledger.audit.sealing import SealingRecorderMixin

SideWrite = Callable[[Any, Sequence[StoredEvent], Sequence[int]], None]


# Above this many bytes of event state a save is sent without libpq's pipeline mode: a large
# INSERT in a pipeline deadlocked here (the server waits to read the rest of the statement
# while the client waits for results; seen from about 1 MB, reproduced with plain psycopg).
PIPELINE_MAX_BYTES = 256 * 1024


class LargeSavesWithoutPipeline(PostgresApplicationRecorder):
    """The library's insert, run without pipeline mode when the save is large (same
    statements, same single transaction, same order: lock, notify, insert, side writes)."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        if self.datastore.enable_db_functions or \
                sum(len(e.state) for e in stored_events) <= PIPELINE_MAX_BYTES:
            return super().insert_events(stored_events, **kwargs)
        with self.datastore.get_connection() as conn, conn.transaction():
            with conn.cursor() as curs:
                self._insert_events(curs, stored_events, **kwargs)
                self._insert_stored_events(curs, stored_events, **kwargs)
                return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)


class LedgerRecorder(SealingRecorderMixin, ChainedRecorderMixin, LargeSavesWithoutPipeline):
    # ChainedRecorderMixin: each event's chain_hash, in the insert's transaction (issue 8).
    # SealingRecorderMixin: a signed checkpoint over each batch, in its transaction (issue 14).
    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        hooks: Sequence[SideWrite] = kwargs.get("side_writes") or ()
        for hook in hooks:
            hook(curs, stored_events, ids or [])
        self._seal_batch(curs, ids)
        return ids
