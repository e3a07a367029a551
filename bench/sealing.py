"""sealing: append throughput with per-batch sealing ON vs OFF, same run, alternating.

Both sides are the ledger with group commit (commands on random existing encounters, one event
each), each in a database of its own on the same server (so the OFF side's unsealed events are
not the ON side's backlog); ON seals as the ledger does by default: every batch (a lone
command's or a group commit's of several encounters) is signed after its commit by the
background sealer within LEDGER_SEAL_MAX_DELAY (1 s; ``deferred_seals`` counts those
transactions, each covering every batch committed in about half the bound), and the newest
checkpoint is copied outside the database once a second; OFF is the same application with its
sealer removed. The issue's bar: sealing costs under 10 %. Knobs: BENCH_SECONDS, BENCH_ROUNDS,
BENCH_CONCURRENCY, BENCH_ENCOUNTERS, LEDGER_SEAL_MAX_DELAY (0: every batch in its
transaction). ``--quick``: 5 rounds of 1.5 s (under 3 minutes). ``--in-txn``: a
third side in the same run, sealing every batch in its transaction (max delay 0, a third
database: from the memory of the newest checkpoint, checked in the pipeline by
ledger_seal_check, no extra round trip; Ed25519), with its own ratio to OFF. ``--control``: a
second OFF side (its own database), so the run shows how far two identical sides differ on this
machine (``control_ratio``).

``--same-db``: instead, ONE application on ONE database, its sealer switched on and off
between rounds (and to max delay 0 for ``in_txn``): no difference between databases; what
an OFF round leaves unsealed is sealed before the next ON round, untimed, and what an ON
round deferred is sealed at its end (counted in its CPU time, not in its rate). On a loaded
machine two identical databases differed by up to 30 % here; this mode does not have that
spread. It also reports CPU milliseconds per command on each side (this
process's threads plus the database's server processes for that database, from /proc when
the server runs on this machine): wall-clock rates on a loaded machine move with everyone
else's work, CPU time much less.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import bench.append as append
from bench.append import (
    CONCURRENCY,
    ENCOUNTERS,
    app_for,
    ledger_call,
    run_callers,
    seed,
)
from bench.common import Report, fresh_database, machine, median


def alternate_both_ways(runs: int, variants: dict) -> dict[str, list[float]]:
    """Like bench.common.alternate, but every other round in the reverse order, so that
    neither side always runs first (the load of a shared machine drifts)."""
    results: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(runs):
        for name in (names if r % 2 == 0 else names[::-1]):
            results[name].append(variants[name]())
    return results


def _server_cpu(url: str) -> float | None:
    """CPU seconds used so far by the server processes connected to ``url``'s database (the
    server must run on this machine: /proc), or None."""
    import psycopg

    try:
        with psycopg.connect(url) as conn:
            pids = [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")]
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        return total
    except (psycopg.Error, OSError, ValueError):
        return None


def _time_sealing(app: Any) -> list[float]:
    """Thread CPU spent on sealing, added up in the returned one-element list: the writer's
    part of a batch (``_seal_batch``: building the leaf tuples, or the whole in-transaction
    seal) and its hand-over (``defer``), and the background sealer's ``seal_deferred``. Its
    server side is not in it (see the README: ~15 µs per event)."""
    total = [0.0]
    lock = threading.Lock()

    def timed(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                with lock:
                    total[0] += spent

        setattr(owner, name, wrapper)

    timed(app.recorder, "_seal_batch")
    timed(app.sealer, "defer")
    timed(app.sealer, "seal_deferred")
    return total


def same_db(report: Report, rounds: int, seconds: float, in_txn: bool) -> Report:
    with fresh_database("sealing_same") as url:
        ids = seed(url, ENCOUNTERS)
        app = app_for(url, group_commit=True)
        sealer = app.sealer
        assert sealer is not None and sealer.defers, "LEDGER_SEAL_PER_BATCH / MAX_DELAY off"
        delay = sealer.max_delay
        run_callers(8, ledger_call(app, ids))  # (untimed) the writer's cache warm for both

        cpu: dict[str, list[float]] = {}
        sealing_cpu = _time_sealing(app)  # thread CPU seconds spent on sealing, this round
        seal_us: dict[str, list[float]] = {}

        def side(name: str, callers: int, seal: bool, max_delay: float) -> float:
            sealer._seal_from_database()  # (untimed) what the previous OFF round left unsealed
            app.recorder.sealer = sealer if seal else None
            sealer.max_delay = max_delay
            sealing_cpu[0] = 0.0
            server, client = _server_cpu(url), time.process_time()
            rate = run_callers(callers, ledger_call(app, ids))
            if seal:
                sealer.seal_deferred()  # the round's tail: its CPU counted with the round
            used = time.process_time() - client
            after = _server_cpu(url)
            if server is not None and after is not None:
                used += max(0.0, after - server)
            commands = max(1.0, rate * append.SECONDS)
            cpu.setdefault(name, []).append(1000 * used / commands)
            seal_us.setdefault(name, []).append(1e6 * sealing_cpu[0] / commands)
            return rate

        try:
            for callers in CONCURRENCY:
                counts = (sealer.fast_seals, sealer.read_seals, sealer.deferred_seals)
                cpu.clear()
                seal_us.clear()
                sides = {"on": lambda c=callers: side("on", c, True, delay),
                         "off": lambda c=callers: side("off", c, False, delay)}
                if in_txn:
                    sides["in_txn"] = lambda c=callers: side("in_txn", c, True, 0.0)
                results = alternate_both_ways(rounds, sides)
                med = {k: median(v) for k, v in results.items()}
                extra = ({"in_txn_per_s": med["in_txn"], "in_txn_ratio": med["in_txn"]
                          / med["off"]} if in_txn else {})
                extra.update({f"cpu_ms_{k}": median(v) for k, v in cpu.items()})
                extra.update({f"seal_us_{k}": median(v) for k, v in seal_us.items()
                              if k != "off"})
                report.add(figure="sealing_same_db", callers=callers, on_per_s=med["on"],
                           off_per_s=med["off"], ratio=med["on"] / med["off"],
                           cost=1 - med["on"] / med["off"], runs=rounds, seconds=seconds,
                           in_txn_seals=sealer.fast_seals + sealer.read_seals - counts[0]
                           - counts[1], deferred_seals=sealer.deferred_seals - counts[2],
                           max_delay=delay, **extra)
        finally:
            app.recorder.sealer = sealer
            sealer.max_delay = delay
            app.close()
    print(report.table())
    return report


def main(quick: bool = False, in_txn: bool = False, control: bool = False,
         same: bool = False) -> Report:
    if quick:
        append.ROUNDS, append.SECONDS = 5, 1.5
    rounds, seconds = append.ROUNDS, append.SECONDS
    report = Report("sealing (commands/s, one event each, sealing on vs off, same run)")
    print(f"# machine: {machine()}")
    if same:
        return same_db(report, rounds, seconds, in_txn)
    with ExitStack() as stack:
        on_url = stack.enter_context(fresh_database("sealing_on"))
        off_url = stack.enter_context(fresh_database("sealing_off"))
        txn_url = stack.enter_context(fresh_database("sealing_txn")) if in_txn else ""
        ctl_url = stack.enter_context(fresh_database("sealing_ctl")) if control else ""
        on_ids = seed(on_url, ENCOUNTERS)
        off_ids = seed(off_url, ENCOUNTERS)
        txn_ids = seed(txn_url, ENCOUNTERS) if in_txn else []
        ctl_ids = seed(ctl_url, ENCOUNTERS) if control else []
        sealed = app_for(on_url, group_commit=True)
        plain = app_for(off_url, group_commit=True)
        assert sealed.sealer is not None, "LEDGER_SEAL_PER_BATCH is off"
        plain.recorder.sealer = None  # the same application, without the seal
        txn = app_for(txn_url, group_commit=True) if in_txn else None
        if txn is not None:
            txn.sealer.max_delay = 0.0  # every batch sealed in its transaction
        ctl = app_for(ctl_url, group_commit=True) if control else None
        if ctl is not None:
            ctl.recorder.sealer = None
        try:
            sealer = sealed.sealer
            for callers in CONCURRENCY:
                before = sealer.state.sealed_size
                counts = (sealer.fast_seals, sealer.read_seals, sealer.deferred_seals)
                sides = {
                    "on": lambda c=callers: run_callers(c, ledger_call(sealed, on_ids)),
                    "off": lambda c=callers: run_callers(c, ledger_call(plain, off_ids)),
                }
                if txn is not None:
                    sides["in_txn"] = lambda c=callers: run_callers(c, ledger_call(txn, txn_ids))
                if ctl is not None:
                    sides["off_again"] = lambda c=callers: run_callers(c, ledger_call(ctl,
                                                                                  ctl_ids))
                results = alternate_both_ways(rounds, sides)
                med = {k: median(v) for k, v in results.items()}
                extra = ({"in_txn_per_s": med["in_txn"], "in_txn_ratio": med["in_txn"]
                          / med["off"]} if txn is not None else {})
                if ctl is not None:
                    extra["control_ratio"] = med["off_again"] / med["off"]
                report.add(figure="sealing", callers=callers, on_per_s=med["on"],
                           off_per_s=med["off"], ratio=med["on"] / med["off"],
                           cost=1 - med["on"] / med["off"], runs=rounds, seconds=seconds,
                           sealed_events=sealer.state.sealed_size - before,
                           in_txn_seals=sealer.fast_seals + sealer.read_seals - counts[0]
                           - counts[1], deferred_seals=sealer.deferred_seals - counts[2],
                           max_delay=sealer.max_delay if sealer.defers else 0.0, **extra)
        finally:
            sealed.close()
            plain.close()
            for other in (txn, ctl):
                if other is not None:
                    other.close()
    print(report.table())
    return report


if __name__ == "__main__":
    os.environ.setdefault("LEDGER_SEAL_PER_BATCH", "1")
    args = sys.argv[1:]
    main(quick="--quick" in args, in_txn="--in-txn" in args, control="--control" in args,
         same="--same-db" in args)
