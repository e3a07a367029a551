"""Read replicas: PostgreSQL streaming standbys that answer the read-model queries.

``LEDGER_READ_DATABASE_URL`` names one or more standbys (comma-separated). A standby holds a
byte-for-byte copy of the primary, replayed from its WAL, read models and their tracking rows
included; the projections and the checkpoint job still write to the primary only.

Read-your-writes: a read with ``min_position`` is answered by a replica once that replica's own
copy of the projection tracking rows has reached the position (polled; a standby cannot
LISTEN); if it has not within ``LEDGER_READ_REPLICA_WAIT`` seconds, or the replica cannot be
reached, the read is answered by the primary instead (which waits as before, bounded by
``LEDGER_WAIT_TIMEOUT``). Reads without ``min_position`` go to a replica as they are.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from ledger.projections import PROJECTION_NAMES
from ledger.projections.queries import wait_for_position

log = logging.getLogger(__name__)

# a replica that cannot be reached is tried again after this long (the primary answers meanwhile)
RETRY_AFTER_SECONDS = 5.0


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


class Replica:
    def __init__(self, url: str, pool: ConnectionPool) -> None:
        self.url = url
        self.pool = pool
        self.down_until = 0.0

    def usable(self, now: float) -> bool:
        return now >= self.down_until


class ReadReplicas:
    """The replicas' pools, chosen round robin."""

    def __init__(self, urls: list[str], *, max_size: int, timeout: float,
                 options: dict[str, str] | None = None) -> None:
        self.replicas = [
            Replica(url, ConnectionPool(url, min_size=1, max_size=max_size, open=True,
                                        timeout=timeout,
                                        kwargs={"autocommit": True, **(options or {})},
                                        check=ConnectionPool.check_connection))
            for url in urls]
        self._turn = itertools.count()
        self._lock = threading.Lock()

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
    def connection(self, min_position: int | None, wait: float
                   ) -> Iterator[psycopg.Connection[Any] | None]:
        """A replica connection whose read models reflect ``min_position`` (when given),
        or None: read from the primary (no usable replica, or it did not catch up within
        ``wait`` seconds)."""
        replica = self.pick()
        if replica is None:
            yield None
            return
        try:
            conn = replica.pool.getconn()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            self.mark_down(replica, exc)
            yield None
            return
        try:
            try:
                caught_up = not min_position or wait_for_position(
                    conn, min_position, names=PROJECTION_NAMES, timeout=wait)
            except psycopg.OperationalError as exc:
                self.mark_down(replica, exc)
                caught_up = False
            yield conn if caught_up else None
        finally:
            replica.pool.putconn(conn)

    def close(self) -> None:
        for replica in self.replicas:
            replica.pool.close()
