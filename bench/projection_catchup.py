"""projections: how fast every projection is rebuilt from the first event (catch-up), beside
baselines measured in the same run, alternating, medians of BENCH_ROUNDS (>= 3) rounds:

  * read_decode  — the runner's own reader going through the same events page by page and
                   decoding each into a domain event, projecting nothing (the baseline the
                   issue asks for: what reading costs);
  * read_raw     — the same pages fetched without decoding (the floor: PostgreSQL + psycopg);
  * rebuild_all  — reset claims, audit and trends, then catch up from the first event:
                   read + decode once per page, apply to the three views, one transaction per
                   view per page, tracking included;
  * rebuild_<name> — one projection alone (BENCH_PROJECTION_SINGLE=1, default on).

The store is filled first with BENCH_PROJECTION_EVENTS (default 200,000) events of the
randomized workload (every event type; saved many encounters per transaction).
"""

from __future__ import annotations

import os
import time

from bench.common import Report, alternate, fill, fresh_database, machine, median
from ledger.config import Settings
from ledger.persistence.database import eventsourcing_env
from ledger.projections.runner import VIEWS, ProjectionRunner

EVENTS = int(os.environ.get("BENCH_PROJECTION_EVENTS", "200000"))
ROUNDS = max(3, int(os.environ.get("BENCH_ROUNDS", "3")))
PAGE = int(os.environ.get("BENCH_PROJECTION_PAGE", "10000"))
SINGLE = os.environ.get("BENCH_PROJECTION_SINGLE", "1") not in ("0", "n", "no")


def main() -> Report:
    report = Report(f"projection catch-up (events/s, {EVENTS:,} events, page {PAGE})")
    with fresh_database("projections") as url:
        events, fill_s = fill(url, EVENTS, seed=2026)
        print(f"# filled {events:,} events in {fill_s:.1f}s; machine {machine()}", flush=True)
        env = eventsourcing_env(url, Settings(database_url=url))
        runner = ProjectionRunner(env, page_size=PAGE)
        reader = runner.reader
        head = reader.head()

        def read(decode: bool) -> float:
            after, seen = 0, 0
            started = time.perf_counter()
            while True:
                rows = reader.read_rows(after, PAGE)
                if not rows:
                    break
                if decode:
                    reader.decode(rows)
                seen += len(rows)
                after = rows[-1][0]
            elapsed = time.perf_counter() - started
            assert seen == events, (seen, events)
            return elapsed

        def rebuild(names: list[str]) -> float:
            r = ProjectionRunner(env, names, page_size=PAGE, max_page_size=PAGE)
            try:
                for view in r.views.values():
                    view.reset()
                started = time.perf_counter()
                positions = r.catch_up(until=head)
                elapsed = time.perf_counter() - started
            finally:
                r.close()
            assert min(positions.values()) == head, positions
            return elapsed

        variants = {"read_raw": lambda: read(False), "read_decode": lambda: read(True),
                    "rebuild_all": lambda: rebuild(list(VIEWS))}
        if SINGLE:
            for name in VIEWS:
                variants[f"rebuild_{name}"] = lambda name=name: rebuild([name])
        results = alternate(ROUNDS, variants)
        runner.close()
    base = median(results["read_decode"])
    for name, seconds in results.items():
        m = median(seconds)
        report.add(variant=name, events=events, rounds=len(seconds), median_s=round(m, 2),
                   min_s=round(min(seconds), 2), max_s=round(max(seconds), 2),
                   events_per_s=round(events / m), vs_read_decode=round(base / m, 3))
    return report


if __name__ == "__main__":
    r = main()
    print(r.table())
