"""The per-encounter hash chain: canonical bytes, and the recorder half that writes it.

Every stored event carries ``chain_hash``, computed in the application, in the same
transaction as its INSERT (never in a trigger)::

    chain_hash(v) = SHA-256( prev                    chain_hash(v-1); version 1: 32 zero bytes
                             ‖ u32be(len(id)) ‖ id   the 16 bytes of the UUID (RFC 4122 order)
                             ‖ u64be(v)              the originator version
                             ‖ u32be(len) ‖ topic    the event topic, UTF-8
                             ‖ u32be(len) ‖ state )  the stored state column, byte for byte
                                                     (after transcoding, compression, encryption)

``ChainedRecorderMixin`` is mixed into ``ledger.persistence.recorder.LedgerRecorder`` (the one
recorder of the ledger). Its insert computes each event's hash from the previous event of the same
encounter, then takes the event-table lock and inserts: events of one encounter in the same save
are chained in memory; for the first of them it reads the previous event's hash in the same
transaction, before the lock (that event is committed -- the encounter was loaded from it -- and a
stored event never changes, so the read cannot go stale; the lock is held only for the insert and
the commit) -- unless this process committed that event itself and remembers its hash (which saves
the round trip). It also takes the lock through ``CALL
ledger_events_take_lock()``, a SECURITY DEFINER procedure (migration 0036), so that the application
role needs no UPDATE/DELETE/TRUNCATE privilege on the events table (PostgreSQL requires one of those
for ``LOCK TABLE ... IN EXCLUSIVE MODE``). """

from __future__ import annotations

import hashlib
import struct
import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import DataError, StoredEvent
from psycopg.sql import SQL, Identifier

GENESIS = bytes(32)
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_sha256 = hashlib.sha256


class ChainError(DataError):
    """The chain cannot be extended: the previous event of the encounter is not stored."""


def id_bytes(originator_id: UUID | str) -> bytes:
    if isinstance(originator_id, UUID):
        return originator_id.bytes
    try:
        return UUID(str(originator_id)).bytes
    except ValueError:
        return str(originator_id).encode("utf-8")


def topic_field(topic: str | None) -> bytes:
    """``u32be(len) ‖ topic`` (UTF-8): the topic part of the canonical bytes (cache per topic)."""
    t = (topic or "").encode("utf-8")
    return _U32.pack(len(t)) + t


def _layout(prev: bytes, ident: bytes, version: int, topic_bytes: bytes, state: bytes) -> bytes:
    # The one place the byte layout is written (see the module docstring); ``topic_bytes`` is
    # ``topic_field(topic)``.
    return b"".join((prev, _U32.pack(len(ident)), ident, _U64.pack(version), topic_bytes,
                     _U32.pack(len(state)), state))


def link(prev: bytes, ident: bytes, version: int, topic_bytes: bytes, state: bytes) -> bytes:
    """The chain hash of one event from raw fields: the form every hot loop calls.

    ``ident`` is ``id_bytes(originator_id)`` (16 bytes for a UUID, e.g. PostgreSQL's
    ``uuid_send``), ``topic_bytes`` is ``topic_field(topic)``. Golden vectors:
    tests/unit/test_chain_vectors.py.
    """
    return _sha256(_layout(prev, ident, version, topic_bytes, state)).digest()


def canonical_bytes(prev: bytes, originator_id: UUID | str, version: int, topic: str,
                    state: bytes) -> bytes:
    """The exact bytes hashed for one event (see the module docstring and README)."""
    return _layout(prev, id_bytes(originator_id), version, topic_field(topic), state)


def chain_hash(prev: bytes, originator_id: UUID | str, version: int, topic: str,
               state: bytes) -> bytes:
    """The chain hash of one event (``link`` with the id and topic encoded here)."""
    return link(prev, id_bytes(originator_id), version, topic_field(topic), state)


def chain_hashes(events: Sequence[StoredEvent], previous: dict[Any, bytes]) -> list[bytes]:
    """Hashes for ``events`` (any mix of encounters, each in ascending version order).

    ``previous`` maps an encounter id to the hash of the event just before its first event
    here (absent for encounters that start at version 1). Raises ``ChainError`` if a needed
    previous hash is missing or an encounter's versions here are not consecutive.
    """
    last: dict[Any, tuple[int, bytes]] = {}
    out: list[bytes] = []
    topics: dict[str, bytes] = {}
    for e in events:
        oid, v = e.originator_id, e.originator_version
        seen = last.get(oid)
        if seen is not None:
            if v != seen[0] + 1:
                raise ChainError(f"hash chain: versions {seen[0]} and {v} of one aggregate "
                                 "in one save are not consecutive")
            prev = seen[1]
        elif v == 1:
            prev = GENESIS
        else:
            try:
                prev = previous[oid]
            except KeyError:
                raise ChainError(f"hash chain: version {v - 1} of the aggregate is not "
                                 f"stored; cannot chain version {v}") from None
        ident = oid.bytes if type(oid) is UUID else id_bytes(oid)
        tp = topics.get(e.topic)
        if tp is None:
            tp = topics[e.topic] = topic_field(e.topic)
        h = link(prev, ident, v, tp, e.state)
        last[oid] = (v, h)
        out.append(h)
    return out


class ChainedRecorderMixin:
    """Mixed into the PostgreSQL application recorder (before it in the MRO)."""

    # Set by PostgresApplicationRecorder; declared for readers and type checkers.
    datastore: Any
    events_table_name: str
    lock_table_statements: list[Any]
    sql_create_statements: list[Any]

    #: Hashes of recently committed events, (encounter id, version) -> chain hash. A stored
    #: event never changes, so an entry never goes stale; it saves the in-transaction read of
    #: the previous hash when this process wrote the encounter's last event.
    chain_cache_size = 100_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema = Identifier(self.datastore.schema)
        table = Identifier(self.events_table_name)
        id_type = SQL(self.datastore.originator_id_type)
        lock_procedure = Identifier(f"{self.events_table_name}_take_lock")
        # Scalar arrays in binary format: cheaper to send than the library's composite rows.
        self.chained_insert_statement = SQL(
            "INSERT INTO {schema}.{table} AS t "
            "(originator_id, originator_version, topic, state, chain_hash) "
            "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[], "
            "%b::bytea[]) RETURNING notification_id"
        ).format(schema=schema, table=table, id_type=id_type)
        self.previous_hashes_statement = SQL(
            "SELECT e.originator_id, e.originator_version, e.chain_hash FROM {schema}.{table} e "
            "JOIN unnest(%b::{id_type}[], %b::bigint[]) AS p(id, v) "
            "ON e.originator_id = p.id AND e.originator_version = p.v"
        ).format(schema=schema, table=table, id_type=id_type)
        # The library's LOCK TABLE needs UPDATE/DELETE/TRUNCATE privilege; the procedure takes
        # the same EXCLUSIVE lock (held until commit) with the owner's right. CALL, not SELECT
        # of a function: a statement that returns no row keeps the insert pipelined.
        self.lock_table_statements = [
            SQL("SET LOCAL lock_timeout = '{0}s'").format(self.datastore.lock_timeout),
            SQL("CALL {schema}.{proc}()").format(schema=schema, proc=lock_procedure),
        ]
        # For CREATE_TABLE=y (the library's own path): the same DDL as migration 0031.
        self.sql_create_statements.append(SQL(
            "ALTER TABLE {schema}.{table} ADD COLUMN IF NOT EXISTS chain_hash bytea"
        ).format(schema=schema, table=table))
        self.sql_create_statements.append(SQL(
            "CREATE OR REPLACE PROCEDURE {schema}.{proc}() LANGUAGE plpgsql "
            "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS "
            "$$BEGIN LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; END$$"
        ).format(schema=schema, proc=lock_procedure, table=table))
        self._chain_cache: dict[tuple[Any, int], bytes] = {}
        self._chain_cache_lock = threading.Lock()
        self._chain_local = threading.local()

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        self._chain_local.written = None
        ids = super().insert_events(stored_events, **kwargs)  # type: ignore[misc]
        written = self._chain_local.written
        if written and self.chain_cache_size > 0:  # committed: remember the newest hashes
            self._chain_local.written = None
            with self._chain_cache_lock:
                cache = self._chain_cache
                if len(cache) + len(written) > self.chain_cache_size:
                    cache.clear()
                cache.update(written)
        return ids

    def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> None:
        # Same order as the library (lock, notify, insert, in the library's transaction), with
        # every piece of Python work done before the lock: the lock serialises every writer of
        # the store (other processes too) until this transaction commits, so what runs while
        # it is held is the store's throughput limit. The previous hashes are read before the
        # lock: the event before a save's first event of an encounter is committed (the
        # encounter was loaded from it) and a stored event never changes, so the read cannot
        # go stale; a write of the same version by another writer is refused by the insert.
        # Only when that event is not there yet (nothing this process writes; kept as the
        # safe path) is it read again after the lock, as before.
        previous, missing = self._previous_hashes(curs, stored_events)
        hashes = chain_hashes(stored_events, previous) if not missing else None
        self._lock_table(curs)  # type: ignore[attr-defined]
        self._notify_channel(curs)  # type: ignore[attr-defined]
        if hashes is None:
            previous.update(self._read_previous_hashes(curs, missing))
            hashes = chain_hashes(stored_events, previous)
        curs.execute(self.chained_insert_statement, (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
            hashes))
        newest: dict[tuple[Any, int], bytes] = {}
        last: dict[Any, tuple[int, bytes]] = {}
        for e, h in zip(stored_events, hashes, strict=True):
            last[e.originator_id] = (e.originator_version, h)
        for oid, (v, h) in last.items():
            newest[(oid, v)] = h
        self._chain_local.written = newest
        self._chain_local.hashes = hashes  # this batch's, in insertion order (for the seal)

    def _previous_hashes(self, curs: Any, stored_events: Sequence[StoredEvent]
                         ) -> tuple[dict[Any, bytes], list[tuple[Any, int]]]:
        """Hash of the event before the first event of each encounter in this save (from the
        cache, else read), and the (encounter, version) pairs not found."""
        first: dict[Any, int] = {}
        for e in stored_events:
            if e.originator_id not in first:
                first[e.originator_id] = e.originator_version
        out: dict[Any, bytes] = {}
        wanted: list[tuple[Any, int]] = []
        cache = self._chain_cache
        for oid, v in first.items():
            if v > 1:
                h = cache.get((oid, v - 1))
                if h is None:
                    wanted.append((oid, v - 1))
                else:
                    out[oid] = h
        if not wanted:
            return out, []
        found = self._read_previous_hashes(curs, wanted)
        out.update(found)
        return out, [(oid, v) for oid, v in wanted if oid not in found]

    def _read_previous_hashes(self, curs: Any, wanted: list[tuple[Any, int]]
                              ) -> dict[Any, bytes]:
        """The stored chain hashes of ``wanted`` (encounter, version) pairs, by encounter
        (the fetch syncs the pipeline: one round trip)."""
        curs.execute(self.previous_hashes_statement,
                     ([oid for oid, _ in wanted], [v for _, v in wanted]))
        found = {}
        for row in curs.fetchall():
            oid = row["originator_id"] if isinstance(row, dict) else row[0]
            h = row["chain_hash"] if isinstance(row, dict) else row[2]
            found[oid] = bytes(h)
        out: dict[Any, bytes] = {}
        for oid, _ in wanted:
            key = oid if isinstance(oid, UUID) else _as_uuid(oid)
            if key in found:
                out[oid] = found[key]
        return out


def _as_uuid(value: Any) -> Any:
    try:
        return UUID(str(value))
    except ValueError:
        return value
