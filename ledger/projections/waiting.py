"""Read-your-writes: wait until the projections reach a log position -- one mechanism.

``PositionWaiter`` is the one waiter: projection positions behind a condition variable, and a
``wait(position)`` that returns once every wanted projection has reached it. Three feeds:

- ``ProjectionRunner.wait`` (a process that runs the runner): the runner feeds its waiter every
  position it commits, and the wait nudges the runner awake;
- ``ProjectionWaiter`` (the API, one per process): fed by LISTEN/NOTIFY, see below;
- ``wait_for_position(conn, position)`` (a caller with just a connection): the wait polls the
  tracking rows on that connection, from 2 ms doubling to 50 ms.

Every page a runner commits sends ``NOTIFY ledger_projections, '<projection>:<position>'``
(delivered at commit). One ``ProjectionWaiter`` per process LISTENs on that channel in a
background thread and wakes the requests waiting on it; because a notification can be lost,
the thread also re-reads the tracking rows every ``poll_interval`` while anyone is waiting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import Connection

from ledger.projections import PROJECTION_NAMES
from ledger.projections.base import NOTIFY_CHANNEL
from ledger.projections.queries import projection_positions

log = logging.getLogger(__name__)


class PositionWaiter:
    """Projection positions and a wait on them (see the module docstring)."""

    def __init__(self, names: Iterable[str] = PROJECTION_NAMES) -> None:
        self.names = tuple(names)
        self.positions: dict[str, int] = dict.fromkeys(self.names, 0)
        self._cond = threading.Condition()
        self._waiting = 0

    def wait(self, position: int, *, names: Iterable[str] | None = None,
             timeout: float = 5.0, nudge: Callable[[], float] | None = None) -> bool:
        """True once the projections (all, or ``names``) have reached ``position``; False
        after ``timeout`` seconds. ``nudge`` is called each round while not there yet (it may
        wake or poll whatever feeds this waiter) and returns how long to sleep at most before
        the next round."""
        wanted = tuple(names) if names is not None else self.names
        deadline = time.monotonic() + timeout
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()
            try:
                while True:
                    if self._reached(position, wanted):
                        return True
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    if nudge is not None:
                        remaining = min(remaining, nudge())
                        if self._reached(position, wanted):
                            return True
                    self._cond.wait(remaining)
            finally:
                self._waiting -= 1

    def _reached(self, position: int, wanted: Iterable[str]) -> bool:
        positions = self.positions
        return all(positions.get(n, 0) >= position for n in wanted)

    def update(self, positions: dict[str, int], *, exact: bool = False) -> None:
        """Notifications only move positions forward; an exact reading (a poll of the tracking
        rows, the runner's own commit) may move one back (a rebuild resets it to 0, and reads
        must wait for it again)."""
        with self._cond:
            changed = False
            for name, pos in positions.items():
                if pos > self.positions.get(name, 0) or (
                        exact and pos != self.positions.get(name, 0)):
                    self.positions[name] = pos
                    changed = True
            if changed:
                self._cond.notify_all()


def wait_for_position(conn: Connection[Any], position: int, *,
                      names: Iterable[str] = PROJECTION_NAMES, timeout: float = 5.0) -> bool:
    """Block until the projections (default: all) reflect every event up to ``position``
    (a ``CommandResult.position``); False when ``timeout`` passes first.

    Polls the tracking rows on ``conn`` from 2 ms, doubling up to 50 ms (the library's ``wait``
    starts at 100 ms). A process that runs the runner should use ``ProjectionRunner.wait`` (no
    polling); the API shares one ``ProjectionWaiter``.
    """
    names = tuple(names)
    waiter = PositionWaiter(names)
    delay = 0.002

    def poll() -> float:  # READ COMMITTED: each poll sees the latest commits
        nonlocal delay
        waiter.update(projection_positions(conn, names), exact=True)
        slept, delay = delay, min(delay * 2, 0.05)
        return slept

    return waiter.wait(position, timeout=timeout, nudge=poll)


class ProjectionWaiter(PositionWaiter):
    """A ``PositionWaiter`` fed by LISTEN/NOTIFY in a background thread (one per process)."""

    def __init__(self, conninfo: str, *, names: Iterable[str] = PROJECTION_NAMES,
                 poll_interval: float = 0.02, **connect_kwargs: Any) -> None:
        super().__init__(names)
        self.conninfo = conninfo
        self.connect_kwargs = connect_kwargs
        self.poll_interval = poll_interval
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
             timeout: float = 5.0, nudge: Callable[[], float] | None = None) -> bool:
        self._ensure_started()
        return super().wait(position, names=names, timeout=timeout, nudge=nudge)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True,
                                     **self.connect_kwargs) as conn:
                    conn.execute(f'LISTEN "{NOTIFY_CHANNEL}"')
                    self.update(projection_positions(conn, self.names), exact=True)
                    self._started.set()
                    self._lost = False
                    last_poll = time.monotonic()
                    while not self._stop.is_set():
                        idle = self._waiting == 0
                        for n in conn.notifies(timeout=0.5 if idle else self.poll_interval,
                                               stop_after=1):
                            name, _, pos = n.payload.partition(":")
                            if name in self.positions and pos.isdigit():
                                self.update({name: int(pos)})
                        if self._waiting and time.monotonic() - last_poll >= self.poll_interval:
                            self.update(projection_positions(conn, self.names), exact=True)
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
