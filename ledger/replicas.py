"""Read replicas: PostgreSQL streaming standbys that answer the read-model queries.

``LEDGER_READ_DATABASE_URL`` names one or more standbys (comma-separated). A standby holds a
byte-for-byte copy of the primary, replayed from its WAL, read models and their tracking rows
included; the projections and the checkpoint job still write to the primary only.

Read-your-writes: a read with ``min_position`` is answered by a replica once that replica's own
copy of the projection tracking rows has reached the position (polled; a standby cannot
LISTEN); if it has not within ``LEDGER_READ_REPLICA_WAIT`` seconds, or the replica cannot be
reached, the read is answered by the primary instead (which waits as before, bounded by
``LEDGER_WAIT_TIMEOUT``). Reads without ``min_position`` go to a replica as they are.

Replay reads (an encounter now or as of a version or moment, its history, a diff, an
explanation) and the remittance reconciliation report are answered from a replica too: there
the rule is the replica's own copy of the event log — it answers once its highest
``notification_id`` has reached ``min_position`` (events commit in position order under the
event-table lock, so reaching a position means holding every event up to it, and the rows a
save writes beside its events). Each replica then has its own read-only event store (a
``LedgerApplication`` with no writer and no sealer, made on first use).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from ledger.database import check_when_suspect, mark_idle
from ledger.projections import PROJECTION_NAMES
from ledger.projections.queries import wait_for_position

log = logging.getLogger(__name__)

# a replica that cannot be reached is tried again after this long (the primary answers meanwhile)
RETRY_AFTER_SECONDS = 5.0
# how often a read with min_position asks a replica how far its event log has been replayed
POLL_SECONDS = 0.02

_HEAD = "SELECT COALESCE(MAX(notification_id), 0) FROM ledger_events"


def parse_urls(value: str) -> list[str]:
    """The comma-separated URLs of LEDGER_READ_DATABASE_URL (a URL holds no bare comma but
    inside a multi-host ``host=a,b`` query, which is kept with its URL)."""
    urls: list[str] = []
    for part in (value or "").split(","):
        part = part.strip()
        if not part:
            continue
        if urls and "://" not in part:  # the rest of a multi-host list: host=a,b
            urls[-1] += "," + part
        else:
            urls.append(part)
    return urls


def events_replayed(conn: psycopg.Connection[Any], min_position: int, timeout: float) -> bool:
    """Whether the event log on ``conn`` reaches ``min_position`` within ``timeout`` seconds
    (polled: a standby cannot LISTEN)."""
    deadline = time.monotonic() + timeout
    while True:
        if conn.execute(_HEAD).fetchone()[0] >= min_position:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


class Replica:
    def __init__(self, url: str, pool: ConnectionPool) -> None:
        self.url = url
        self.pool = pool
        self.down_until = 0.0
        self.reader: Any = None  # its read-only event store, made on first use

    def usable(self, now: float) -> bool:
        return now >= self.down_until


class ReadReplicas:
    """The replicas' pools, chosen round robin."""

    def __init__(self, urls: list[str], *, max_size: int, timeout: float,
                 options: dict[str, str] | None = None,
                 reader: Callable[[str], Any] | None = None) -> None:
        """``reader(url)``: a read-only event store on a replica (for replay reads)."""
        self.replicas = [
            Replica(url, ConnectionPool(url, min_size=1, max_size=max_size, open=True,
                                        timeout=timeout,
                                        kwargs={"autocommit": True, **(options or {})},
                                        check=check_when_suspect, reset=mark_idle))
            for url in urls]
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._make_reader = reader

    def __bool__(self) -> bool:
        return bool(self.replicas)

    def pick(self) -> Replica | None:
        now = time.monotonic()
        with self._lock:
            for _ in range(len(self.replicas)):
                replica = self.replicas[next(self._turn) % len(self.replicas)]
                if replica.usable(now):
                    return replica
        return None

    def mark_down(self, replica: Replica, exc: BaseException) -> None:
        if replica.usable(time.monotonic()):
            log.warning("read replica unreachable (%s); reads go to the primary for %gs",
                        type(exc).__name__, RETRY_AFTER_SECONDS)
        replica.down_until = time.monotonic() + RETRY_AFTER_SECONDS

    @contextlib.contextmanager
    def connection(self, min_position: int | None, wait: float, *, events: bool = False
                   ) -> Iterator[psycopg.Connection[Any] | None]:
        """A replica connection whose read models reflect ``min_position`` (when given; with
        ``events``: whose event log reaches it), or None: read from the primary (no usable
        replica, or it did not catch up within ``wait`` seconds)."""
        with self._replica(min_position, wait, events=events) as (replica, conn):
            yield conn

    def ledger(self, min_position: int | None, wait: float) -> Any:
        """A replica's read-only event store whose log reaches ``min_position`` (when given),
        or None: replay from the primary."""
        with self._replica(min_position, wait, events=True) as (replica, conn):
            if conn is None or self._make_reader is None:
                return None
            if replica.reader is None:
                with self._lock:
                    if replica.reader is None:
                        try:
                            replica.reader = self._make_reader(replica.url)
                        except Exception as exc:  # noqa: BLE001 - the primary answers
                            self.mark_down(replica, exc)
                            return None
            return replica.reader

    @contextlib.contextmanager
    def _replica(self, min_position: int | None, wait: float, *, events: bool
                 ) -> Iterator[tuple[Replica | None, psycopg.Connection[Any] | None]]:
        replica = self.pick()
        if replica is None:
            yield None, None
            return
        try:
            conn = replica.pool.getconn()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            self.mark_down(replica, exc)
            yield None, None
            return
        try:
            try:
                if not min_position:
                    caught_up = True
                elif events:
                    caught_up = events_replayed(conn, min_position, wait)
                else:
                    caught_up = wait_for_position(conn, min_position, names=PROJECTION_NAMES,
                                                  timeout=wait)
            except psycopg.OperationalError as exc:
                self.mark_down(replica, exc)
                caught_up = False
            yield (replica, conn) if caught_up else (None, None)
        finally:
            replica.pool.putconn(conn)

    def close(self) -> None:
        for replica in self.replicas:
            if replica.reader is not None:
                replica.reader.close()
            replica.pool.close()
