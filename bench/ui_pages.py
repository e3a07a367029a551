"""ui: workbench page latency with a large store — the claim page and claim search (p50/p95/p99
over BENCH_UI_REQUESTS requests each), beside the API's JSON reads of the same data as the
baseline, alternating request by request, over real HTTP to uvicorn on loopback.

The store is filled with BENCH_UI_EVENTS (default 1,000,000) events of the randomized workload
(``ledger/projections/workload.py``), the projections caught up, then a biller signs in once
through the sign-in form (session cookie + CSRF) and every request carries that session.
Every page read is also written to the read-access log, as in production.
"""

from __future__ import annotations

import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable

import httpx
import psycopg

from bench.common import Report, fresh_database, machine, median, percentile
from bench.workload import run_workload
from ledger.application.service import LedgerApplication
from ledger.config import Settings
from ledger.persistence.database import eventsourcing_env
from ledger.projections.runner import ProjectionRunner

EVENTS = int(os.environ.get("BENCH_UI_EVENTS", "1000000"))
REQUESTS = int(os.environ.get("BENCH_UI_REQUESTS", "200"))
SECRET = "bench-secret-0123456789abcdef"
KEEP = os.environ.get("BENCH_UI_KEEP", "") not in ("", "0", "n", "no")  # keep the database


def fill(url: str) -> int:
    env = eventsourcing_env(url, Settings(database_url=url, cache_size=0))
    app = LedgerApplication(env=env)
    try:
        stats = run_workload(app.save, encounters=EVENTS, seed=2026, concurrency=200,
                             max_events=EVENTS)
    finally:
        app.close()
    runner = ProjectionRunner(eventsourcing_env(url, Settings(database_url=url)),
                              page_size=10000, max_page_size=10000)
    try:
        runner.catch_up(until=runner.reader.head())
    finally:
        runner.close()
    return stats.events


def serve(url: str) -> tuple[str, Callable[[], None]]:
    import uvicorn

    from api.main import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(database_url=url, projections_in_process=False)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)

    return f"http://127.0.0.1:{port}", stop


def main() -> Report:
    report = Report(f"workbench pages (ms per request, {REQUESTS} requests each)")
    with fresh_database("ui", keep=KEEP) as url:
        started = time.perf_counter()
        events = fill(url)
        print(f"# database {url.rsplit('/', 1)[-1]}", flush=True)
        print(f"# filled and projected {events:,} events in {time.perf_counter() - started:.0f}s;"
              f" machine {machine()}", flush=True)
        from ledger.application.idempotency import new_pool
        from ledger.auth.tokens import AuthStore

        pool = new_pool(url, max_size=2)
        AuthStore(pool).create_user("bench-biller", "biller", created_by="bench")
        token = AuthStore(pool).create_token("bench-biller", token_id="bench", secret=SECRET)
        pool.close()
        with psycopg.connect(url) as conn:
            claims = conn.execute("SELECT encounter_id, claim_number, payer_id, patient_ref, "
                                  "status FROM current_claims").fetchall()
            stored = conn.execute("SELECT count(*) FROM ledger_events").fetchone()[0]
        rng = random.Random(16)
        base, stop = serve(url)
        try:
            with httpx.Client(base_url=base, timeout=60) as http:
                form = http.get("/ui/signin").text
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
                r = http.post("/ui/signin", data={"token": token, "csrf_token": csrf},
                              follow_redirects=True)
                assert r.status_code == 200 and "bench-biller" in r.text, r.status_code
                api = {"Authorization": f"Bearer {token}"}

                def searches() -> tuple[str, dict[str, str]]:
                    eid, number, payer, patient, status = rng.choice(claims)
                    return rng.choice([
                        ("number", {"claim_number": number}),
                        ("patient", {"patient_ref": patient}),
                        ("payer+status", {"payer_id": payer, "status": status}),
                        ("outstanding", {"outstanding": "true", "page": "3"}),
                        ("payer sorted by outstanding", {"payer_id": payer,
                                                         "sort": "outstanding"}),
                    ])

                timings: dict[str, list[float]] = {k: [] for k in (
                    "claim page (/ui)", "claim read (API JSON)", "claim search (/ui)",
                    "claims list (API JSON)")}

                def timed(name: str, fn: Callable[[], httpx.Response]) -> None:
                    t = time.perf_counter()
                    response = fn()
                    timings[name].append((time.perf_counter() - t) * 1000)
                    assert response.status_code == 200, (name, response.status_code)

                for _ in range(REQUESTS):
                    eid, number, *_ = rng.choice(claims)
                    path = f"/encounters/{eid}/claims/{number}"
                    timed("claim page (/ui)", lambda p=path: http.get("/ui" + p))
                    timed("claim read (API JSON)", lambda p=path: http.get(p, headers=api))
                    kind, params = searches()
                    timed("claim search (/ui)", lambda q=params: http.get("/ui/claims",
                                                                          params=q))
                    timings.setdefault(f"  search by {kind}", []).append(
                        timings["claim search (/ui)"][-1])
                    api_params = {k: v for k, v in params.items()
                                  if k in ("patient_ref", "payer_id", "status")}
                    timed("claims list (API JSON)", lambda q=api_params: http.get(
                        "/claims", params=q, headers=api))
        finally:
            stop()
        for name, values in timings.items():
            report.add(variant=name, events=stored, claims=len(claims),
                       p50_ms=median(values), p95_ms=percentile(values, 95),
                       p99_ms=percentile(values, 99), requests=len(values))
    return report


if __name__ == "__main__":
    print(main().table())
