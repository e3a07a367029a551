"""chain: what the per-encounter hash chain costs on the append path.

Variants in one database, measured in the same run, alternating, medians of ROUNDS:
  * chain              — the ledger as shipped (LedgerRecorder: hash chain; the previous hash
                         from this process's memory of what it committed, else read in the
                         insert's transaction; EXCLUSIVE lock via CALL ledger_events_take_lock());
  * chain, no memory   — the same, but every save reads the previous hashes in the transaction;
  * no chain (library) — the library's PostgresApplicationRecorder (composite-row insert, LOCK
                         TABLE) on an identical table: the ledger without issue 8;
  * no chain (arrays)  — the chained recorder's insert statement (scalar arrays, binary) without
                         the chain, to separate the chain from the cheaper parameter encoding.
Cases: recorder inserts continuing existing encounters (1 event per transaction; 100 events
of 100 encounters per transaction), and ledger commands (load + command + save) at 1 caller
and at 8 callers with group commit. Target: the chain costs under 10 % (chain vs library).

Also: the recorder cases with the variants taking turns transaction by transaction (median
latency of each; the most robust comparison on a busy machine). Reported per variant: the
median rate, and the median of the per-round ratios to the baselines
(each round runs every variant back to back, so the ratio cancels most of a shared machine's
drift). Knobs: BENCH_CHAIN_SECONDS (per measurement, 1), BENCH_CHAIN_ROUNDS (7),
BENCH_CHAIN_STREAMS, BENCH_CHAIN_ENCOUNTERS.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from bench.common import Report, fresh_database, machine, median, per_second
from ledger.application.service import LedgerApplication
from ledger.config import Settings
from ledger.domain.errors import ConcurrencyConflict, LedgerError
from ledger.persistence.database import eventsourcing_env
from ledger.persistence.recorder import LedgerRecorder
from tests import builders as s

SECONDS = float(os.environ.get("BENCH_CHAIN_SECONDS", "1"))
ROUNDS = int(os.environ.get("BENCH_CHAIN_ROUNDS", "7"))
STREAMS = int(os.environ.get("BENCH_CHAIN_STREAMS", "2000"))
ENCOUNTERS = int(os.environ.get("BENCH_CHAIN_ENCOUNTERS", "400"))
INTERLEAVED_CALLS = int(os.environ.get("BENCH_CHAIN_INTERLEAVED", "2000"))
STATE = os.urandom(337)
TOPIC = "ledger.domain.encounter:Encounter.ServiceLineAdded"


class NoChainApp(LedgerApplication):
    name = "nochain"


class ArraysApp(LedgerApplication):
    name = "arrays"


class UncachedLedgerRecorder(LedgerRecorder):
    chain_cache_size = 0


class ArraysRecorder(PostgresApplicationRecorder):
    """The chained recorder's insert statement, minus the chain."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrays_insert = SQL(
            "INSERT INTO {0}.{1} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id").format(Identifier(self.datastore.schema),
                                                Identifier(self.events_table_name))

    def _insert_stored_events(self, curs: Any, stored_events: Any, **kwargs: Any) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(self.arrays_insert, ([e.originator_id for e in stored_events],
                                          [e.originator_version for e in stored_events],
                                          [e.topic for e in stored_events],
                                          [e.state for e in stored_events]))


VARIANTS: dict[str, tuple[type[LedgerApplication], str | None]] = {
    "chain": (LedgerApplication, None),
    "chain, no memory": (LedgerApplication, "bench.chain:UncachedLedgerRecorder"),
    "no chain (library)": (NoChainApp, "eventsourcing.postgres:PostgresApplicationRecorder"),
    "no chain (arrays)": (ArraysApp, "bench.chain:ArraysRecorder"),
}
BASELINE = "no chain (library)"


def make_app(url: str, variant: str, *, group_commit: bool = False) -> LedgerApplication:
    cls, recorder = VARIANTS[variant]
    env = eventsourcing_env(url, Settings(database_url=url, pool_size=12, max_overflow=0,
                                          cache_size=0))
    if recorder:
        env = {**env, "APPLICATION_RECORDER_TOPIC": recorder,
               "CREATE_TABLE": "n" if cls is LedgerApplication else "y"}
    return cls(env=env, group_commit=group_commit)


class Streams:
    """Synthetic streams appended to through the recorder (state: 337 random bytes)."""

    def __init__(self, app: LedgerApplication, count: int) -> None:
        self.app = app
        self.versions = {uuid.uuid4(): 1 for _ in range(count)}
        ids = list(self.versions)
        for i in range(0, len(ids), 500):
            app.recorder.insert_events([StoredEvent(oid, 1, TOPIC, STATE)
                                        for oid in ids[i:i + 500]])
        self.ids = ids

    def append(self, rnd: random.Random, batch: int) -> int:
        chosen = rnd.sample(self.ids, batch)
        events = []
        for oid in chosen:
            v = self.versions[oid] = self.versions[oid] + 1
            events.append(StoredEvent(oid, v, TOPIC, STATE))
        self.app.recorder.insert_events(events)
        return batch


def timed(callers: int, call: Any) -> float:
    """Events (or commands) per second over SECONDS with ``callers`` threads."""
    return per_second(callers, SECONDS, call, seed=lambda i: i * 7919 + time.time_ns())


def command(app: LedgerApplication, ids: list[uuid.UUID]) -> Any:
    def call(rnd: random.Random) -> int:
        try:
            app.execute(rnd.choice(ids), "add_service_line", actor=s.CODER_A,
                        procedure_code="99213", charge="10.00", pointers=[], units=1,
                        modifiers=None, rendering_npi=s.NPI)
        except ConcurrencyConflict:  # two callers on one encounter: the loser retries
            return 0
        except LedgerError:  # a domain refusal is not an append: count nothing
            return 0
        return 1
    return call


def appender(st: Streams, batch: int) -> Any:
    return lambda rnd: st.append(rnd, batch)


def interleaved(streams: dict[str, Streams], batch: int, calls: int) -> dict[str, list[float]]:
    """Latency (seconds) of each transaction, the variants taking turns call by call, so
    that every variant sees the same moments of a noisy machine."""
    rnd = random.Random(batch)
    out: dict[str, list[float]] = {k: [] for k in streams}
    order = list(streams)
    for i in range(calls):
        for k in (order if i % 2 == 0 else reversed(order)):
            t = time.perf_counter()
            streams[k].append(rnd, batch)
            out[k].append(time.perf_counter() - t)
    return out


def main() -> Report:
    report = Report("chain: append throughput with and without the hash chain")
    info = machine()
    with fresh_database("chain") as url:
        apps = {k: make_app(url, k) for k in VARIANTS}
        streams = {k: Streams(a, STREAMS) for k, a in apps.items()}
        grouped = {k: make_app(url, k, group_commit=True) for k in VARIANTS}

        def fresh(k: str) -> list[uuid.UUID]:  # new encounters per case: none grows too long
            return [s.open_encounter(apps[k]) for _ in range(ENCOUNTERS)]

        cases = [
            ("recorder, 1 event/transaction", 1,
             {k: appender(st, 1) for k, st in streams.items()}),
            ("recorder, 100 events of 100 encounters/transaction", 1,
             {k: appender(st, 100) for k, st in streams.items()}),
            ("command (load+execute+save), 1 caller", 1,
             {k: command(a, fresh(k)) for k, a in apps.items()}),
            ("command, 8 callers, group commit", 8,
             {k: command(a, fresh(k)) for k, a in grouped.items()}),
        ]
        for label, callers, variants in cases:
            results: dict[str, list[float]] = {k: [] for k in variants}
            for r in range(ROUNDS):
                order = list(variants) if r % 2 == 0 else list(reversed(variants))
                for k in order:
                    results[k].append(timed(callers, variants[k]))
            base = median(results[BASELINE])
            for k in variants:
                rate = median(results[k])
                # Paired: each round measures every variant back to back, so the per-round
                # ratio cancels the drift of a shared, noisy machine better than the medians.
                paired = median([x / b for x, b in zip(results[k], results[BASELINE],
                                                       strict=True) if b]) or 1.0
                arrays = median([x / b for x, b in zip(results[k], results["no chain (arrays)"],
                                                       strict=True) if b]) or 1.0
                report.add(case=label, callers=callers, variant=k, per_s=round(rate),
                           vs_library_pct=round(100 * (paired - 1), 1),
                           vs_arrays_pct=round(100 * (arrays - 1), 1),
                           median_vs_library_pct=round(100 * (rate / base - 1), 1)
                           if base else None,
                           runs=[round(x) for x in results[k]], seconds=SECONDS,
                           postgres=info.get("postgres"), fsync=info.get("fsync"),
                           cores=info.get("cores"))
        for batch, calls in ((1, INTERLEAVED_CALLS), (100, INTERLEAVED_CALLS // 10)):
            lat = interleaved(streams, batch, calls)
            base = median(lat[BASELINE])
            arrays = median(lat["no chain (arrays)"])
            for k, values in lat.items():
                m = median(values)
                report.add(case=f"interleaved per transaction, {batch} event(s)/transaction",
                           callers=1, variant=k, per_s=round(batch / m),
                           vs_library_pct=round(100 * (base / m - 1), 1),
                           vs_arrays_pct=round(100 * (arrays / m - 1), 1),
                           median_ms=round(m * 1000, 3),
                           p99_ms=round(sorted(values)[int(len(values) * 0.99) - 1] * 1000, 3),
                           transactions=len(values), postgres=info.get("postgres"),
                           fsync=info.get("fsync"), cores=info.get("cores"))
        for a in (*apps.values(), *grouped.values()):
            a.close()
    print(report.table())
    return report


if __name__ == "__main__":
    main()
