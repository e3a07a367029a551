"""FHIR bulk export (``ledger fhir export``): time and peak memory at two store sizes, to show
the export streams in constant memory.

The store is filled with whole encounters (the scenario-1 claim life: 1 claim, 15 events each)
by COPY (``bench.bulk.fill``); each export runs in a fresh child process so its peak RSS
(``ru_maxrss``) is its own. Baseline in the same run: a child that only imports the same
modules and builds the application (the RSS floor), and the raw read + decode of the events
(no FHIR). Sizes: ``BENCH_FHIR_SIZES`` claims (default ``10000,100000``).

    .venv/bin/python -m bench.fhir_export
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from bench.bulk import fill, template_events
from bench.common import Report, fresh_database, machine
from ledger.application.service import LedgerApplication
from ledger.config import Settings
from ledger.persistence.database import eventsourcing_env

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from ledger.application.service import LedgerApplication
from ledger.config import Settings
from ledger.persistence.database import eventsourcing_env
from ledger.fhir.export import export, _streams
import psycopg
url, mode, out = sys.argv[1], sys.argv[2], sys.argv[3]
app = LedgerApplication(env=eventsourcing_env(url, Settings(database_url=url, cache_size=0)))
t = time.perf_counter()
result = {}
if mode == "export":
    result = export(url, app.mapper, Path(out)).as_dict()
elif mode == "decode":
    n = 0
    with psycopg.connect(url) as conn:
        for events in _streams(conn, app.mapper, 5000):
            n += len(events)
    result = {"events": n}
result["seconds"] = time.perf_counter() - t
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
app.close()
print(json.dumps(result))
"""


def child(url: str, mode: str, out: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, url, mode, out], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    sizes = [int(s) for s in os.environ.get("BENCH_FHIR_SIZES", "10000,100000").split(",")]
    report = Report("fhir export (NDJSON per type, streaming)")
    print(json.dumps({"machine": machine()}), flush=True)
    with fresh_database("fhir") as url:
        app = LedgerApplication(env=eventsourcing_env(url, Settings(database_url=url,
                                                                    cache_size=0)))
        per = len(template_events(app))
        have = 0
        for size in sorted(sizes):
            fill(url, app, (size - have) * per)
            have = size
            with tempfile.TemporaryDirectory() as out:
                floor = child(url, "idle", out)
                decode = child(url, "decode", out)
                run = child(url, "export", out)
                ndjson_mb = sum(os.path.getsize(os.path.join(out, f))
                                for f in os.listdir(out)) / 1e6
            report.add(claims=size, events=decode["events"],
                       export_s=round(run["seconds"], 1),
                       claims_per_s=round(size / run["seconds"]),
                       resources=sum(run["counts"].values()),
                       ndjson_mb=round(ndjson_mb, 1),
                       peak_rss_mb=round(run["peak_rss_mb"], 1),
                       idle_rss_mb=round(floor["peak_rss_mb"], 1),
                       decode_only_s=round(decode["seconds"], 1),
                       decode_rss_mb=round(decode["peak_rss_mb"], 1))
        app.close()
    print(report.table())


if __name__ == "__main__":
    main()
