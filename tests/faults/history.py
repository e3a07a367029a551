"""The history check shared by the fault runs (kill_run, failover_run): after the faults, read
the whole log and check every acknowledged write is present exactly once (none lost, none
duplicated), versions are contiguous, and ``ledger verify`` and ``ledger projections verify``
are clean."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parents[2]
LEDGER = str(Path(sys.executable).with_name("ledger"))


class Write(Protocol):
    """What the check needs of a request a writer sent (tests.faults.kill_run.Request)."""

    key: str
    kind: str  # open | code | line
    marker: str  # what identifies the write in the history
    acknowledged: bool


def read_history(url: str) -> tuple[Counter[str], Counter[str], dict[str, list[int]]]:
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


def cli(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run([LEDGER, *args], env=env, cwd=ROOT, capture_output=True,
                          timeout=300, check=False)
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")[-2000:]


@dataclass
class HistoryCheck:
    lost: list[str]
    duplicated: list[str]
    gaps: list[str]
    verify_rc: int
    verify_out: str
    projections_rc: int
    projections_out: str

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.gaps or self.verify_rc
                    or self.projections_rc)

    def counts(self) -> dict[str, int]:
        return {"lost": len(self.lost), "duplicated": len(self.duplicated),
                "version_gaps": len(self.gaps)}

    def verdicts(self) -> dict[str, str]:
        return {"ledger_verify": "clean" if self.verify_rc == 0 else "FAILED",
                "projections_verify": "clean" if self.projections_rc == 0 else "FAILED"}

    def details(self, refused: list[str], hung: list[str], unacked: list[str]
                ) -> dict[str, Any]:
        return {"lost": self.lost[:10], "duplicated": self.duplicated[:10],
                "gaps": self.gaps[:5], "refused": refused[:5], "hung": hung,
                "unacknowledged": unacked[:10],
                "verify": self.verify_out if self.verify_rc else "",
                "projections_verify": self.projections_out if self.projections_rc else ""}


def check_history(url: str, requests: list[Write], env: dict[str, str]) -> HistoryCheck:
    """Read the log at ``url`` and check ``requests`` against it; ``env`` runs the two CLI
    verifications (the projections get up to 60 s to catch up)."""
    opened, lines, versions = read_history(url)
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
    verify_rc, verify_out = cli(["verify"], env)
    deadline = time.monotonic() + 60
    while True:
        proj_rc, proj_out = cli(["projections", "verify"], env)
        if proj_rc == 0 or time.monotonic() > deadline:
            break
        time.sleep(2)
    return HistoryCheck(lost, duplicated, gaps, verify_rc, verify_out, proj_rc, proj_out)


def print_result(title: str, result: dict[str, Any]) -> None:
    details = result.pop("details", None)
    print(f"{title} result: " + ", ".join(f"{k}={v}" for k, v in result.items()))
    for k, v in (details or {}).items():
        if v:
            print(f"  {k}: {v}")
