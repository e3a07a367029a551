"""codes_lookup: what an ICD-10-CM lookup costs, cold and warm, beside plain baselines measured
in the same run (alternating rounds, medians of BENCH_ROUNDS >= 3):

cold (each in a fresh Python subprocess; time from the import to the first answer):
  * ledger, cached table   — ``default_code_set().check()`` with the on-disk table cache
  * ledger, no cache       — the same, building the table from ``simple-icd-10-cm``
  * baseline: library      — ``import simple_icd_10_cm`` + ``is_valid_item``/``is_leaf``
  * baseline: code list    — read the package's plain code list into a set, one membership test
warm (in process, a mix of billable, non-billable and unknown codes):
  * ledger check()         — ``ICD10CMCodeSet.check`` (verdict, version, description, why)
  * ledger lookup_code()   — the dict ``GET /codes/icd10cm/{code}`` returns
  * baseline: library      — ``is_valid_item`` + ``is_leaf`` + ``get_description``
  * baseline: set          — ``code in set`` of the same codes (no billable flag, no text)
plus the NCCI PTP table: load time and lookups/s for a synthetic BENCH_PTP_ROWS-row file in the
CMS layout, beside a plain dict of the same pairs.

Run: ``.venv/bin/python bench/codes_lookup.py`` (or ``-m bench.codes_lookup``). Prints one
JSON line per figure, then a table.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ROUNDS = max(3, int(os.environ.get("BENCH_ROUNDS", "3")))
WARM_LOOKUPS = int(os.environ.get("BENCH_LOOKUPS", "200000"))
PTP_ROWS = int(os.environ.get("BENCH_PTP_ROWS", "1000000"))
DOS = date(2026, 3, 10)
ROWS: list[dict[str, Any]] = []

COLD = {
    "ledger, cached table": (
        "from ledger.codes.icd10cm import default_code_set\n"
        "ok = default_code_set().check('E119', date(2026, 3, 10)).billable\n"),
    "ledger, no cache": (
        "from ledger.codes.icd10cm import default_code_set\n"
        "ok = default_code_set().check('E119', date(2026, 3, 10)).billable\n"),
    "baseline: library": (
        "import simple_icd_10_cm as lib\n"
        "ok = lib.is_valid_item('E11.9') and lib.is_leaf('E11.9')\n"),
    "baseline: code list": (
        "import importlib.util, pathlib\n"  # find the file without importing the package
        "pkg = importlib.util.find_spec('simple_icd_10_cm').submodule_search_locations[0]\n"
        "f = pathlib.Path(pkg, 'data', 'code-list-April-2026.txt')\n"
        "codes = set(f.read_text().split())\n"
        "ok = 'E119' in codes\n"),
}
PRELUDE = "import time\nfrom datetime import date\nt0 = time.perf_counter()\n"
EPILOGUE = "assert ok\nprint(time.perf_counter() - t0)\n"


def report(**row: Any) -> None:
    ROWS.append(row)
    print(json.dumps({"bench": "codes_lookup", **row}), flush=True)


def cold_run(name: str, cache_dir: str) -> float:
    env = dict(os.environ)
    env["LEDGER_CODES_CACHE_DIR"] = "" if name == "ledger, no cache" else cache_dir
    out = subprocess.run([sys.executable, "-c", PRELUDE + COLD[name] + EPILOGUE], env=env,
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def alternate(variants: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, fn in variants.items():
            results[name].append(fn())
    return results


def bench_cold() -> None:
    with tempfile.TemporaryDirectory() as cache_dir:
        cold_run("ledger, cached table", cache_dir)  # write the cache once
        results = alternate({name: (lambda n=name: cold_run(n, cache_dir)) for name in COLD})
    base = statistics.median(results["baseline: library"])
    for name, values in results.items():
        med = statistics.median(values)
        report(figure="first lookup (fresh process)", variant=name, seconds=round(med, 3),
               runs=[round(v, 3) for v in values], vs_library=round(med / base, 2))


def bench_warm() -> None:
    import simple_icd_10_cm as lib

    from ledger.codes.icd10cm import default_code_set
    from ledger.codes.lookup import CodeSets, lookup_code
    from ledger.codes.procedures import CptDescriptors

    cs = default_code_set()
    table = cs.table(cs.edition_for(DOS))  # loaded before timing
    sets = CodeSets(cs, CptDescriptors())
    rng = random.Random(6)
    billable = [c for c, (b, _) in table.entries.items() if b]
    headers = [c for c, (b, _) in table.entries.items() if not b]
    mix = rng.choices(billable, k=WARM_LOOKUPS * 8 // 10) + \
        rng.choices(headers, k=WARM_LOOKUPS // 10) + \
        [f"Z{rng.randrange(10)}{rng.randrange(10)}{rng.randrange(100):02d}"
         for _ in range(WARM_LOOKUPS // 10)]
    rng.shuffle(mix)
    dotted = [c if len(c) <= 3 else f"{c[:3]}.{c[3:]}" for c in mix]
    as_set = set(table.entries)

    def timed(fn: Callable[[], None]) -> float:
        t = time.perf_counter()
        fn()
        return len(mix) / (time.perf_counter() - t)

    def ledger_check() -> None:
        for c in mix:
            cs.check(c, DOS)

    def ledger_lookup() -> None:
        for c in mix:
            lookup_code("icd10cm", c, DOS, sets=sets)

    def library() -> None:
        for c in dotted:
            if lib.is_valid_item(c):
                lib.is_leaf(c)
                lib.get_description(c)

    def plain_set() -> None:
        for c in mix:
            _ = c in as_set

    results = alternate({"ledger check()": lambda: timed(ledger_check),
                         "ledger lookup_code()": lambda: timed(ledger_lookup),
                         "baseline: library": lambda: timed(library),
                         "baseline: set": lambda: timed(plain_set)})
    base = statistics.median(results["baseline: set"])
    for name, values in results.items():
        med = statistics.median(values)
        report(figure="steady-state lookups/s", variant=name, per_second=round(med),
               us_per_lookup=round(1e6 / med, 3), vs_set=round(med / base, 3),
               codes=len(mix))


def bench_ptp() -> None:
    from ledger.codes.edits import CMSEditTables, read_ptp_files

    rng = random.Random(7)
    codes = [f"{n:05d}" for n in rng.sample(range(10000, 99999), 8000)] + \
        [f"{c}{n:04d}" for c in "AEGJL" for n in rng.sample(range(1, 9999), 400)]
    pairs = set()
    while len(pairs) < PTP_ROWS:
        pairs.add((rng.choice(codes), rng.choice(codes)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ccipra-bench.txt"
        with path.open("w") as fh:
            fh.write("Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\t"
                     "Deletion Date *=no data\tModifier\tPTP Edit Rationale\n")
            for c1, c2 in pairs:
                fh.write(f"{c1}\t{c2}\t\t20240101\t*\t{rng.choice('019')}\t"
                         "Misuse of column two code with column one code\n")
        half = min(50_000, len(pairs))
        probes = rng.sample(sorted(pairs), half) + \
            [(rng.choice(codes), rng.choice(codes)) for _ in range(half)]

        def load_ledger() -> float:
            t = time.perf_counter()
            read_ptp_files([path])
            return time.perf_counter() - t

        def read_dict() -> dict[tuple[str, str], tuple[str, str, str]]:
            """The baseline: the PTP file read into a plain dict."""
            d = {}
            with path.open() as fh:
                for line in fh:
                    p = line.split("\t")
                    if p[0] != "Column 1":
                        d[(p[0], p[1])] = (p[3], p[4], p[5])
            return d

        def load_dict() -> float:
            t = time.perf_counter()
            read_dict()
            return time.perf_counter() - t

        loads = alternate({"ledger PTPTable": load_ledger, "baseline: dict": load_dict})
        for name, values in loads.items():
            report(figure=f"PTP load ({PTP_ROWS:,} rows)", variant=name,
                   seconds=round(statistics.median(values), 3))
        tracemalloc.start()
        tables = CMSEditTables([path])
        tables.load()
        ledger_bytes = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        tracemalloc.start()
        d = read_dict()
        dict_bytes = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        report(figure="PTP memory", variant="ledger PTPTable", mb=round(ledger_bytes / 2**20, 1))
        report(figure="PTP memory", variant="baseline: dict", mb=round(dict_bytes / 2**20, 1))

        def probe_ledger() -> float:
            t = time.perf_counter()
            for c1, c2 in probes:
                tables.ptp_edit(c1, c2, DOS)
            return len(probes) / (time.perf_counter() - t)

        def probe_dict() -> float:
            t = time.perf_counter()
            for key in probes:
                d.get(key)
            return len(probes) / (time.perf_counter() - t)

        probes_s = alternate({"ledger PTPTable": probe_ledger, "baseline: dict": probe_dict})
        for name, values in probes_s.items():
            report(figure="PTP pair lookups/s", variant=name,
                   per_second=round(statistics.median(values)))


def table() -> str:
    cols = list(dict.fromkeys(k for r in ROWS for k in r if k != "runs"))
    cells = [[str(r.get(c, "")) for c in cols] for r in ROWS]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["## codes_lookup", "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def main() -> None:
    report(figure="machine", variant=f"python {sys.version.split()[0]}, {os.cpu_count()} cores",
           rounds=ROUNDS)
    bench_cold()
    bench_warm()
    if PTP_ROWS:
        bench_ptp()
    print(table())


if __name__ == "__main__":
    main()
