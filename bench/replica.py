"""replica: writes/s and reads/s through the real server with 1 and 2 uvicorn workers, reads
answered by the primary or by a streaming standby (LEDGER_READ_DATABASE_URL). A primary and a
standby on loopback (tests/faults/replication.py); projections in a process of their own;
load from bench/loadgen.py in another process, BENCH_HTTP_CONNECTIONS (64) connections.

The four servers (1 or 2 workers × reads from primary or replica) run side by side and the
rounds alternate between them, so each figure is measured beside the others under the same
machine load. Beside every write figure: the commands per transaction (ledger_commits rows:
one per save), the transactions rolled back (a per-batch seal that found another
process's checkpoint newer than its own memory is saved again, ledger/audit/sealing.py),
how many sessions were waiting on a lock (pg_stat_activity, sampled every
0.1 s), and where the CPU went (cores used by the API workers, the primary, the standby, the
projection runner, the load generator, and everything else on the machine).

    python -m bench.replica            # 3 rounds of 4 s
    python -m bench.replica --quick    # 1 round of 2 s
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psutil
import psycopg

from bench.append import seed
from bench.common import ROOT, Report, Sampler, machine, median, stop_process
from bench.http import free_port, load, post

QUICK = "--quick" in sys.argv
SECONDS = float(os.environ.get("BENCH_SECONDS", "2" if QUICK else "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1" if QUICK else "3"))


@contextlib.contextmanager
def api(env: dict[str, str], workers: int) -> Iterator[tuple[int, subprocess.Popen]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level",
         "warning", "--no-access-log"],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("the API did not start")
            time.sleep(0.2)
        yield port, proc
    finally:
        stop_process(proc)


def get(path: str, headers: dict[str, str]) -> str:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n{head}\r\n"


def tokens(url: str) -> tuple[str, str]:
    from ledger.application.idempotency import new_pool
    from ledger.auth.tokens import AuthStore

    pool = new_pool(url, max_size=2)
    try:
        store = AuthStore(pool)
        store.create_user("bench-w", "biller", created_by="bench")
        store.create_user("bench-r", "auditor", created_by="bench")
        return store.create_token("bench-w", "bench"), store.create_token("bench-r", "bench")
    finally:
        pool.close()


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """CPU seconds of these processes and their live children."""
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            for p in [proc, *proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
    return total


def busy_seconds() -> float:
    t = psutil.cpu_times()
    return t.user + t.system + t.nice + getattr(t, "irq", 0) + getattr(t, "softirq", 0)


def children_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for children: the loadgen runs
    return r.ru_utime + r.ru_stime


class LockSampler(Sampler):
    """Every 0.1 s: sessions of the bench database waiting on a lock, and active ones."""

    interval = 0.1

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.samples: list[Any] = []

    def sample(self, conn: Any) -> None:
        self.samples.append(conn.execute(
            "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), "
            "count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone())

    def mean(self, i: int) -> float:
        return sum(s[i] for s in self.samples) / max(1, len(self.samples))


def measured(run: Callable[[], dict], groups: dict[str, list[psutil.Process]],
             url: str) -> dict[str, Any]:
    """One load round with its diagnostics (see the module's docstring)."""
    rollbacks_sql = "SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()"
    with psycopg.connect(url, autocommit=True) as conn:
        commits0 = conn.execute("SELECT count(*) FROM ledger_commits").fetchone()[0]
        rollbacks0 = conn.execute(rollbacks_sql).fetchone()[0]
    cpu0 = {name: cpu_seconds(procs) for name, procs in groups.items()}
    load0, busy0, wall0 = children_seconds(), busy_seconds(), time.monotonic()
    with LockSampler(url) as locks:
        out = run()
    wall = time.monotonic() - wall0
    cores = {name: (cpu_seconds(procs) - cpu0[name]) / wall for name, procs in groups.items()}
    cores["loadgen"] = (children_seconds() - load0) / wall
    cores["other"] = max(0.0, (busy_seconds() - busy0) / wall - sum(cores.values()))
    with psycopg.connect(url, autocommit=True) as conn:
        commits = conn.execute("SELECT count(*) FROM ledger_commits").fetchone()[0] - commits0
        time.sleep(0.6)  # the statistics are flushed at most once a second
        rollbacks = conn.execute(rollbacks_sql).fetchone()[0] - rollbacks0
    out.update(commits=commits, rollbacks=rollbacks, lock_waiting=locks.mean(0),
               active=locks.mean(1), cores=cores)
    return out


def main() -> Report:
    from ledger.persistence.migrate import migrate
    from tests.faults.replication import Cluster

    report = Report("replica (writes and reads, 1 and 2 workers)")
    print(f"# machine: {machine()}; load average before: {os.getloadavg()}")
    directory = ROOT / ".ledger" / "bench-replica" / uuid.uuid4().hex[:6]
    primary = Cluster.primary(directory / "primary")
    standby = None
    projections = None
    try:
        url = primary.create_database("bench")
        migrate(url)
        ids = seed(url, 512)
        writer, reader = tokens(url)
        standby = primary.standby(directory / "standby")
        standby.wait_replayed(primary)
        writes = [post(f"/encounters/{eid}/lines/1/charge-adjustments",
                       {"amount": "1.00", "reason": "bench"},
                       {"Authorization": f"Bearer {writer}"}) for eid in ids]
        reads = {
            "reads": [get(f"/audit/trail?encounter_id={eid}&limit=20",
                          {"Authorization": f"Bearer {reader}"}) for eid in ids],
            "replay": [get(f"/encounters/{eid}", {"Authorization": f"Bearer {reader}"})
                       for eid in ids]}
        base = {"LEDGER_DATABASE_URL": url, "LEDGER_LOG_LEVEL": "WARNING",
                "LEDGER_PROJECTIONS_IN_PROCESS": "0"}
        projections = subprocess.Popen(
            [sys.executable, "-m", "ledger.cli.main", "projections", "run"],
            env={**os.environ, **base, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pg = {"primary": [p for p in [primary.postmaster()] if p],
              "standby": [p for p in [standby.postmaster()] if p],
              "projections": [psutil.Process(projections.pid)]}
        configs = [(w, where) for w in (1, 2) for where in ("primary", "replica")]
        with contextlib.ExitStack() as stack:
            servers = {}
            for workers, where in configs:
                env = dict(base)
                if where == "replica":
                    env["LEDGER_READ_DATABASE_URL"] = standby.url("bench")
                servers[(workers, where)] = stack.enter_context(api(env, workers))
            time.sleep(3.0)  # every worker up
            for port, _ in servers.values():  # warm-up
                load(port, reads["reads"], 0.5 if QUICK else 1.0)
                load(port, reads["replay"], 0.5 if QUICK else 1.0)
            figures: dict[tuple[int, str, str], list[dict]] = {}
            for _ in range(ROUNDS):  # alternate: every server once per round
                for (workers, where), (port, proc) in servers.items():
                    groups = {"api": [psutil.Process(proc.pid)], **pg}
                    for kind, requests in reads.items():
                        figures.setdefault((workers, where, kind), []).append(measured(
                            lambda r=requests, p=port: load(p, r, SECONDS), groups, url))
                    if where == "primary":  # writes go to the primary either way
                        figures.setdefault((workers, "primary", "writes"), []).append(
                            measured(lambda p=port: load(p, writes, SECONDS), groups, url))
        for (workers, where, kind), runs in figures.items():
            per_s = [r["requests"] / r["seconds"] for r in runs]
            cores = {k: round(median([r["cores"][k] for r in runs]), 2)
                     for k in runs[0]["cores"]}
            report.add(figure=f"{kind}_{where}", workers=workers, per_s=median(per_s),
                       p50_ms=median([r["p50"] for r in runs]),
                       p99_ms=median([r["p99"] for r in runs]),
                       errors=sum(r["errors"] for r in runs),
                       per_commit=median([r["requests"] / r["commits"] for r in runs
                                          if r["commits"]]) if kind == "writes" else None,
                       rollbacks=median([r["rollbacks"] for r in runs]),
                       lock_waiting=median([r["lock_waiting"] for r in runs]),
                       cores=" ".join(f"{k}={v}" for k, v in cores.items()), runs=ROUNDS)
    finally:
        if projections is not None:
            stop_process(projections)
        if standby is not None:
            standby.stop()
        primary.stop()
        shutil.rmtree(directory, ignore_errors=True)
    print(f"# load average after: {os.getloadavg()}")
    print(report.table())
    return report


if __name__ == "__main__":
    main()
