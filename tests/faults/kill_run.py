"""The fault run (issue 13, item 4), Jepsen-style at our scale: concurrent writers send keyed
commands to a real ``ledger serve`` on a private embedded PostgreSQL while the run kills -9
the API process and, separately, the PostgreSQL postmaster, restarting each; every request
that was not acknowledged is retried with its Idempotency-Key until it is. Then the history is
checked: every acknowledged write present exactly once, none duplicated, versions contiguous,
``ledger verify`` and ``ledger projections verify`` clean. Prints the counts.

    python -m tests.faults.kill_run                  # short form (CI, about two minutes)
    python -m tests.faults.kill_run --long           # >= 10 kills of each kind
    python -m tests.faults.kill_run --writers 16 --api-kills 3 --pg-kills 3

Loopback and Unix sockets only; every loop is bounded. Exit status 1 on any anomaly.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
LEDGER = str(Path(sys.executable).with_name("ledger"))
LINES_PER_ENCOUNTER = 40  # a professional claim holds at most 50 lines
NPI = "1234567893"


@dataclass
class Request:
    key: str
    kind: str  # open | code | line
    marker: str  # what identifies the write in the history
    encounter: str | None = None
    attempts: int = 0
    acknowledged: bool = False
    status: int | None = None
    body: dict[str, Any] = field(default_factory=dict)


class Api:
    """``ledger serve`` as a subprocess (kill -9 and restart)."""

    def __init__(self, run_dir: Path, url: str) -> None:
        self.run_dir = run_dir
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_DATA_DIR": str(run_dir),
                    "LEDGER_LOG_LEVEL": "WARNING", "LEDGER_IDEMPOTENCY_LEASE_SECONDS": "5",
                    "LEDGER_CHECKPOINT_INTERVAL": "2", "LEDGER_CACHE_SIZE": "1000"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = open(run_dir / "api.log", "ab")  # noqa: SIM115 - closed in stop()

    def start(self, timeout: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            [LEDGER, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ledger serve exited ({self.proc.returncode}); see "
                                   f"{self.run_dir / 'api.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + "/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError("ledger serve did not answer /health in time")

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


class Writer(threading.Thread):
    """Sends its commands one after another; retries each with its key until acknowledged
    (or refused with a definite 4xx), within the run's deadline."""

    def __init__(self, n: int, base: str, token: str, stop: threading.Event,
                 deadline: float, requests: list[Request], lock: threading.Lock) -> None:
        super().__init__(name=f"writer-{n}", daemon=True)
        self.n, self.base, self.stop_event, self.deadline = n, base, stop, deadline
        self.headers = {"Authorization": f"Bearer {token}"}
        self.requests, self.lock = requests, lock
        self.seq = 0
        self.failed: list[str] = []
        self.statuses: Counter[str] = Counter()

    def _send(self, client: httpx.Client, req: Request, path: str, body: dict[str, Any]
              ) -> dict[str, Any] | None:
        with self.lock:
            self.requests.append(req)
        while time.monotonic() < self.deadline:
            req.attempts += 1
            try:
                r = client.post(path, json=body, headers={**self.headers,
                                                          "Idempotency-Key": req.key})
            except httpx.HTTPError as exc:
                self.statuses[type(exc).__name__] += 1
                time.sleep(0.2)
                continue
            req.status = r.status_code
            self.statuses[str(r.status_code)] += 1
            if r.status_code in (200, 201):
                req.acknowledged = True
                req.body = r.json()
                return req.body
            if r.status_code in (409, 429, 500, 502, 503, 504):
                time.sleep(float(r.headers.get("retry-after", "0.2")) / 4 + 0.05)
                continue
            self.failed.append(f"{req.key}: {r.status_code} {r.text[:200]}")
            return None
        return None

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.stop_event.is_set() and time.monotonic() < self.deadline:
                marker = f"PT-W{self.n:02d}-E{self.seq:04d}"
                self.seq += 1
                opened = self._send(client, Request(f"{marker}-open", "open", marker),
                                    "/encounters", {
                                        "facility_id": "FAC-01", "patient_ref": marker,
                                        "service_from": "2026-03-10", "place_of_service": "11",
                                        "responsible_parties": [{"bucket": "primary",
                                                                 "kind": "insurer",
                                                                 "payer_id": "PAYER-A"}]})
                if opened is None:
                    return
                eid = opened["encounter_id"]
                if self._send(client, Request(f"{marker}-code", "code", marker, eid),
                              f"/encounters/{eid}/diagnoses", {"code": "E11.9"}) is None:
                    return
                for i in range(LINES_PER_ENCOUNTER):
                    if self.stop_event.is_set():
                        return
                    line = f"{marker}-L{i:02d}"
                    if self._send(client, Request(line, "line", line, eid),
                                  f"/encounters/{eid}/lines", {
                                      "procedure_code": "99213", "charge": f"{100 + i}.00",
                                      "pointers": [1], "rendering_npi": NPI,
                                      "description": line}) is None:
                        return


def _history(url: str) -> tuple[Counter[str], Counter[str], dict[str, list[int]]]:
    """Opened encounters per patient_ref, lines per description, versions per encounter."""
    from ledger.application.service import LedgerApplication
    from ledger.config import Settings
    from ledger.persistence.database import eventsourcing_env

    app = LedgerApplication(env=eventsourcing_env(url, Settings(database_url=url,
                                                                cache_size=0)))
    opened: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    versions: dict[str, list[int]] = {}
    try:
        start = 1
        while True:
            page = app.recorder.select_notifications(start, 1000)
            if not page:
                break
            for n in page:
                event = app.mapper.to_domain_event(n)
                versions.setdefault(str(event.originator_id), []).append(
                    event.originator_version)
                name = type(event).__name__
                if name == "Opened":
                    opened[event.patient_ref] += 1
                elif name == "ServiceLineAdded":
                    lines[event.line.description] += 1
            start = page[-1].id + 1
    finally:
        app.close()
    return opened, lines, versions


def _cli(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run([LEDGER, *args], env=env, cwd=ROOT, capture_output=True,
                          timeout=300, check=False)
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")[-2000:]


def run(writers: int, api_kills: int, pg_kills: int, gap: tuple[float, float],
        run_dir: Path, seed: int) -> dict[str, Any]:
    from ledger.persistence.migrate import migrate
    from tests.api.conftest import provision, token_for
    from tests.faults.private_pg import PrivatePostgres

    rng = random.Random(seed)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    pg = PrivatePostgres(run_dir)
    api: Api | None = None
    stop = threading.Event()
    started = time.monotonic()
    try:
        url = pg.create_database("faults")
        migrate(url)
        provision(url)
        api = Api(run_dir, url)
        api.start()
        requests: list[Request] = []
        lock = threading.Lock()
        deadline = time.monotonic() + 60 + (api_kills + pg_kills) * (gap[1] + 20)
        # a coder may open encounters, code them and add lines: every writer is one
        pool = [Writer(i, api.base, token_for("coder-a"), stop, deadline, requests, lock)
                for i in range(writers)]
        faults = ["api"] * api_kills + ["pg"] * pg_kills
        rng.shuffle(faults)
        for w in pool:
            w.start()
        kills: Counter[str] = Counter()
        for fault in faults:
            time.sleep(rng.uniform(*gap))
            if fault == "api":
                api.kill9()
                time.sleep(rng.uniform(0.0, 0.5))
                api.start()
            else:
                pg.kill9()
                time.sleep(rng.uniform(0.0, 1.0))
                pg.start()
            kills[fault] += 1
            print(f"  {time.monotonic() - started:6.1f}s kill -9 {fault:3} "
                  f"({sum(r.acknowledged for r in requests)} acknowledged so far)", flush=True)
        time.sleep(rng.uniform(*gap))
        stop.set()
        for w in pool:
            w.join(max(1.0, deadline - time.monotonic() + 5))
        hung = [w.name for w in pool if w.is_alive()]
        failed = [f for w in pool for f in w.failed]
        # let the projections catch up before they are verified
        time.sleep(2)
        opened, lines, versions = _history(url)
        acked = [r for r in requests if r.acknowledged]
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
        env = {**api.env}
        verify_rc, verify_out = _cli(["verify"], env)
        deadline_p = time.monotonic() + 60
        while True:
            proj_rc, proj_out = _cli(["projections", "verify"], env)
            if proj_rc == 0 or time.monotonic() > deadline_p:
                break
            time.sleep(2)
        unacked = [r for r in requests if not r.acknowledged]
        result = {
            "writers": writers, "api_kills": kills["api"], "pg_kills": kills["pg"],
            "requests": len(requests), "attempts": sum(r.attempts for r in requests),
            "acknowledged": len(acked), "unacknowledged": len(unacked),
            "lost": len(lost), "duplicated": len(duplicated), "version_gaps": len(gaps),
            "refused": len(failed), "hung_writers": len(hung),
            "ledger_verify": "clean" if verify_rc == 0 else "FAILED",
            "projections_verify": "clean" if proj_rc == 0 else "FAILED",
            "seconds": round(time.monotonic() - started, 1),
            "answers": dict(sum((w.statuses for w in pool), Counter()).most_common()),
        }
        result["ok"] = not (lost or duplicated or gaps or failed or hung or unacked
                            or verify_rc or proj_rc)
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
        pg.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--long", action="store_true", help="10 kills of each kind")
    p.add_argument("--writers", type=int, default=12)
    p.add_argument("--api-kills", type=int)
    p.add_argument("--pg-kills", type=int)
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--dir", type=Path, default=ROOT / ".ledger" / "faults")
    args = p.parse_args(argv)
    kills = 10 if args.long else 3
    api_kills = args.api_kills if args.api_kills is not None else kills
    pg_kills = args.pg_kills if args.pg_kills is not None else kills
    gap = (2.0, 5.0) if args.long else (2.0, 4.0)
    print(f"fault run: {args.writers} writers, {api_kills} API kills, {pg_kills} PostgreSQL "
          f"kills, seed {args.seed}", flush=True)
    result = run(args.writers, api_kills, pg_kills, gap, args.dir, args.seed)
    details = result.pop("details", None)
    print("fault run result: " + ", ".join(f"{k}={v}" for k, v in result.items()))
    if details:
        for k, v in details.items():
            if v:
                print(f"  {k}: {v}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
