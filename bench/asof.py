"""as-of: payer balances with aging read as of a past log position beside the same read now
(p50/p95, same run, alternating), and the projection throughput with history kept vs not
(rebuild of the claims and trends projections, same run, alternating, medians).

    python -m bench.asof --events 1000000      # or BENCH_ASOF_EVENTS=1000000
    python -m bench.asof --quick               # 12,000 events, < 3 min

The store (``--events`` events of the randomized workload, projected with history) is kept
between runs: an embedded PostgreSQL under ``BENCH_ASOF_STORE`` (default
/tmp/ledger-bench-asof; or the server of LEDGER_DATABASE_URL), one database per size,
``ledger_asof_store_<events>``. A later run with the same size reuses it (filling and
projecting 1,000,000 events takes long on a loaded machine); a store left incomplete (a run
interrupted) is completed where it stopped: the fill is redone only when the database holds
fewer events than asked, projections resume from their tracked position. ``--fresh`` drops it.

BENCH_ASOF_READS reads per variant per round; BENCH_ROUNDS rounds (>= 3). The throughput
comparison rebuilds, per round, the claims and trends projections of a store of
BENCH_ASOF_REBUILD_EVENTS events (default: the same store up to 30,000 events, else a kept
store of 30,000) with history and without.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

from bench.common import Report, alternate, fill, machine, median, percentile
from ledger.config import Settings
from ledger.persistence.database import eventsourcing_env
from ledger.projections import queries as q
from ledger.projections.runner import ProjectionRunner

PAGE = 5000
STORE = Path(os.environ.get("BENCH_ASOF_STORE", "/tmp/ledger-bench-asof"))


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.asof", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="12,000 events, fewer reads")
    p.add_argument("--events", type=int, default=None,
                   help="events in the store (default BENCH_ASOF_EVENTS or 1,000,000)")
    p.add_argument("--rebuild-events", type=int, default=None,
                   help="events rebuilt per round for history on vs off (default: all, at "
                        "most 30,000; BENCH_ASOF_REBUILD_EVENTS)")
    p.add_argument("--fresh", action="store_true", help="drop a kept store of this size first")
    return p.parse_args(argv)


def _server() -> str:
    return os.environ.get("LEDGER_DATABASE_URL") or _embedded()


def _embedded() -> str:
    from ledger.persistence import embedded

    return embedded.start(STORE)


def store(events: int, fresh: bool = False) -> str:
    """The URL of a migrated database holding ``events`` events, projected (with history)."""
    from ledger.persistence.migrate import migrate

    server = _server()
    name = f"ledger_asof_store_{events}"
    with psycopg.connect(server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)
                              ).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunparse(urlparse(server)._replace(path="/" + name))
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        stored = conn.execute("SELECT count(*) FROM ledger_events").fetchone()[0]
    if stored < events:
        if stored:  # an interrupted fill: start again (the workload is one seeded run)
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
            migrate(url)
        filled, seconds = fill(url, events, seed=2019)
        print(f"# filled {filled:,} events in {seconds:.0f}s", flush=True)
    else:
        print(f"# reusing the store {name} ({stored:,} events)", flush=True)
    renv = eventsourcing_env(url, Settings(database_url=url))
    runner = ProjectionRunner(renv, page_size=PAGE, max_page_size=PAGE)
    started = time.perf_counter()
    try:
        head = runner.reader.head()
        runner.catch_up(until=head)
    finally:
        runner.close()
    print(f"# projections (with history) at the head {head:,} after "
          f"{time.perf_counter() - started:.0f}s", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return url


def main(argv: list[str] | None = None) -> list[Report]:
    args = _args(sys.argv[1:] if argv is None else argv)
    events = args.events or int(os.environ.get("BENCH_ASOF_EVENTS",
                                               "12000" if args.quick else "1000000"))
    reads_per_round = int(os.environ.get("BENCH_ASOF_READS", "40" if args.quick else "200"))
    rounds = max(3, int(os.environ.get("BENCH_ROUNDS", "3")))
    rebuild_upto = args.rebuild_events or int(os.environ.get("BENCH_ASOF_REBUILD_EVENTS", "0")
                                              ) or min(events, 30000)
    print(f"# machine {machine()}", flush=True)
    url = store(events, fresh=args.fresh)
    reads = Report(f"as-of payer balances with aging ({events:,} events stored)")
    rng = random.Random(7)
    with psycopg.connect(url, autocommit=True) as conn:
        head = conn.execute("SELECT max(notification_id) FROM ledger_events").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM payer_balances_history").fetchone()[0]

        def timed(position: int | None) -> float:
            t = time.perf_counter()
            q.payer_balances(conn, position=position)
            return time.perf_counter() - t

        samples: dict[str, list[float]] = {"current": [], "as_of_past_position": []}
        for _ in range(rounds):
            for _ in range(reads_per_round):
                samples["current"].append(timed(None))
                samples["as_of_past_position"].append(
                    timed(rng.randint(head // 10, head - head // 10)))
    for name, values in samples.items():
        reads.add(variant=name, events=head, history_rows=rows, reads=len(values),
                  p50_ms=round(median(values) * 1000, 2),
                  p95_ms=round(percentile(values, 95) * 1000, 2),
                  max_ms=round(max(values) * 1000, 2), target_p95_ms=500)

    # history on vs off: rebuilds of a store of ``rebuild_upto`` events (kept too), so the
    # big store stays projected at its head
    small = url if rebuild_upto >= events else store(rebuild_upto)
    renv = eventsourcing_env(small, Settings(database_url=small))
    with psycopg.connect(small, autocommit=True) as conn:
        upto = conn.execute("SELECT max(notification_id) FROM ledger_events").fetchone()[0]
    cost = Report(f"projection throughput, history on vs off (claims + trends rebuilt, "
                  f"{upto:,} events)")

    def rebuild(history: bool) -> float:
        r = ProjectionRunner(renv, ["claims", "trends"], page_size=PAGE,
                             max_page_size=PAGE, history=history, parallel=False)
        try:
            for view in r.views.values():
                view.reset()
            t = time.perf_counter()
            r.catch_up(until=upto, stop_at=True)
            return time.perf_counter() - t
        finally:
            r.close()

    try:
        results = alternate(rounds, {"history_off": lambda: rebuild(False),
                                     "history_on": lambda: rebuild(True)})
    finally:
        rebuild(True)  # leave the store complete (history included) for the next run
    off = median(results["history_off"])
    for name, seconds in results.items():
        m = median(seconds)
        cost.add(variant=name, events=upto, rounds=len(seconds), median_s=round(m, 2),
                 events_per_s=round(upto / m), vs_history_off=round(off / m, 3),
                 target_vs_off=0.8)
    return [reads, cost]


if __name__ == "__main__":
    for report in main():
        print(report.table())
        print()
