"""append: ledger commands/s (one event each, random existing encounters) at 1, 8 and 32
concurrent callers, beside two baselines measured in the same run, alternating:
  * naive — the same library used naively: load the encounter, one save() per command;
  * raw   — psycopg INSERT + COMMIT of an equivalent row (same size state) per call.
All three at the same concurrency and durability (synchronous_commit as the server has it).
"""

from __future__ import annotations

import os
import random
import threading
import uuid
from typing import Any

from psycopg_pool import ConnectionPool

from bench.common import Report, alternate, fresh_database, machine, median, per_second
from ledger.application.service import LedgerApplication
from ledger.config import Settings
from ledger.persistence.database import eventsourcing_env
from tests import builders as s

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONCURRENCY = [int(c) for c in os.environ.get("BENCH_CONCURRENCY", "1,8,32").split(",")]
ENCOUNTERS = int(os.environ.get("BENCH_ENCOUNTERS", "1000"))
STATE = os.urandom(337)


def app_for(url: str, *, group_commit: bool, pool: int = 40) -> LedgerApplication:
    env = eventsourcing_env(url, Settings(database_url=url, pool_size=pool, max_overflow=0,
                                          cache_size=0))
    return LedgerApplication(env=env, group_commit=group_commit, group_commit_max_batch=512,
                             group_commit_writers=int(os.environ.get("BENCH_WRITERS", "1")))


def seed(url: str, count: int) -> list[uuid.UUID]:
    app = app_for(url, group_commit=True)
    ids: list[uuid.UUID] = []
    lock = threading.Lock()

    def make(n: int) -> None:
        for _ in range(n):
            eid = s.open_encounter(app, patient_ref="PT-B")
            s.code(app, eid, "E11.9")
            s.line(app, eid, "99213", "100.00", [1])
            with lock:
                ids.append(eid)

    threads = [threading.Thread(target=make, args=(count // 16,)) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    app.close()
    return ids


def run_callers(callers: int, call: Any) -> float:
    """Each caller loops ``call()`` for SECONDS; returns calls per second."""
    return per_second(callers, SECONDS, call)


def ledger_call(app: LedgerApplication, ids: list[uuid.UUID]):
    def call(rnd: random.Random) -> None:
        app.execute(rnd.choice(ids), "adjust_charge", actor=s.BILLER, line_no=1,
                    amount="1.00", reason="bench")
    return call


def raw_call(pool: ConnectionPool):
    def call(rnd: random.Random) -> None:
        with pool.connection() as conn:
            conn.execute("INSERT INTO bench_raw (stream, version, topic, state)"
                         " VALUES (%s, 1, 'bench:Event', %s)", (uuid.uuid4(), STATE))
    return call


def create_raw_table(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (stream uuid NOT NULL,"
                     " version bigint NOT NULL, topic text, state bytea,"
                     " id bigserial UNIQUE, PRIMARY KEY (stream, version))")


def measure(url: str, ids: list[uuid.UUID], report: Report, label: str = "append",
            concurrency: list[int] | None = None) -> dict[int, dict[str, float]]:
    create_raw_table(url)
    ledger = app_for(url, group_commit=True)
    naive = app_for(url, group_commit=False)
    out: dict[int, dict[str, float]] = {}
    try:
        for callers in concurrency or CONCURRENCY:
            pool = ConnectionPool(url, min_size=callers, max_size=callers,
                                  kwargs={"autocommit": True}, open=True)
            try:
                # each path owns half of the encounters: neither invalidates the other's
                # in-memory state between the alternating rounds (as in a deployment where the
                # ledger is the writer of its encounters)
                half = len(ids) // 2
                mine, theirs = ids[:half], ids[half:]
                results = alternate(ROUNDS, {
                    "ledger": lambda c=callers, m=mine: run_callers(c, ledger_call(ledger, m)),
                    "naive": lambda c=callers, t=theirs: run_callers(c, ledger_call(naive, t)),
                    "raw": lambda c=callers, p=pool: run_callers(c, raw_call(p)),
                })
            finally:
                pool.close()
            med = {k: median(v) for k, v in results.items()}
            out[callers] = med
            report.add(figure=label, callers=callers, ledger_per_s=med["ledger"],
                       naive_per_s=med["naive"], raw_per_s=med["raw"],
                       vs_naive=med["ledger"] / med["naive"], vs_raw=med["ledger"] / med["raw"],
                       runs=ROUNDS, seconds=SECONDS)
    finally:
        ledger.close()
        naive.close()
    return out


def main() -> Report:
    report = Report("append (commands/s, one event each)")
    print(f"# machine: {machine()}")
    with fresh_database("append") as url:
        ids = seed(url, 2 * ENCOUNTERS)
        measure(url, ids, report)
    print(report.table())
    return report


if __name__ == "__main__":
    main()
