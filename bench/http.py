"""http: commands/s and p50/p99 latency at 64 concurrent clients through the real server
(uvicorn, one worker), beside a bare FastAPI endpoint (async, psycopg async pool, orjson, one
uvicorn worker) doing one raw INSERT + COMMIT per request — same run, alternating. The load
comes from bench/loadgen.py in another process.

    .venv/bin/python -m bench.http [--workers 1|2|1,2]

``--workers 2`` (or BENCH_HTTP_WORKERS=2): the ledger as ``ledger serve --workers 2`` and the
bare endpoint as ``uvicorn --workers 2``; ``1,2`` measures both set-ups, one after the other.
Each prints the throughput ratio (ledger/bare) and the p99 ratio (ledger/bare)."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Any

import httpx

from bench.append import seed
from bench.common import ROOT, Report, Sampler, fresh_database, machine, median, stop_process

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_HTTP_CONNECTIONS", "64"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Both servers run on the same stack as `ledger serve` (uvicorn's "auto": uvloop and
# httptools, dependencies of the project); BENCH_HTTP_STACK=asyncio,h11 for the stdlib ones.
STACK = os.environ.get("BENCH_HTTP_STACK", "auto,auto").split(",")


class ConnectionCount(Sampler):
    """Peak connections per application_name (PGAPPNAME of each child) and backend type in
    pg_stat_activity, sampled every 0.2 s on a connection of its own while it runs."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.peak: dict[str, int] = {}

    def sample(self, conn: Any) -> None:
        rows = conn.execute(
            "SELECT coalesce(nullif(application_name, ''), '-') || ' / ' || backend_type,"
            " count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
            " GROUP BY 1").fetchall()
        total = 0
        for key, n in rows:
            self.peak[key] = max(self.peak.get(key, 0), n)
            total += n
        self.peak["total (all at once)"] = max(self.peak.get("total (all at once)", 0), total)


@contextmanager
def server(app: str, env: dict[str, str], stack: list[str] | None = None, workers: int = 1):
    port = free_port()
    env = {**env, "PGAPPNAME": "bench-" + ("ledger" if app == "ledger serve" or "api.main" in app
                                           else "bare")}
    loop, http = stack or STACK
    if app == "ledger serve":  # the deployed command (migrates, then uvicorn --workers N)
        cmd = [sys.executable, "-m", "ledger.cli", "serve", "--host", "127.0.0.1", "--port",
               str(port), "--workers", str(workers)]
    else:
        cmd = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--log-level", "warning",
               "--no-access-log", "--loop", loop, "--http", http]
    proc = subprocess.Popen(cmd, env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                            stdout=subprocess.DEVNULL if app == "ledger serve" else None)
    try:
        deadline = time.time() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
                break
            except httpx.HTTPError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{app} did not start") from None
                time.sleep(0.2)
        yield port
    finally:
        stop_process(proc)


def load(port: int, requests: list[str], seconds: float) -> dict:
    spec = {"host": "127.0.0.1", "port": port, "requests": requests, "seconds": seconds,
            "connections": CONNECTIONS}
    out = subprocess.run([sys.executable, "-m", "bench.loadgen"], input=json.dumps(spec),
                         capture_output=True, text=True, cwd=ROOT, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout)


def post(path: str, body: dict, headers: dict[str, str]) -> str:
    data = json.dumps(body)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n{head}\r\n{data}")


def bench_token(url: str) -> str:
    from ledger.application.idempotency import new_pool
    from ledger.auth.tokens import AuthStore

    pool = new_pool(url, max_size=2)
    try:
        store = AuthStore(pool)
        store.create_user("bench-1", "biller", created_by="bench")
        return store.create_token("bench-1", "bench")
    finally:
        pool.close()


def main() -> Report:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", default=os.environ.get("BENCH_HTTP_WORKERS", "1"),
                    help="uvicorn workers of both servers: 1, 2, or a list (1,2)")
    args = ap.parse_args(sys.argv[1:])
    report = Report(f"http ({CONNECTIONS} concurrent clients)")
    print(f"# machine: {machine()}")
    for workers in [int(w) for w in str(args.workers).split(",") if w.strip()]:
        measure(report, workers)
    print(report.table())
    return report


def measure(report: Report, workers: int) -> None:
    with fresh_database("http") as url:
        ids = seed(url, 512)
        actor = {"Authorization": f"Bearer {bench_token(url)}"}
        ledger_requests = [post(f"/encounters/{eid}/lines/1/charge-adjustments",
                                {"amount": "1.00", "reason": "bench"}, actor) for eid in ids]
        bare_requests = [post("/events", {"topic": "bench"}, {})]
        # The ledger as deployed for throughput (`ledger serve --workers N` does the same):
        # the API process does not run the projections; a process of their own does.
        env = {"LEDGER_DATABASE_URL": url, "LEDGER_LOG_LEVEL": "WARNING",
               "BENCH_DATABASE_URL": url, "LEDGER_PROJECTIONS_IN_PROCESS": "0"}
        projections = subprocess.Popen(
            [sys.executable, "-m", "ledger.cli.main", "projections", "run"],
            env={**os.environ, **env, "PYTHONPATH": str(ROOT), "PGAPPNAME": "bench-projections"},
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # one worker: uvicorn on the app factory (as before); more: `ledger serve --workers N`
        ledger_app = "api.main:create_app" if workers == 1 else "ledger serve"
        try:  # the projection process is stopped whatever happens (a failed start too)
            with ConnectionCount(url) as count, server(ledger_app, env, workers=workers) as lport, \
                    server("bench.bare_app:create_app", env, workers=workers) as bport:
                load(lport, ledger_requests, 1.0)  # warm-up
                load(bport, bare_requests, 1.0)
                runs: dict[str, list[dict]] = {"ledger": [], "bare": []}
                for _ in range(ROUNDS):
                    runs["ledger"].append(load(lport, ledger_requests, SECONDS))
                    runs["bare"].append(load(bport, bare_requests, SECONDS))
        finally:
            stop_process(projections)
        print(f"# workers {workers}: peak connections {json.dumps(count.peak, sort_keys=True)}",
              flush=True)
        for name, rs in runs.items():
            if any(r["errors"] for r in rs):
                print(f"# {name}: errors {[r['error_codes'] for r in rs]}")
        rate = {k: median([r["requests"] / r["seconds"] for r in v]) for k, v in runs.items()}
        p50 = {k: median([r["p50"] for r in v]) for k, v in runs.items()}
        p99 = {k: median([r["p99"] for r in v]) for k, v in runs.items()}
        print(f"# workers {workers}: ledger/bare throughput {rate['ledger'] / rate['bare']:.2f}x"
              f" (target >= 0.8), p99 {p99['ledger'] / p99['bare']:.2f}x (target <= 1.5)",
              flush=True)
        report.add(figure="http", workers=workers, clients=CONNECTIONS,
                   ledger_per_s=rate["ledger"],
                   bare_per_s=rate["bare"], ratio=rate["ledger"] / rate["bare"],
                   ledger_p50_ms=p50["ledger"], ledger_p99_ms=p99["ledger"],
                   bare_p50_ms=p50["bare"], bare_p99_ms=p99["bare"],
                   p99_ratio=p99["ledger"] / p99["bare"],
                   errors=sum(r["errors"] for v in runs.values() for r in v), runs=ROUNDS)


if __name__ == "__main__":
    main()
