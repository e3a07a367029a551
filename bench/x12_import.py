"""835 import throughput: a generated 835 of N claims (default 20,000) imported into a fresh
store holding the N submitted claims it pays: parse + balance + match + post (one
transaction, chunked past 500 events) → claims/s, then the projections caught up, beside the
parse-only time (read + balance, no database) of the same file in the same run, with the
cyclic GC on (issue 21's baseline) and paused (as the importer parses: the stricter one). Medians of
``--runs`` rounds (each round a fresh database, since a remittance posts once); the
parse-only runs alternate with the imports.

    .venv/bin/python -m bench.x12_import [--claims 20000] [--runs 3]

Prints a table and one JSON line per figure.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from contextlib import nullcontext
from datetime import date

from bench.common import ROOT, Report, fresh_database, machine, median
from ledger.application.service import LedgerApplication
from ledger.config import Settings
from ledger.domain.encounter import Encounter
from ledger.domain.model import Finding
from ledger.persistence.database import eventsourcing_env
from tests import builders as s


def generate_835(n: int, trace: str = "BENCH0001") -> bytes:
    """One 835 paying claims B0000000.. (2 lines each: 99214 $180 + 83036 $45)."""
    segs = ["ISA*00*          *00*          *ZZ*PAYERSUBMIT    *ZZ*PROVIDERRCV    *260415*1200*"
            "^*00501*000000001*0*T*:", "GS*HP*PAYERSUBMIT*PROVIDERRCV*20260415*1200*1*X*"
            "005010X221A1", "ST*835*0001",
            f"BPR*I*{111.82 * n:.2f}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*"
            "999988880*DA*98765*20260415", f"TRN*1*{trace}*1512345678", "DTM*405*20260414",
            "N1*PR*EXAMPLE HEALTH PLAN", "N3*1 PLAN WAY", "N4*SPRINGFIELD*IL*627010000",
            "PER*BL*EDI SUPPORT*TE*8005551212", "N1*PE*EXAMPLE FAMILY MEDICINE*XX*1234567893",
            "LX*1"]
    for i in range(n):
        segs += [f"CLP*B{i:07d}*1*225.00*111.82*30.00*12*ICN{i:09d}*11*1",
                 "NM1*QC*1*DOE*JANE****MI*W123456789",
                 "SVC*HC:99214*180.00*98.50**1", "DTM*472*20260402", "CAS*CO*45*51.50",
                 "CAS*PR*3*30.00", "REF*6R*1", "AMT*B6*128.50",
                 "SVC*HC:83036*45.00*13.32**1", "DTM*472*20260402", "CAS*CO*45*31.68",
                 "REF*6R*2", "AMT*B6*13.32"]
    segs.append(f"SE*{len(segs) - 1}*0001")
    segs += ["GE*1*1", "IEA*1*000000001"]
    return ("~\n".join(segs) + "~\n").encode()


def seed_claims(app: LedgerApplication, n: int, batch: int = 60) -> None:
    """N submitted claims, built in memory through the domain and saved 60 per save
    (saves of a few thousand events can stall in the recorder's pipeline, see README)."""
    pending = []
    for i in range(n):
        enc = Encounter.open(facility_id="FAC-01", patient_ref=f"PT-{i}", service_from=s.DOS,
                             service_to=None, place_of_service="11",
                             responsible_parties=s.parties(), actor=s.BILLER,
                             encounter_id=uuid.uuid4())
        enc.code_diagnosis("E11.9", code_set=app.code_set, actor=s.CODER_A)
        enc.add_service_line(procedure_code="99214", charge="180.00", pointers=[1],
                             rendering_npi=s.NPI, actor=s.CODER_A)
        enc.add_service_line(procedure_code="83036", charge="45.00", pointers=[1],
                             rendering_npi=s.NPI, actor=s.CODER_A)
        number = f"B{i:07d}"
        enc.create_claim(number, actor=s.BILLER)
        enc.scrub_claim(number, ruleset_version="bench", findings=list[Finding](),
                        actor=s.BILLER)
        enc.submit_claim(number, actor=s.BILLER)
        pending.append(enc)
        if len(pending) == batch:
            app.save(*pending)
            pending = []
    if pending:
        app.save(*pending)


def parse_only(data: bytes, gc_paused: bool = False) -> float:
    """Seconds to read + balance ``data``; ``gc_paused``: with the cyclic GC paused, as the
    importer runs its parse (the fairer baseline for the import's own parse)."""
    from ledger.gc_pause import gc_paused as paused
    from ledger.x12.remit835 import balance, read_835

    with paused() if gc_paused else nullcontext():
        t = time.perf_counter()
        parsed = read_835(data)
        issues = balance(parsed.remittances)
        elapsed = time.perf_counter() - t
    assert not parsed.errors and not issues
    return elapsed


def import_once(data: bytes, n: int) -> tuple[float, float, float]:
    """(import seconds, projection catch-up seconds or nan, seed seconds) on a fresh store."""
    from ledger.x12.importer import X12Importer

    with fresh_database("x12") as url:
        app = LedgerApplication(env=eventsourcing_env(url, Settings(database_url=url,
                                                                    cache_size=0)))
        try:
            t = time.perf_counter()
            seed_claims(app, n)
            seeded = time.perf_counter() - t
            catch_up = _projections(url)
            if catch_up is not None:
                catch_up()  # the seed is not part of the import figure
            importer = X12Importer(app, url)
            t = time.perf_counter()
            result = importer.import_bytes(data, "bench.835")
            elapsed = time.perf_counter() - t
            assert result.outcome == "posted" and result.posted == n, result.as_dict()
            proj = float("nan")
            if catch_up is not None:
                t = time.perf_counter()
                catch_up()
                proj = time.perf_counter() - t
        finally:
            app.close()
    return elapsed, proj, seeded


def _projections(url: str):
    """A callable that brings the read models (ledger.projections) up to the log's head."""
    try:
        from ledger.projections.runner import ProjectionRunner
    except ImportError:  # a tree without projections
        return None
    env = eventsourcing_env(url, Settings(database_url=url, cache_size=0))

    def catch_up() -> None:
        with ProjectionRunner(env) as runner:
            runner.catch_up()

    return catch_up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--claims", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not os.environ.get("LEDGER_DATABASE_URL"):  # a server of its own: benches run at once
        from ledger.persistence import embedded
        os.environ["LEDGER_DATABASE_URL"] = embedded.start(ROOT / ".ledger" / "bench-x12")
    n = args.claims
    data = generate_835(n)
    report = Report("x12_import")
    parse_times: list[float] = []
    paused_times: list[float] = []
    import_times: list[float] = []
    proj_times: list[float] = []
    for _ in range(args.runs):  # alternating: parse-only (GC on, GC paused), then an import
        parse_times.append(parse_only(data))
        paused_times.append(parse_only(data, gc_paused=True))
        elapsed, proj, seeded = import_once(data, n)
        import_times.append(elapsed)
        proj_times.append(proj)
        print(f"# round: parse {parse_times[-1]:.2f}s (GC paused {paused_times[-1]:.2f}s), "
              f"import {elapsed:.2f}s, projections {proj:.2f}s (seeding {n} claims took "
              f"{seeded:.1f}s)", flush=True)
    p, i = median(parse_times), median(import_times)
    pp = median(paused_times)
    report.add(figure="parse_only_s", claims=n, bytes=len(data), median=round(p, 3),
               runs=[round(x, 3) for x in parse_times])
    report.add(figure="parse_only_claims_per_s", claims=n, median=round(n / p))
    report.add(figure="parse_only_gc_paused_s", claims=n, median=round(pp, 3),
               runs=[round(x, 3) for x in paused_times],
               note="the importer parses with the GC paused: the stricter baseline")
    report.add(figure="import_s", claims=n, median=round(i, 3),
               runs=[round(x, 3) for x in import_times],
               note="parse + balance + match + post")
    report.add(figure="import_claims_per_s", claims=n, median=round(n / i),
               ratio_to_parse_only=round(i / p, 1),
               # issue 21's figure: posted claims/s over parse-only claims/s (target >= 0.3)
               posted_vs_parse_only=round(p / i, 3),
               posted_vs_parse_only_gc_paused=round(pp / i, 3))
    if not all(x != x for x in proj_times):
        pm = median([x for x in proj_times if x == x])
        report.add(figure="projections_catch_up_s", claims=n, median=round(pm, 3))
        report.add(figure="import_plus_projections_claims_per_s", claims=n,
                   median=round(n / (i + pm)))
    report.add(figure="machine", **machine(), date=str(date.today()))
    print(report.table())


if __name__ == "__main__":
    main()
