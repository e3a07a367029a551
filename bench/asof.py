"""as-of: payer balances with aging read as of a past log position beside the same read now
(p50/p95, same run, alternating), and the projection throughput with history kept vs not
(rebuild of the claims and trends projections, same run, alternating, medians).

BENCH_ASOF_EVENTS (default 1,000,000; `--quick`: 12,000) events of the randomized workload
are stored and projected (with history) first; BENCH_ASOF_READS reads per variant per round;
BENCH_ROUNDS rounds (>= 3). The throughput comparison rebuilds from the first event up to
BENCH_ASOF_REBUILD_EVENTS (default: all; `--quick`: all 12,000).
"""

from __future__ import annotations

import os
import random
import sys
import time

import psycopg

from bench.common import Report, alternate, fresh_database, machine, median, percentile
from bench.workload import run_workload
from ledger.application.service import LedgerApplication
from ledger.config import Settings
from ledger.persistence.database import eventsourcing_env
from ledger.projections import queries as q
from ledger.projections.runner import ProjectionRunner

QUICK = "--quick" in sys.argv
EVENTS = int(os.environ.get("BENCH_ASOF_EVENTS", "12000" if QUICK else "1000000"))
READS = int(os.environ.get("BENCH_ASOF_READS", "40" if QUICK else "200"))
ROUNDS = max(3, int(os.environ.get("BENCH_ROUNDS", "3")))
REBUILD = int(os.environ.get("BENCH_ASOF_REBUILD_EVENTS", "0")) or EVENTS
PAGE = 5000


def main() -> list[Report]:
    reads = Report(f"as-of payer balances with aging ({EVENTS:,} events stored)")
    cost = Report(f"projection throughput, history on vs off (claims + trends, "
                  f"{REBUILD:,} events)")
    with fresh_database("asof") as url:
        env = eventsourcing_env(url, Settings(database_url=url, cache_size=0))
        app = LedgerApplication(env=env)
        started = time.perf_counter()
        try:
            stats = run_workload(app.save, encounters=EVENTS, seed=2019, concurrency=200,
                                 max_events=EVENTS)
        finally:
            app.close()
        print(f"# filled {stats.events:,} events in {time.perf_counter() - started:.0f}s; "
              f"machine {machine()}", flush=True)
        renv = eventsourcing_env(url, Settings(database_url=url))
        runner = ProjectionRunner(renv, page_size=PAGE, max_page_size=PAGE)
        started = time.perf_counter()
        head = runner.reader.head()
        runner.catch_up(until=head)
        runner.close()
        print(f"# projected (with history) in {time.perf_counter() - started:.0f}s", flush=True)
        rng = random.Random(7)
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute("SELECT count(*) FROM payer_balances_history").fetchone()[0]

            def timed(position: int | None) -> float:
                t = time.perf_counter()
                q.payer_balances(conn, position=position)
                return time.perf_counter() - t

            samples: dict[str, list[float]] = {"current": [], "as_of_past_position": []}
            for _ in range(ROUNDS):
                for _ in range(READS):
                    samples["current"].append(timed(None))
                    samples["as_of_past_position"].append(
                        timed(rng.randint(head // 10, head - head // 10)))
        for name, values in samples.items():
            reads.add(variant=name, events=head, history_rows=rows, reads=len(values),
                      p50_ms=round(median(values) * 1000, 2),
                      p95_ms=round(percentile(values, 95) * 1000, 2),
                      max_ms=round(max(values) * 1000, 2))

        def rebuild(history: bool) -> float:
            r = ProjectionRunner(renv, ["claims", "trends"], page_size=PAGE,
                                 max_page_size=PAGE, history=history, parallel=False)
            try:
                for view in r.views.values():
                    view.reset()
                t = time.perf_counter()
                r.catch_up(until=min(head, REBUILD), stop_at=True)
                return time.perf_counter() - t
            finally:
                r.close()

        results = alternate(ROUNDS, {"history_off": lambda: rebuild(False),
                                     "history_on": lambda: rebuild(True)})
        rebuild(True)  # leave the database complete
    off = median(results["history_off"])
    for name, seconds in results.items():
        m = median(seconds)
        cost.add(variant=name, events=min(head, REBUILD), rounds=len(seconds),
                 median_s=round(m, 2), events_per_s=round(min(head, REBUILD) / m),
                 vs_history_off=round(off / m, 3))
    return [reads, cost]


if __name__ == "__main__":
    for report in main():
        print(report.table())
        print()
