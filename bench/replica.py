"""replica: writes/s and reads/s through the real server with 1 and 2 uvicorn workers, reads
answered by the primary or by a streaming standby (LEDGER_READ_DATABASE_URL). A primary and a
standby on loopback (tests/faults/replication.py); projections in a process of their own;
load from bench/loadgen.py in another process, BENCH_HTTP_CONNECTIONS (64) connections.

    python -m bench.replica            # prints a table and one JSON line per figure
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx

from bench.append import seed
from bench.common import ROOT, Report, machine, median
from bench.http import free_port, load, post

SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))


@contextlib.contextmanager
def api(env: dict[str, str], workers: int) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level",
         "warning", "--no-access-log"],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    try:
        deadline = time.time() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("the API did not start")
            time.sleep(0.2)
        time.sleep(1.0 * workers)  # every worker up
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def get(path: str, headers: dict[str, str]) -> str:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n{head}\r\n"


def tokens(url: str) -> tuple[str, str]:
    from ledger.application.idempotency import new_pool
    from ledger.auth import AuthStore

    pool = new_pool(url, max_size=2)
    try:
        store = AuthStore(pool)
        store.create_user("bench-w", "biller", created_by="bench")
        store.create_user("bench-r", "auditor", created_by="bench")
        return store.create_token("bench-w", "bench"), store.create_token("bench-r", "bench")
    finally:
        pool.close()


def main() -> Report:
    from ledger.persistence.migrate import migrate
    from tests.faults.replication import Cluster

    report = Report("replica (writes and reads, 1 and 2 workers)")
    print(f"# machine: {machine()}")
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
        reads = [get(f"/audit/trail?encounter_id={eid}&limit=20",
                     {"Authorization": f"Bearer {reader}"}) for eid in ids]
        base = {"LEDGER_DATABASE_URL": url, "LEDGER_LOG_LEVEL": "WARNING",
                "LEDGER_PROJECTIONS_IN_PROCESS": "0"}
        projections = subprocess.Popen(
            [sys.executable, "-m", "ledger.cli.main", "projections", "run"],
            env={**os.environ, **base, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for workers in (1, 2):
            for where in ("primary", "replica"):
                env = dict(base)
                if where == "replica":
                    env["LEDGER_READ_DATABASE_URL"] = standby.url("bench")
                with api(env, workers) as port:
                    load(port, reads, 1.0)  # warm-up
                    figures: dict[str, list[dict]] = {"reads": [], "writes": []}
                    for _ in range(ROUNDS):
                        figures["reads"].append(load(port, reads, SECONDS))
                        if where == "primary":
                            figures["writes"].append(load(port, writes, SECONDS))
                for kind, runs in figures.items():
                    if not runs:
                        continue
                    report.add(figure=f"{kind}_{where}", workers=workers,
                               per_s=median([r["requests"] / r["seconds"] for r in runs]),
                               p50_ms=median([r["p50"] for r in runs]),
                               p99_ms=median([r["p99"] for r in runs]),
                               errors=sum(r["errors"] for r in runs), runs=ROUNDS)
    finally:
        if projections is not None:
            projections.terminate()
            projections.wait(timeout=30)
        if standby is not None:
            standby.stop()
        primary.stop()
        shutil.rmtree(directory, ignore_errors=True)
    print(report.table())
    return report


if __name__ == "__main__":
    main()
