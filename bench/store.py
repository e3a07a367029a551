"""read and scale, which both need a big store (default 1,000,000 events):

* read  — a claim query (load the encounter from the event store and build the claim view,
  as GET /encounters/{id}/claims/{n} does) p50/p99 over random encounters of a store holding
  >= 1M events, beside the raw floor in the same run: psycopg selecting the same rows;
* scale — append throughput (ledger, group commit, 32 callers, one event per command, random
  existing encounters) on a store holding 1M events vs an almost empty one, alternating.
"""

from __future__ import annotations

import os
import random
import time

import psycopg

from bench.append import ENCOUNTERS, ROUNDS, app_for, ledger_call, run_callers, seed
from bench.bulk import fill
from bench.common import Report, fresh_database, machine, median, percentile
from ledger.views import claim_view

BIG = int(os.environ.get("BENCH_BIG_EVENTS", "1000000"))
QUERIES = int(os.environ.get("BENCH_READ_QUERIES", "300"))
CALLERS = int(os.environ.get("BENCH_SCALE_CALLERS", "32"))


def seal_filled(url: str) -> None:
    from ledger.audit.checkpoints import signing_key
    from ledger.audit.writer import CheckpointWriter
    from ledger.config import get_settings

    writer = CheckpointWriter(url, signing_key(get_settings().key_file), export_dir=None)
    try:
        writer.catch_up()
    finally:
        writer.close()


def main() -> tuple[Report, Report]:
    read = Report(f"read (claim query, {BIG:,} events in the store)")
    scale = Report("scale (append commands/s, empty store vs 1M events)")
    print(f"# machine: {machine()}")
    with fresh_database("small") as small_url, fresh_database("big") as big_url:
        small_ids = seed(small_url, ENCOUNTERS)
        big_ids = seed(big_url, ENCOUNTERS)
        app = app_for(big_url, group_commit=False)
        started = time.perf_counter()
        total, filled_ids = fill(big_url, app, BIG)
        app.close()
        # The ledger seals every batch it commits, so a store it wrote has no unsealed tail.
        # The COPY fill bypasses the ledger: seal what it wrote, as `ledger checkpoints run
        # --once` would. Left unsealed, every batch of the scale run re-read 10,001 unsealed
        # rows (the sealer's backlog check) and the 1M figure measured that, not the store.
        seal_filled(big_url)
        with psycopg.connect(big_url, autocommit=True) as conn:
            conn.execute("ANALYZE ledger_events")
            count = conn.execute("SELECT count(*) FROM ledger_events").fetchone()[0]
        bulk_ids = random.Random(7).sample(filled_ids, min(QUERIES, len(filled_ids)))
        print(f"# filled {total:,} events in {time.perf_counter() - started:.1f}s; "
              f"store holds {count:,}")

        # ---- read
        reader = app_for(big_url, group_commit=False)
        conn = psycopg.connect(big_url, autocommit=True)
        ledger_ms: list[float] = []
        raw_ms: list[float] = []
        try:
            for _ in range(ROUNDS):
                random.shuffle(bulk_ids)
                for eid in bulk_ids:
                    t = time.perf_counter()
                    enc = reader.get_encounter(eid)
                    claim_view(enc, enc.claims["BULK-1"])
                    ledger_ms.append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    conn.execute("SELECT originator_version, topic, state FROM ledger_events"
                                 " WHERE originator_id = %s ORDER BY originator_version",
                                 (eid,)).fetchall()
                    raw_ms.append((time.perf_counter() - t) * 1000)
        finally:
            conn.close()
            reader.close()
        read.add(figure="read", events=count, ledger_p50_ms=median(ledger_ms),
                 ledger_p99_ms=percentile(ledger_ms, 99), raw_p50_ms=median(raw_ms),
                 raw_p99_ms=percentile(raw_ms, 99),
                 p99_ratio=percentile(ledger_ms, 99) / percentile(raw_ms, 99),
                 queries=len(ledger_ms), target_p99_ms=10)

        # ---- scale
        small_app = app_for(small_url, group_commit=True)
        big_app = app_for(big_url, group_commit=True)
        rates: dict[str, list[float]] = {"empty": [], "big": []}
        try:
            for _ in range(ROUNDS):
                rates["empty"].append(run_callers(CALLERS, ledger_call(small_app, small_ids)))
                rates["big"].append(run_callers(CALLERS, ledger_call(big_app, big_ids)))
        finally:
            small_app.close()
            big_app.close()
        e, b = median(rates["empty"]), median(rates["big"])
        scale.add(figure="scale", callers=CALLERS, empty_store_per_s=e, big_store_per_s=b,
                  big_events=count, ratio=b / e, runs=ROUNDS, target_ratio=0.9)
    print(read.table())
    print(scale.table())
    return read, scale


if __name__ == "__main__":
    main()
