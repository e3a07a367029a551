"""Reads the ledger's event log in pages, as domain events, for the projections.

One query per page (``notification_id > after ORDER BY notification_id LIMIT n``) and the
application's own mapper to turn rows into events (the same transcoder, cipher and
compressor settings the application writes with).
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from ledger.gc_pause import gc_paused
from ledger.projections.base import EVENTS_TABLE, Page, PagedEvent


class EventReader:
    def __init__(self, datastore: PostgresDatastore, mapper: Mapper[Any],
                 events_table: str = EVENTS_TABLE) -> None:
        self.datastore = datastore
        self.mapper = mapper
        table = SQL("{0}.{1}").format(Identifier(datastore.schema), Identifier(events_table))
        self._select = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {0} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(table)
        self._head = SQL("SELECT COALESCE(MAX(notification_id), 0) FROM {0}").format(table)
        self._count = SQL("SELECT count(*) FROM {0} WHERE notification_id > %s").format(table)

    def read_rows(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        """Raw rows (id, originator id, version, topic, state) after ``after``."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as c:
            c.execute(self._select, (after, limit), prepare=True)
            return c.fetchall()

    def decode(self, rows: list[tuple[Any, ...]]) -> list[PagedEvent]:
        to_event = self.mapper.to_domain_event
        with gc_paused():
            return [PagedEvent(r[0], to_event(StoredEvent(r[1], r[2], r[3], bytes(r[4]))))
                for r in rows]

    def read(self, after: int, limit: int) -> Page:
        """Every committed event after ``after`` (up to ``limit`` of them), in log order."""
        return Page(after, self.decode(self.read_rows(after, limit)))

    def head(self) -> int:
        """The log's last position (0 when empty)."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as c:
            c.execute(self._head)
            row = c.fetchone()
            return int(row[0]) if row else 0

    def count_after(self, position: int) -> int:
        """How many events the log holds after ``position``."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as c:
            c.execute(self._count, (position,))
            row = c.fetchone()
            return int(row[0]) if row else 0
