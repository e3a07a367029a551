"""verify: `ledger verify` over a log of BENCH_VERIFY_EVENTS (default 200,000) events.

The log: BENCH_VERIFY_ENCOUNTERS encounters, interleaved, written through the ledger's chained
recorder in transactions of 1,000 events (state: 337 random bytes, the size used by the other
benchmarks), then sealed by the checkpoint job (one checkpoint per 100,000 events).

Measured in the same run, alternating, medians of ROUNDS:
  * verify            — full verification (every chain, the Merkle tree against every signed
                        checkpoint and its exported copy, the leaf record);
  * scan (baseline)   — the floor: the same rows read into Python in log order, no checking;
  * verify --encounter — one encounter (median latency over 200 random encounters).
Also reported: the checkpoint job's sealing rate.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from eventsourcing.persistence import StoredEvent

from bench.common import Report, fresh_database, machine, median
from ledger.application.service import LedgerApplication
from ledger.audit.checkpoints import generate_key
from ledger.audit.verify import verify
from ledger.audit.writer import CheckpointWriter
from ledger.config import Settings
from ledger.persistence.database import eventsourcing_env

EVENTS = int(os.environ.get("BENCH_VERIFY_EVENTS", "200000"))
ENCOUNTERS = int(os.environ.get("BENCH_VERIFY_ENCOUNTERS", "20000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
STATE = os.urandom(337)
TOPIC = "ledger.domain.encounter:Encounter.ServiceLineAdded"


def build_log(url: str) -> tuple[list[uuid.UUID], float]:
    env = eventsourcing_env(url, Settings(database_url=url, cache_size=0))
    app = LedgerApplication(env=env)
    ids = [uuid.uuid4() for _ in range(ENCOUNTERS)]
    versions = dict.fromkeys(ids, 0)
    rnd = random.Random(8)
    started = time.perf_counter()
    written = 0
    while written < EVENTS:
        batch = []
        for oid in rnd.sample(ids, min(1000, EVENTS - written, len(ids))):
            versions[oid] += 1
            batch.append(StoredEvent(oid, versions[oid], TOPIC, STATE))
        app.recorder.insert_events(batch)
        written += len(batch)
    rate = written / (time.perf_counter() - started)
    app.close()
    return [i for i in ids if versions[i]], rate


def scan(url: str) -> float:
    started = time.perf_counter()
    n = 0
    with psycopg.connect(url) as conn, conn.transaction(), \
            conn.cursor(name="scan", binary=True) as cur:
        cur.execute("SELECT notification_id, uuid_send(originator_id), originator_version, "
                    "topic, state, chain_hash FROM ledger_events ORDER BY notification_id")
        while batch := cur.fetchmany(5000):
            n += len(batch)
    return n / (time.perf_counter() - started)


def main() -> Report:
    report = Report("verify: ledger verify over the whole log")
    info = machine()
    with fresh_database("verify") as url, tempfile.TemporaryDirectory() as tmp:
        ids, append_rate = build_log(url)
        key = generate_key(Path(tmp) / "key.pem")
        writer = CheckpointWriter(url, key, export_dir=Path(tmp) / "cp", max_leaves=100_000)
        started = time.perf_counter()
        sealed = writer.catch_up()
        seal_seconds = time.perf_counter() - started
        writer.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE ledger_events")
            conn.execute("VACUUM ANALYZE ledger_audit_leaves")
        results: dict[str, list[float]] = {"verify": [], "scan": []}
        reports = []
        for r in range(ROUNDS):
            for k in (["verify", "scan"] if r % 2 == 0 else ["scan", "verify"]):
                if k == "verify":
                    rep = verify(url, public_key=key.public_key(), export_dir=Path(tmp) / "cp")
                    assert rep.ok, rep.problems[:3]
                    reports.append(rep)
                    results[k].append(rep.events_per_second)
                else:
                    results[k].append(scan(url))
        rnd = random.Random(3)
        latencies = []
        for oid in rnd.sample(ids, 200):
            t = time.perf_counter()
            rep = verify(url, encounter=oid, public_key=key.public_key(),
                         export_dir=Path(tmp) / "cp")
            latencies.append((time.perf_counter() - t) * 1000)
            assert rep.ok
        events = reports[-1].events
        common = {"events": events, "encounters": len(ids), "checkpoints": len(sealed),
                  "postgres": info.get("postgres"), "cores": info.get("cores")}
        v, b = median(results["verify"]), median(results["scan"])
        report.add(figure="ledger verify (full)", events_per_s=round(v),
                   seconds=round(events / v, 2), vs_scan_pct=round(100 * v / b, 1),
                   runs=[round(x) for x in results["verify"]], **common)
        report.add(figure="scan only (baseline)", events_per_s=round(b),
                   seconds=round(events / b, 2), runs=[round(x) for x in results["scan"]],
                   **common)
        report.add(figure="ledger verify --encounter", median_ms=round(median(latencies), 2),
                   p99_ms=round(sorted(latencies)[int(len(latencies) * 0.99) - 1], 2),
                   mean_ms=round(statistics.mean(latencies), 2), **common)
        report.add(figure="checkpoint job (sealing)", events_per_s=round(events / seal_seconds),
                   seconds=round(seal_seconds, 2), **common)
        report.add(figure="building the log (chained recorder, 1,000 events/transaction)",
                   events_per_s=round(append_rate), **common)
    print(report.table())
    return report


if __name__ == "__main__":
    main()
