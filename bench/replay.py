"""replay: load an encounter with 1,000 events — latest and at version 500 — through the
ledger (snapshots every N events), beside baselines in the same run, alternating:
  * no_snapshots — the same library replaying every event (no snapshot store);
  * raw_select   — psycopg fetching the same rows (no decoding, no replay): the floor.
"""

from __future__ import annotations

import os
import time

import psycopg

from bench.common import Report, fresh_database, machine, median, percentile
from ledger.application.service import LedgerApplication
from ledger.config import Settings
from ledger.persistence.database import eventsourcing_env
from tests import builders as s

EVENTS = int(os.environ.get("BENCH_REPLAY_EVENTS", "1000"))
LOADS = int(os.environ.get("BENCH_REPLAY_LOADS", "50"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def make_app(url: str, snapshots: bool) -> LedgerApplication:
    env = eventsourcing_env(url, Settings(database_url=url, cache_size=0))
    if not snapshots:
        env["IS_SNAPSHOTTING_ENABLED"] = "n"
    app = LedgerApplication(env=env)
    if not snapshots:
        app.snapshots = None
        app.repository.snapshot_store = None
    return app


def build(url: str) -> object:
    app = make_app(url, snapshots=True)
    eid = s.open_encounter(app)
    s.code(app, eid, "E11.9")
    s.line(app, eid, "99213", "100.00", [1])
    while app.get_encounter(eid).version < EVENTS:
        enc = app.get_encounter(eid)
        for _ in range(min(100, EVENTS - enc.version)):
            enc.adjust_charge(1, "1.00", actor=s.BILLER, reason="bench")
        app.save(enc)
    app.close()
    return eid


def timed_loads(fn) -> list[float]:
    out = []
    for _ in range(LOADS):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> Report:
    report = Report(f"replay (ms to load an encounter of {EVENTS} events)")
    print(f"# machine: {machine()}")
    with fresh_database("replay") as url:
        eid = build(url)
        ledger = make_app(url, snapshots=True)
        plain = make_app(url, snapshots=False)
        conn = psycopg.connect(url)
        try:
            assert ledger.get_encounter(eid).version == EVENTS
            for label, version in (("latest", None), ("v500", EVENTS // 2)):
                samples: dict[str, list[float]] = {"ledger": [], "no_snapshots": [],
                                                   "raw_select": []}

                def raw(v=version) -> None:
                    conn.execute("SELECT originator_version, topic, state FROM ledger_events"
                                 " WHERE originator_id = %s AND originator_version <= %s"
                                 " ORDER BY originator_version", (eid, v or EVENTS)).fetchall()

                for _ in range(ROUNDS):  # alternating variants, round by round
                    samples["ledger"] += timed_loads(
                        lambda v=version: ledger.get_encounter(eid, version=v))
                    samples["no_snapshots"] += timed_loads(
                        lambda v=version: plain.get_encounter(eid, version=v))
                    samples["raw_select"] += timed_loads(raw)
                report.add(figure="replay", load=label,
                           ledger_p50_ms=median(samples["ledger"]),
                           ledger_p99_ms=percentile(samples["ledger"], 99),
                           no_snapshots_p50_ms=median(samples["no_snapshots"]),
                           raw_select_p50_ms=median(samples["raw_select"]),
                           vs_no_snapshots=median(samples["no_snapshots"]) /
                           median(samples["ledger"]),
                           loads=LOADS * ROUNDS, target_ms=20)
        finally:
            conn.close()
            ledger.close()
            plain.close()
    print(report.table())
    return report


if __name__ == "__main__":
    main()
