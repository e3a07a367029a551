"""Is PostgreSQL answering? One monitor per process, so that an outage costs one log line per
change of state (not a traceback per request), every request is answered 503 at once while
it lasts, and everything resumes as soon as the database answers again.

A ping (``SELECT 1`` on the monitor's own connection) runs every ``interval`` seconds in a
helper thread; if it fails (refused, reset: at once), or has not answered after ``timeout``
seconds (a frozen server answers nothing, and no server-side timeout can fire; the timeout
is long enough that a merely busy machine is not taken for an outage), the database is
*unavailable*. The
first ping that succeeds makes it *available* again, and the recovery callbacks run (release
idempotency keys whose release failed, wake the projection runner).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)

# How long past its timeout a ping may still finish before the database is called unavailable
# (its answer may have arrived while this process could not run the ping's thread).
STALL_GRACE = 0.1


class DatabaseMonitor:
    def __init__(self, url: str, *, interval: float = 0.25, timeout: float = 1.25) -> None:
        self.url = url
        self.interval = interval
        self.timeout = timeout
        self.available = True
        self.reason = ""
        self.changed_at = time.monotonic()
        self.outages = 0
        self._on_recovery: list[Callable[[], object]] = []
        self._on_change: list[Callable[[bool], object]] = []
        self._conn: psycopg.Connection | None = None
        self._pinger: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stalled_once = False

    # ------------------------------------------------------------------ public
    def on_recovery(self, callback: Callable[[], object]) -> None:
        self._on_recovery.append(callback)

    def on_change(self, callback: Callable[[bool], object]) -> None:
        self._on_change.append(callback)

    def start(self) -> DatabaseMonitor:
        self._thread = threading.Thread(target=self._loop, name="db-monitor", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        conn, self._conn = self._conn, None
        if conn is not None and (self._pinger is None or not self._pinger.is_alive()):
            with contextlib.suppress(Exception):
                conn.close()

    def check_now(self) -> bool:
        """One ping, now (used by tests and at start)."""
        self._round()
        return self.available

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._round()
            self._stop.wait(self.interval)

    def _round(self) -> None:
        if self._pinger is None or not self._pinger.is_alive():
            self._error = None
            self._pinger = threading.Thread(target=self._ping, name="db-ping", daemon=True)
            self._pinger.start()
        waited = time.monotonic()
        self._pinger.join(self.timeout)
        if self._pinger.is_alive():
            # A ping whose answer came while this process was stalled (a long garbage
            # collection, a C call holding the GIL) finishes as soon as its thread runs again:
            # give it that moment, and do not call a stall of our own process an outage — when
            # this thread itself woke late, the database may well have answered in time.
            self._pinger.join(STALL_GRACE)
            late = time.monotonic() - waited - self.timeout - STALL_GRACE
            if self._pinger.is_alive():
                if late > STALL_GRACE and not self._stalled_once:
                    self._stalled_once = True  # our stall, not the database's: look again
                    log.info("database ping delayed by a %.2f s stall of this process", late)
                else:
                    self._set(False, "not answering")
                return
        self._stalled_once = False
        if self._error is not None:
            self._set(False, type(self._error).__name__)
        else:
            self._set(True, "")

    def _ping(self) -> None:
        try:
            conn = self._conn
            if conn is None or conn.closed:
                conn = self._conn = psycopg.connect(self.url, autocommit=True,
                                                    connect_timeout=2)
            conn.execute("SELECT 1")
        except BaseException as exc:  # noqa: BLE001 - reported by _round
            self._error = exc
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def _set(self, available: bool, reason: str) -> None:
        if available == self.available:
            return
        now = time.monotonic()
        lasted = now - self.changed_at
        self.available, self.reason, self.changed_at = available, reason, now
        if available:
            log.warning("database available again (after %.1f s unavailable)", lasted)
            for callback in self._on_recovery:
                try:
                    callback()
                except Exception as exc:  # noqa: BLE001 - one failing hook must not stop others
                    log.warning("recovery step failed (%s)", type(exc).__name__)
        else:
            self.outages += 1
            log.warning("database unavailable (%s); answering 503 until it returns", reason)
        for change in self._on_change:
            with contextlib.suppress(Exception):
                change(available)
