"""`make bench`: every benchmark, each beside its baseline measured in the same run.

Runs against the embedded PostgreSQL (data in .ledger/bench) or LEDGER_DATABASE_URL. Prints one
JSON line per figure as it goes and all tables at the end. `make bench ARGS="append http"` runs
a subset. Knobs: BENCH_SECONDS, BENCH_ROUNDS, BENCH_BIG_EVENTS (see each script)."""

from __future__ import annotations

import importlib
import sys
import time
import traceback

from bench.common import machine

# (name, module) in the order they run; optional ones are skipped when their module is absent
BENCHES = [
    ("append", "bench.append"),
    ("http", "bench.http"),
    ("replay", "bench.replay"),
    ("store", "bench.store"),  # read + scale (1M events)
    ("projections", "bench.projection_catchup"),
    ("codes", "bench.codes_lookup"),
    ("x12", "bench.x12_import"),
    ("chain", "bench.chain"),
    ("verify", "bench.verify"),
]


def main(argv: list[str]) -> int:
    wanted = set(argv) or {name for name, _ in BENCHES}
    print(f"# machine: {machine()}", flush=True)
    reports = []
    failed = []
    started = time.perf_counter()
    for name, module_name in BENCHES:
        if name not in wanted:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                print(f"# {name}: not present, skipped", flush=True)
                continue
            raise
        print(f"# --- {name}", flush=True)
        t = time.perf_counter()
        try:
            result = module.main()
        except Exception:  # noqa: BLE001 - report and go on with the others
            traceback.print_exc()
            failed.append(name)
            continue
        reports.extend(result if isinstance(result, tuple | list) else [result])
        print(f"# {name}: {time.perf_counter() - t:.0f}s", flush=True)
    print("\n# ===== summary =====")
    for report in reports:
        table = getattr(report, "table", None)
        if callable(table):
            print(table())
            print()
    print(f"# total {time.perf_counter() - started:.0f}s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
