"""837P import memory: a generated 837P of N claims (default 20,000) imported into a fresh
store, peak RSS of the importing process, beside a baseline from the same run: the peak RSS
of a process that only parses the same file (``read_837``, no database). Each figure comes
from its own child process (peak RSS is per process), so neither inherits the other's heap.

    .venv/bin/python -m bench.x12_import_837 [--claims 20000] [--limit-mb 300]

Prints a table and one JSON line per figure; exits 1 when the import's peak RSS is above
``--limit-mb`` (issue 12: under 300 MB for 20,000 claims).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from bench.common import ROOT, Report, fresh_database, machine


def generate_837p(n: int, control: int = 1) -> bytes:
    """One 837P with N claims C0000000.. (one subscriber each; 99214 $180 + 83036 $45)."""
    segs = [f"ISA*00*          *00*          *ZZ*PROVIDERSUBMIT *ZZ*PAYERRCV       *260410*0900*"
            f"^*00501*{control:09d}*1*T*:", f"GS*HC*PROVIDERSUBMIT*PAYERRCV*20260410*0900*"
            f"{control}*X*005010X222A1", "ST*837*0001*005010X222A1",
            "BHT*0019*00*BENCH837*20260410*0900*CH",
            "NM1*41*2*EXAMPLE FAMILY MEDICINE*****46*PROVIDERSUBMIT",
            "PER*IC*BILLING OFFICE*TE*2175551212", "NM1*40*2*EXAMPLE HEALTH PLAN*****46*PAYERRCV",
            "HL*1**20*1", "PRV*BI*PXC*207Q00000X",
            "NM1*85*2*EXAMPLE FAMILY MEDICINE*****XX*1234567893", "N3*100 MAIN ST",
            "N4*SPRINGFIELD*IL*627010000", "REF*EI*371234567"]
    for i in range(n):
        segs += [f"HL*{i + 2}*1*22*0", "SBR*P*18*GRP100******CI",
                 f"NM1*IL*1*ROE*PAT****MI*W{i:09d}", "N3*1 ELM ST",
                 "N4*SPRINGFIELD*IL*627020000", "DMG*D8*19700115*F",
                 "NM1*PR*2*EXAMPLE HEALTH PLAN*****PI*99999",
                 f"CLM*C{i:07d}*225***11:B:1*Y*A*Y*Y", "HI*ABK:E119*ABF:I10",
                 "LX*1", "SV1*HC:99214*180*UN*1***1:2", "DTP*472*D8*20260402", "REF*6R*1",
                 "LX*2", "SV1*HC:83036*45*UN*1***1", "DTP*472*D8*20260402", "REF*6R*2"]
    segs.append(f"SE*{len(segs) - 1}*0001")
    segs += [f"GE*1*{control}", f"IEA*1*{control:09d}"]
    return ("~\n".join(segs) + "~\n").encode()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(mode: str, path: str, url: str) -> None:
    data = Path(path).read_bytes()
    t = time.perf_counter()
    if mode == "parse":  # the importer's reader: a slice of claims at a time
        from ledger.x12.claims837 import read_837_chunks

        count = sum(len(parsed.claims) for parsed in read_837_chunks(data))
        outcome = "parsed"
    elif mode == "parse-whole":  # the whole file's models at once (before issue 12)
        from ledger.x12.claims837 import read_837

        count, outcome = len(read_837(data).claims), "parsed"
    else:
        from ledger.application.service import LedgerApplication
        from ledger.config import Settings
        from ledger.persistence.database import eventsourcing_env
        from ledger.x12.importer import X12Importer

        app = LedgerApplication(env=eventsourcing_env(url, Settings(database_url=url,
                                                                    cache_size=0)))
        try:
            result = X12Importer(app, url).import_bytes(data, "bench.837p")
        finally:
            app.close()
        count, outcome = result.posted, result.outcome
    elapsed = time.perf_counter() - t
    print(f"{mode} {count} {outcome} {elapsed:.3f} {_peak_mb():.1f}")


def run_child(mode: str, path: str, url: str = "") -> tuple[int, str, float, float]:
    out = subprocess.run([sys.executable, "-m", "bench.x12_import_837", "--child", mode,
                          "--file", path, "--url", url], check=True, capture_output=True,
                         text=True, cwd=ROOT).stdout.strip().splitlines()[-1].split()
    return int(out[1]), out[2], float(out[3]), float(out[4])


def main() -> Report | None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--claims", type=int, default=20_000)
    ap.add_argument("--limit-mb", type=float, default=300.0)
    ap.add_argument("--whole", action="store_true",
                    help="also measure reading the whole file at once (slow, large)")
    ap.add_argument("--child", default="")
    ap.add_argument("--file", default="")
    ap.add_argument("--url", default="")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.file, args.url)
        return None
    if not os.environ.get("LEDGER_DATABASE_URL"):  # a server of its own
        from ledger.persistence import embedded
        os.environ["LEDGER_DATABASE_URL"] = embedded.start(ROOT / ".ledger" / "bench-x12")
    n = args.claims
    report = Report("x12_import_837")
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.837p")
        data = generate_837p(n)
        Path(path).write_bytes(data)
        claims, _, parse_s, parse_mb = run_child("parse", path)
        assert claims == n, claims
        if args.whole:
            _, _, whole_s, whole_mb = run_child("parse-whole", path)
            report.add(figure="parse_whole_file_peak_rss_mb", claims=n, median=whole_mb,
                       seconds=round(whole_s, 2), note="read_837 of the whole file at once")
        with fresh_database("x12_837") as url:
            posted, outcome, import_s, import_mb = run_child("import", path, url)
        assert (outcome, posted) == ("imported", n), (outcome, posted)
    report.add(figure="parse_only_peak_rss_mb", claims=n, bytes=len(data), median=parse_mb,
               seconds=round(parse_s, 2),
               note="baseline: the importer's reader alone (read_837_chunks), no database")
    report.add(figure="import_peak_rss_mb", claims=n, median=import_mb,
               seconds=round(import_s, 2), limit_mb=args.limit_mb,
               within_limit=import_mb < args.limit_mb,
               note="parse + scrub + save in chunks of max_events_per_save events")
    report.add(figure="import_claims_per_s", claims=n, median=round(n / import_s))
    report.add(figure="machine", **machine(), date=str(date.today()))
    print(report.table())
    if import_mb >= args.limit_mb:
        raise RuntimeError(f"837 import peak RSS {import_mb} MB is not under {args.limit_mb} MB")
    return report


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as err:
        print(f"# {err}", file=sys.stderr)
        sys.exit(1)
