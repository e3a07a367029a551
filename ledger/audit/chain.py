"""The per-encounter hash chain: canonical bytes, and the recorder half that writes it.

Every stored event carries ``chain_hash``, computed in the application, in the same
transaction as its INSERT (never in a trigger)::

    chain_hash(v) = SHA-256( prev                     32 bytes: chain_hash(v-1); genesis (v=1) = 32 zero bytes
                             ‖ u32be(len(id)) ‖ id    the encounter id: the 16 bytes of the UUID (RFC 4122 order)
                             ‖ u64be(v)               the originator version
                             ‖ u32be(len(topic)) ‖ topic    the event topic, UTF-8
                             ‖ u32be(len(state)) ‖ state )  the stored state column, byte for byte
                                                            (after transcoding/compression/encryption)

``ChainedRecorderMixin`` is mixed into ``ledger.recorder.LedgerRecorder`` (the one recorder of
the ledger). Its insert takes the event-table lock, then computes each event's hash from the
previous event of the same encounter: events of one encounter in the same save are chained in
memory; for the first of them it reads the previous event's hash inside the same transaction,
after the lock (the lock serialises writers, so that read cannot go stale). It also takes the
lock through ``ledger_events_lock()``, a SECURITY DEFINER function created by migration 0031,
so that the application role needs no UPDATE/DELETE/TRUNCATE privilege on the events table
(PostgreSQL requires one of those for ``LOCK TABLE ... IN EXCLUSIVE MODE``).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import DataError, StoredEvent
from psycopg.sql import SQL, Identifier

GENESIS = bytes(32)
CHAINED_TYPE = "stored_event_chained"
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


def canonical_bytes(prev: bytes, originator_id: UUID | str, version: int, topic: str,
                    state: bytes) -> bytes:
    """The exact bytes hashed for one event (see the module docstring and README)."""
    ident = id_bytes(originator_id)
    t = (topic or "").encode("utf-8")
    return b"".join((prev, _U32.pack(len(ident)), ident, _U64.pack(version),
                     _U32.pack(len(t)), t, _U32.pack(len(state)), state))


def chain_hash(prev: bytes, originator_id: UUID | str, version: int, topic: str,
               state: bytes) -> bytes:
    ident = id_bytes(originator_id)
    t = (topic or "").encode("utf-8")
    return _sha256(b"".join((prev, _U32.pack(len(ident)), ident, _U64.pack(version),
                             _U32.pack(len(t)), t, _U32.pack(len(state)), state))).digest()


def chain_hashes(events: Sequence[StoredEvent], previous: dict[Any, bytes]) -> list[bytes]:
    """Hashes for ``events`` (any mix of encounters, each in ascending version order).

    ``previous`` maps an encounter id to the hash of the event just before its first event
    here (absent for encounters that start at version 1). Raises ``ChainError`` if a needed
    previous hash is missing or an encounter's versions here are not consecutive.
    """
    last: dict[Any, tuple[int, bytes]] = {}
    out: list[bytes] = []
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
        h = chain_hash(prev, oid, v, e.topic, e.state)
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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema = Identifier(self.datastore.schema)
        table = Identifier(self.events_table_name)
        id_type = self.datastore.originator_id_type
        lock_function = Identifier(f"{self.events_table_name}_lock")
        self.chained_type_name = CHAINED_TYPE if id_type == "uuid" else f"{CHAINED_TYPE}_text"
        self.chained_insert_statement = SQL(
            "INSERT INTO {schema}.{table} AS t "
            "(originator_id, originator_version, topic, state, chain_hash) "
            "SELECT originator_id, originator_version, topic, state, chain_hash "
            "FROM unnest(%s::{schema}.{type}[]) RETURNING notification_id"
        ).format(schema=schema, table=table, type=Identifier(self.chained_type_name))
        self.previous_hashes_statement = SQL(
            "SELECT e.originator_id, e.chain_hash FROM {schema}.{table} e "
            "JOIN unnest(%s::{id_type}[], %s::bigint[]) AS p(id, v) "
            "ON e.originator_id = p.id AND e.originator_version = p.v"
        ).format(schema=schema, table=table, id_type=SQL(id_type))
        # The library's LOCK TABLE needs UPDATE/DELETE/TRUNCATE privilege; the function holds
        # the same EXCLUSIVE lock until commit, with the owner's right to take it.
        self.lock_table_statements = [
            SQL("SET LOCAL lock_timeout = '{0}s'").format(self.datastore.lock_timeout),
            SQL("SELECT {schema}.{fn}()").format(schema=schema, fn=lock_function),
        ]
        # For CREATE_TABLE=y (tests of the library's path): the same DDL as migration 0031.
        self.sql_create_statements.append(SQL(
            "CREATE TYPE {schema}.{type} AS (originator_id {id_type}, originator_version bigint, "
            "topic text, state bytea, chain_hash bytea)"
        ).format(schema=schema, type=Identifier(self.chained_type_name), id_type=SQL(id_type)))
        self.sql_create_statements.append(SQL(
            "ALTER TABLE {schema}.{table} ADD COLUMN IF NOT EXISTS chain_hash bytea"
        ).format(schema=schema, table=table))
        self.sql_create_statements.append(SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{fn}() RETURNS void LANGUAGE plpgsql "
            "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS "
            "$$BEGIN LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; END$$"
        ).format(schema=schema, fn=lock_function, table=table))
        self.datastore.db_type_names.add(self.chained_type_name)
        self.datastore.register_type_adapters()

    def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> None:
        # Same order as the library: lock, notify, insert (all in the library's transaction).
        self._lock_table(curs)  # type: ignore[attr-defined]
        self._notify_channel(curs)  # type: ignore[attr-defined]
        hashes = chain_hashes(stored_events, self._previous_hashes(curs, stored_events))
        try:
            construct = self.datastore.psycopg_python_types[self.chained_type_name]
        except KeyError:
            raise ChainError(f"composite type {self.chained_type_name!r} not found: run "
                             "`ledger migrate`") from None
        rows = [construct(e.originator_id, e.originator_version, e.topic, e.state, h)
                for e, h in zip(stored_events, hashes, strict=True)]
        curs.execute(self.chained_insert_statement, (rows,))

    def _previous_hashes(self, curs: Any, stored_events: Sequence[StoredEvent]
                         ) -> dict[Any, bytes]:
        """Hash of the event before the first event of each encounter in this save."""
        first: dict[Any, int] = {}
        for e in stored_events:
            if e.originator_id not in first:
                first[e.originator_id] = e.originator_version
        wanted = [(oid, v - 1) for oid, v in first.items() if v > 1]
        if not wanted:
            return {}
        # Runs after the lock statement in the same transaction (the fetch syncs the pipeline).
        curs.execute(self.previous_hashes_statement,
                     ([oid for oid, _ in wanted], [v for _, v in wanted]))
        rows = curs.fetchall()
        out: dict[Any, bytes] = {}
        for row in rows:
            oid = row["originator_id"] if isinstance(row, dict) else row[0]
            h = row["chain_hash"] if isinstance(row, dict) else row[1]
            out[oid] = bytes(h)
        # Ids come back as UUIDs; callers may have passed strings.
        for oid in list(first):
            if not isinstance(oid, UUID) and oid not in out:
                try:
                    key = UUID(str(oid))
                except ValueError:
                    continue
                if key in out:
                    out[oid] = out[key]
        return out
