"""The failover run (issue 20, item 3): a primary and a synchronous streaming standby on
loopback (the embedded package's initdb, pg_basebackup, pg_ctl); a real ``ledger serve`` with
the multi-host URL ``postgresql://…@127.0.0.1:A,127.0.0.1:B/db?target_session_attrs=read-write``;
12 writers send keyed commands; the run kills -9 the primary (postmaster and backends), promotes
the standby, and every writer retries its unacknowledged request with its Idempotency-Key until
the service, on its own, has found the new primary. Then, on the new primary: every
acknowledged write present exactly once, versions contiguous, ``ledger verify`` and
``ledger projections verify`` clean. Prints the counts; exit status 1 on any anomaly.

    python -m tests.faults.failover_run                 # one failover
    python -m tests.faults.failover_run --before 10 --after 10 --writers 12
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from tests.faults.kill_run import ROOT, Api, Request, Writer, _cli, _history


def run(writers: int, before: float, after: float, run_dir: Path) -> dict[str, Any]:
    from ledger.persistence.migrate import migrate
    from tests.api.conftest import provision, token_for
    from tests.faults.replication import Cluster

    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    started = time.monotonic()
    primary = Cluster.primary(run_dir / "a")
    standby: Cluster | None = None
    api: Api | None = None
    stop = threading.Event()
    try:
        primary.create_database("faults")
        migrate(primary.url("faults"))
        provision(primary.url("faults"))
        standby = primary.standby(run_dir / "b", synchronous=True)
        url = (f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}"
               f"/faults?target_session_attrs=read-write")
        api = Api(run_dir, url)
        api.start()
        requests: list[Request] = []
        lock = threading.Lock()
        deadline = time.monotonic() + before + after + 90
        pool = [Writer(i, api.base, token_for("coder-a"), stop, deadline, requests, lock)
                for i in range(writers)]
        for w in pool:
            w.start()
        time.sleep(before)
        warm = time.monotonic() + 30  # and until the writers are in full swing
        while sum(r.acknowledged for r in requests) < 10 * writers and time.monotonic() < warm:
            time.sleep(0.2)
        acked_before = sum(r.acknowledged for r in requests)
        primary.kill9()
        killed_at = time.monotonic()
        print(f"  {killed_at - started:6.1f}s kill -9 primary ({acked_before} acknowledged)",
              flush=True)
        time.sleep(0.5)
        standby.promote()
        print(f"  {time.monotonic() - started:6.1f}s standby promoted", flush=True)
        with psycopg.connect(standby.url("faults"), autocommit=True) as conn:
            head_at_switch = conn.execute(
                "SELECT COALESCE(MAX(notification_id), 0) FROM ledger_events").fetchone()[0]
        # the first write acknowledged after the switch: how long the service took to find it
        first_after = None
        while time.monotonic() < killed_at + 60:
            if sum(r.acknowledged for r in requests) > acked_before + writers:
                first_after = round(time.monotonic() - killed_at, 1)
                break
            time.sleep(0.1)
        time.sleep(after)
        stop.set()
        for w in pool:
            w.join(max(1.0, deadline - time.monotonic() + 5))
        hung = [w.name for w in pool if w.is_alive()]
        failed = [f for w in pool for f in w.failed]
        time.sleep(2)  # the projections catch up before they are verified
        new_url = standby.url("faults")
        opened, lines, versions = _history(new_url)
        lost, duplicated = [], []
        for r in requests:
            count = opened[r.marker] if r.kind == "open" else \
                lines[r.marker] if r.kind == "line" else None
            if count is None:
                continue
            if r.acknowledged and count == 0:
                lost.append(r.key)
            if count > 1:
                duplicated.append(r.key)
        gaps = [eid for eid, vs in versions.items() if vs != list(range(1, len(vs) + 1))]
        env = {**api.env, "LEDGER_DATABASE_URL": url}  # the same multi-host URL
        verify_rc, verify_out = _cli(["verify"], env)
        deadline_p = time.monotonic() + 60
        while True:
            proj_rc, proj_out = _cli(["projections", "verify"], env)
            if proj_rc == 0 or time.monotonic() > deadline_p:
                break
            time.sleep(2)
        with psycopg.connect(new_url, autocommit=True) as conn:
            # the checkpoint job found the new primary by itself and signed past the switch
            sealed = conn.execute("SELECT COALESCE(MAX(last_position), 0) "
                                  "FROM ledger_checkpoints").fetchone()[0]
        unacked = [r for r in requests if not r.acknowledged]
        answers = sum((w.statuses for w in pool), Counter())
        result = {
            "writers": writers, "requests": len(requests),
            "attempts": sum(r.attempts for r in requests),
            "acknowledged": len(requests) - len(unacked),
            "acknowledged_before_kill": acked_before, "unacknowledged": len(unacked),
            "lost": len(lost), "duplicated": len(duplicated), "version_gaps": len(gaps),
            "refused": len(failed), "hung_writers": len(hung),
            "writes_again_after_s": first_after,
            "answers_500": answers["500"],
            "head_at_switch": head_at_switch, "checkpointed_to": sealed,
            "ledger_verify": "clean" if verify_rc == 0 else "FAILED",
            "projections_verify": "clean" if proj_rc == 0 else "FAILED",
            "seconds": round(time.monotonic() - started, 1),
            "answers": dict(answers.most_common()),
        }
        result["ok"] = not (lost or duplicated or gaps or failed or hung or unacked
                            or verify_rc or proj_rc or answers["500"]
                            or first_after is None or sealed <= head_at_switch)
        if not result["ok"]:
            result["details"] = {"lost": lost[:10], "duplicated": duplicated[:10],
                                 "gaps": gaps[:5], "refused": failed[:5], "hung": hung,
                                 "unacknowledged": [r.key for r in unacked][:10],
                                 "verify": verify_out if verify_rc else "",
                                 "projections_verify": proj_out if proj_rc else ""}
        return result
    finally:
        stop.set()
        if api is not None:
            api.stop()
        if standby is not None:
            standby.stop()
        primary.kill9()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--writers", type=int, default=12)
    p.add_argument("--before", type=float, default=8.0, help="seconds of writes before")
    p.add_argument("--after", type=float, default=8.0, help="seconds of writes after")
    p.add_argument("--dir", type=Path, default=ROOT / ".ledger" / "failover")
    args = p.parse_args(argv)
    print(f"failover run: {args.writers} writers, primary + synchronous standby", flush=True)
    result = run(args.writers, args.before, args.after, args.dir)
    details = result.pop("details", None)
    print("failover run result: " + ", ".join(f"{k}={v}" for k, v in result.items()))
    if details:
        for k, v in details.items():
            if v:
                print(f"  {k}: {v}")
    if result["ok"]:
        shutil.rmtree(args.dir, ignore_errors=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
