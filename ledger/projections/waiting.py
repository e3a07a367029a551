"""Read-your-writes across processes: wait until the projections reach a log position.

Every page a runner commits sends ``NOTIFY ledger_projections, '<projection>:<position>'``
(delivered at commit). One ``ProjectionWaiter`` per process LISTENs on that channel in a
background thread and wakes the requests waiting on it; because a notification can be lost,
the thread also re-reads the tracking rows every ``poll_interval`` while anyone is waiting.
A process that runs the runner itself can use ``ProjectionRunner.wait`` instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import psycopg

from ledger.projections import PROJECTION_NAMES
from ledger.projections.base import NOTIFY_CHANNEL
from ledger.projections.queries import projection_positions

log = logging.getLogger(__name__)


class ProjectionWaiter:
    def __init__(self, conninfo: str, *, names: Iterable[str] = PROJECTION_NAMES,
                 poll_interval: float = 0.02, **connect_kwargs: Any) -> None:
        self.conninfo = conninfo
        self.connect_kwargs = connect_kwargs
        self.names = tuple(names)
        self.poll_interval = poll_interval
        self.positions: dict[str, int] = dict.fromkeys(self.names, 0)
        self._cond = threading.Condition()
        self._waiting = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._lost = False

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._cond:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, daemon=True,
                                                    name="projection-waiter")
                    self._thread.start()
        self._started.wait(5.0)

    def wait(self, position: int, *, names: Iterable[str] | None = None,
             timeout: float = 5.0) -> bool:
        """True once the projections (all, or ``names``) have reached ``position``; False
        after ``timeout`` seconds."""
        wanted = tuple(names) if names is not None else self.names
        self._ensure_started()
        deadline = time.monotonic() + timeout
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()
            try:
                while True:
                    if all(self.positions.get(n, 0) >= position for n in wanted):
                        return True
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
            finally:
                self._waiting -= 1

    def _update(self, positions: dict[str, int], *, exact: bool = False) -> None:
        """Notifications only move positions forward; a poll of the tracking rows is exact
        (a rebuild moves a projection back to 0, and reads must wait for it again)."""
        with self._cond:
            changed = False
            for name, pos in positions.items():
                if pos > self.positions.get(name, 0) or (exact and pos != self.positions[name]):
                    self.positions[name] = pos
                    changed = True
            if changed:
                self._cond.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True,
                                     **self.connect_kwargs) as conn:
                    conn.execute(f'LISTEN "{NOTIFY_CHANNEL}"')
                    self._update(projection_positions(conn, self.names), exact=True)
                    self._started.set()
                    self._lost = False
                    last_poll = time.monotonic()
                    while not self._stop.is_set():
                        idle = self._waiting == 0
                        for n in conn.notifies(timeout=0.5 if idle else self.poll_interval,
                                               stop_after=1):
                            name, _, pos = n.payload.partition(":")
                            if name in self.positions and pos.isdigit():
                                self._update({name: int(pos)})
                        if self._waiting and time.monotonic() - last_poll >= self.poll_interval:
                            self._update(projection_positions(conn, self.names), exact=True)
                            last_poll = time.monotonic()
                        elif idle:
                            with self._cond:
                                if self._waiting == 0:
                                    self._cond.wait(0.5)
            except Exception as exc:
                if not self._lost:  # one line per outage, not one per reconnect attempt
                    log.warning("projection waiter: connection lost (%s)", type(exc).__name__)
                self._lost = True
                self._started.set()
                self._stop.wait(0.25)

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5.0)
