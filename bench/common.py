"""Shared benchmark plumbing: a fresh migrated database per benchmark (embedded PostgreSQL by
default, or LEDGER_DATABASE_URL), medians, and output as a table plus one JSON line per figure.

Honest-benchmark rules (shared/docs/performance.md): the project and its baseline are measured
in the same run, alternating, and medians of >=3 runs are reported with the ratio.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def server_url() -> str:
    url = os.environ.get("LEDGER_DATABASE_URL")
    if url:
        return url
    from ledger.persistence import embedded

    # PostgreSQL's default 100 connections do not hold `bench.http --workers 2`: two ledger
    # workers (writer pool, idempotency/auth pool, monitor, waiter), the projection process
    # and the bare endpoint's two pools of up to 64 (see bench/README.md, http).
    return embedded.start(ROOT / ".ledger" / "bench", settings={
        "max_connections": os.environ.get("BENCH_MAX_CONNECTIONS", "300")})


@contextmanager
def fresh_database(label: str, keep: bool = False) -> Iterator[str]:
    server = server_url()
    name = f"ledger_bench_{label}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunparse(urlparse(server)._replace(path="/" + name))
    from ledger.persistence.migrate import migrate

    migrate(url)
    try:
        yield url
    finally:
        if not keep:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fill(url: str, events: int, seed: int) -> tuple[int, float]:
    """Fill the database at ``url`` with ``events`` events of the seeded randomized workload
    (bench.workload); returns the events saved and the seconds it took."""
    from bench.workload import run_workload
    from ledger.application.service import LedgerApplication
    from ledger.config import Settings
    from ledger.persistence.database import eventsourcing_env

    app = LedgerApplication(env=eventsourcing_env(url, Settings(database_url=url, cache_size=0)))
    started = time.perf_counter()
    try:
        stats = run_workload(app.save, encounters=events, seed=seed, concurrency=200,
                             max_events=events)
    finally:
        app.close()
    return stats.events, time.perf_counter() - started


def per_second(callers: int, seconds: float, call: Callable[[random.Random], int | None],
               seed: Callable[[int], int] = lambda i: i) -> float:
    """``callers`` threads each call ``call(rnd)`` in a loop for ``seconds`` (all started
    together); returns what the calls counted per second (a call that returns None counts 1)."""
    stop = time.perf_counter() + seconds
    counts = [0] * callers
    barrier = threading.Barrier(callers + 1)

    def loop(i: int) -> None:
        rnd = random.Random(seed(i))
        barrier.wait()
        n = 0
        while time.perf_counter() < stop:
            counted = call(rnd)
            n += 1 if counted is None else counted
        counts[i] = n

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Terminate a child process; kill it if it has not ended within ``timeout``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


class Sampler:
    """While it runs (``with``), ``sample(conn)`` every ``interval`` seconds on a connection of
    its own to ``url``, in a background thread."""

    interval = 0.2

    def __init__(self, url: str) -> None:
        self.url = url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(self.interval):
                self.sample(conn)

    def sample(self, conn: psycopg.Connection[Any]) -> None:
        raise NotImplementedError


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "python": platform.python_version()}
    try:
        with psycopg.connect(server_url()) as conn:
            info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
            info["fsync"] = conn.execute("SHOW fsync").fetchone()[0]
            info["synchronous_commit"] = conn.execute("SHOW synchronous_commit").fetchone()[0]
    except psycopg.Error:
        pass
    return info


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def alternate(runs: int, variants: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run each variant once per round, alternating, for ``runs`` rounds."""
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, fn in variants.items():
            results[name].append(fn())
    return results


class Report:
    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: list[dict[str, Any]] = []

    def add(self, **row: Any) -> None:
        self.rows.append(row)
        print(json.dumps({"bench": self.title, **row}, default=str), flush=True)

    def table(self) -> str:
        if not self.rows:
            return ""
        cols = list(dict.fromkeys(k for r in self.rows for k in r))
        fmt = [max(len(c), *(len(_cell(r.get(c))) for r in self.rows)) for c in cols]
        pairs = list(zip(cols, fmt, strict=True))
        lines = [f"## {self.title}", "  ".join(c.ljust(w) for c, w in pairs),
                 "  ".join("-" * w for w in fmt)]
        for r in self.rows:
            lines.append("  ".join(_cell(r.get(c)).ljust(w) for c, w in pairs))
        return "\n".join(lines)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    return "" if v is None else str(v)
