"""`make bench`: every benchmark, each beside its baseline measured in the same run.

Runs against the embedded PostgreSQL (data in .ledger/bench) or LEDGER_DATABASE_URL. Prints one
JSON line per figure as it goes and all tables at the end. `make bench ARGS="append http"` runs
a subset. By default the three longest (projection catch-up, code files, X12 import) run in a
lighter form so that everything fits in about 10 minutes on 2 cores: projections without the
one-view-at-a-time variants, a 300,000-row PTP file, one round of the 20,000-claim 835.
`make bench ARGS=--full` runs them at full size (about 20 minutes). Knobs: BENCH_SECONDS,
BENCH_ROUNDS, BENCH_BIG_EVENTS … (see each script)."""

from __future__ import annotations

import importlib
import os
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
    ("x12-837", "bench.x12_import_837"),  # 20,000-claim 837P: peak RSS (issue 12), ~3 min
    ("chain", "bench.chain"),
    ("verify", "bench.verify"),
    ("ui", "bench.ui_pages"),  # workbench pages with a large store
    ("sealing", "bench.sealing"),  # per-batch sealing on vs off (issue 14)
    ("asof", "bench.asof"),  # as-of payer balances p95; history on vs off (issue 19)
]


LIGHT_ENV = {"BENCH_PROJECTION_SINGLE": "0", "BENCH_PTP_ROWS": "300000",
             "BENCH_UI_EVENTS": "200000"}
LIGHT_ARGV = {"x12": ["--runs", "1"], "asof": ["--quick"]}


def main(argv: list[str]) -> int:
    full = "--full" in argv
    argv = [a for a in argv if a != "--full"]
    wanted = set(argv) or {name for name, _ in BENCHES}
    if not full:
        for key, value in LIGHT_ENV.items():
            os.environ.setdefault(key, value)
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
        sys.argv = [module_name, *([] if full else LIGHT_ARGV.get(name, []))]
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
