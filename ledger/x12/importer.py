"""Import X12 files into the ledger: 835 remittances (balanced, then posted), 837P/837I claims
(encounters brought in), 999/277CA acknowledgements.

835, in order, nothing posted until every step has passed:
1. read (``remit835.read_835``) and balance (``remit835.balance``): any error quarantines
   the whole file, with a report naming transaction, claim, line and rule;
2. idempotency: a remittance whose (payer id, trace, content hash) is already recorded is a
   duplicate and posts nothing; the same (payer id, trace) with other content is quarantined
   (``835.trace_conflict``);
3. matching: CLP01 -> encounter through the claim-number index (``ledger.x12.index``),
   narrowed by payer ids when several encounters carry the number; claims that match no
   submitted claim are recorded as unmatched (``x12_unmatched``), never dropped;
4. posting: every matched claim is posted on its in-memory encounter through the domain
   (``Encounter.post_adjudication`` / ``post_provider_adjustment``), which re-checks its own
   rules; a refusal quarantines the whole file;
5. one ``Application.save(*encounters)`` writes every event of the file and, in the same
   transaction (recorder side write), the ``x12_remittances`` and ``x12_unmatched`` rows.
   Files of more than ``max_events_per_save`` events are saved in chunks (see __init__).
   A lost race (another writer saved one of the encounters) re-runs from step 2.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import psycopg
from eventsourcing.persistence import IntegrityError

from ledger.application.loading import load_encounters
from ledger.config import get_settings
from ledger.domain.encounter import POSTABLE_STATUSES, DuplicatePayment, Encounter
from ledger.domain.encounter.remittance import reversed_adjudication
from ledger.domain.errors import LedgerError
from ledger.domain.model import (
    CLAIM_LINKED_PLB,
    REVERSAL_CODE,
    Actor,
    Adjudication,
    Adjustment,
    Claim,
    LineResult,
    RemittanceRef,
    ResponsibleParty,
)
from ledger.domain.scrubber import scrub
from ledger.domain.values import Money
from ledger.gc_pause import gc_paused
from ledger.x12 import index
from ledger.x12.acks import ParsedAcks, read_277ca, read_999
from ledger.x12.claims837 import (
    FACILITY_TO_POS,
    ClaimDraft,
    Parsed837,
    iter_segments,
    read_837_chunks,
)
from ledger.x12.exceptions import RaisedException, write_raised
from ledger.x12.model import Cas, ClaimPayment, Issue, ParsedFile, Remittance, ServicePayment
from ledger.x12.remit835 import balance, read_835
from ledger.x12.tokenizer import X12Error, file_hash, sniff, tokenize

log = logging.getLogger(__name__)

IMPORTER = Actor("x12-import", "system")
NAMESPACE = uuid.UUID("6f1d6c1e-3c1b-4a8e-9d6e-0a7c2b9e5f17")


@dataclass
class FileResult:
    """What importing one file did. ``outcome``: posted, quarantined, duplicate, imported,
    acknowledged, nothing (no claim could be applied) or error (not X12 at all)."""

    name: str
    kind: str
    outcome: str
    file_hash: str = ""
    posted: int = 0  # claims posted (835) / claims imported (837) / acks applied
    unmatched: int = 0
    duplicates: int = 0
    quarantined: int = 0  # 1 for a quarantined file; claims refused on an 837
    held: int = 0  # claims / PLBs not posted but put in the exceptions queue
    issues: list[Issue] = field(default_factory=list)
    exceptions: list[RaisedException] = field(default_factory=list)
    reconciliation: list[dict[str, Any]] = field(default_factory=list)
    unmatched_claims: list[dict[str, Any]] = field(default_factory=list)
    encounters: list[UUID] = field(default_factory=list)

    @property
    def rules(self) -> list[str]:
        return sorted({i.rule for i in self.issues if i.severity == "error"})

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "outcome": self.outcome,
                "file_hash": self.file_hash, "posted": self.posted,
                "unmatched": self.unmatched, "duplicates": self.duplicates,
                "quarantined": self.quarantined, "held": self.held, "rules": self.rules,
                "exceptions": [e.as_dict() for e in self.exceptions],
                "reconciliation": self.reconciliation,
                "issues": [i.as_dict() for i in self.issues],
                "unmatched_claims": self.unmatched_claims,
                "encounters": [str(e) for e in self.encounters]}


class _Retry(Exception):
    pass


class X12Importer:
    """Imports X12 files through a ``LedgerApplication`` and its database."""

    def __init__(self, app: Any, database_url: str, *, actor: Actor = IMPORTER,
                 max_attempts: int = 3, max_events_per_save: int = 20_000,
                 claims_per_chunk: int = 250, max_837_events_per_save: int = 2_500) -> None:
        self.app = app
        self.url = database_url
        self.actor = actor
        self.max_attempts = max_attempts
        # A remittance whose events fit in one save is one transaction (all-or-nothing); the
        # recorder sends large saves without libpq's pipeline mode (which deadlocked on a few
        # thousand events). Beyond max_events_per_save a file is saved in chunks, the remittance
        # record with the last chunk; every rule has passed before the first chunk, and the
        # per-claim remittance key makes a re-import after an interruption post only what is
        # missing.
        self.max_events_per_save = max_events_per_save
        # 837s are read ``claims_per_chunk`` claims at a time and their new encounters saved
        # every ``max_837_events_per_save`` events, so memory stays flat with the file's size
        self.claims_per_chunk = claims_per_chunk
        self.max_837_events_per_save = max_837_events_per_save

    # ------------------------------------------------------------------ entry points
    def import_path(self, path: str | Path) -> FileResult:
        p = Path(path)
        return self.import_bytes(p.read_bytes(), p.name)

    def import_bytes(self, data: bytes, name: str = "", *, expect: str | None = None) -> FileResult:
        fhash = file_hash(data) if data else ""
        kind = _sniff_large(data)  # a large 835/837 is not tokenized whole just to sniff it
        tokens = None
        if kind is None:
            try:
                tokens = tokenize(data)
            except X12Error as err:
                return FileResult(name, "unknown", "error", fhash,
                                  issues=[Issue(err.rule, err.message)])
            kind = sniff(tokens).kind
        if expect and kind not in expect.split("|"):
            return FileResult(name, kind, "error", fhash, issues=[Issue(
                "x12.transaction_type", f"file: a {kind} file, expected {expect}")])
        if kind == "835":
            return self._import_835(data, name)
        if kind in ("837P", "837I"):
            return self._import_837(data, name)
        if kind in ("999", "277CA") and tokens is not None:
            parsed = read_999(tokens) if kind == "999" else read_277ca(tokens)
            return self._import_acks(parsed, fhash, name)
        return FileResult(name, kind, "error", fhash, issues=[Issue(
            "x12.transaction_type", "file: not an 835, 837P, 837I, 999 or 277CA")])

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)

    # ------------------------------------------------------------------ 835
    def _import_835(self, data: bytes, name: str) -> FileResult:
        with gc_paused():
            return self._import_835_unpaused(data, name)

    def _import_835_unpaused(self, data: bytes, name: str) -> FileResult:
        parsed = read_835(data)
        issues = parsed.issues + balance(parsed.remittances)
        result = FileResult(name, "835", "posted", parsed.file_hash, issues=issues)
        if any(i.severity == "error" for i in issues):
            return self._quarantine(result, parsed.remittances)
        with self._connect() as conn:
            for attempt in range(1, self.max_attempts + 1):
                result = FileResult(name, "835", "posted", parsed.file_hash, issues=list(issues))
                try:
                    return self._post_835(conn, parsed, result)
                except _Retry:
                    log.info("835 import: lost a race with another writer (attempt %d)", attempt)
        raise LedgerError("file", "835.concurrency", "file: other writers kept changing the "
                          "encounters of this remittance; import it again")

    def _post_835(self, conn: Any, parsed: ParsedFile, result: FileResult) -> FileResult:
        todo: list[Remittance] = []
        for r in parsed.remittances:
            rows = conn.execute("SELECT content_hash FROM x12_remittances WHERE payer_id = %s"
                                " AND trace_number = %s", (r.payer_id, r.trace_number)).fetchall()
            hashes = {row[0] for row in rows}
            if r.content_hash in hashes:
                result.duplicates += len(r.claims)
            elif hashes:
                result.issues.append(Issue(
                    "835.trace_conflict", f"TRN02: payer {r.payer_id[:15]} trace "
                    f"{r.trace_number[:30]} was already posted with other content; a "
                    "corrected payment carries a new trace number", transaction=r.index))
            else:
                todo.append(r)
        if any(i.severity == "error" for i in result.issues):
            return self._quarantine(result, parsed.remittances)
        if not todo:
            result.outcome = "duplicate"
            return result
        index.catch_up(self.app, conn)
        index.catch_up_icn(self.app, conn)
        numbers = [c.claim_number for r in todo for c in r.claims]
        numbers += [p.reference for r in todo for p in r.provider_adjustments if p.reference]
        found = index.lookup(conn, numbers)
        icns = [c.payer_icn for r in todo for c in r.claims if c.payer_icn]
        icns += [p.reference for r in todo for p in r.provider_adjustments if p.reference]
        by_icn = index.lookup_icn(conn, icns)
        # load every encounter the remittance names at once (one query per 1,000; an id that
        # is no encounter is left to _load, which says why)
        wanted = [eid for c in numbers for eid, _ in found.get(c, [])]
        wanted += [eid for i in icns for eid in by_icn.get(i, [])]
        encounters: dict[UUID, Encounter] = load_encounters(self.app, conn, wanted)
        rows_remit: list[tuple] = []
        rows_unmatched: list[tuple] = []
        rows_provider: list[tuple] = []
        rows_recon: list[tuple] = []
        refusals: list[Issue] = []
        for r in todo:
            posted = unmatched = dup = held = 0
            posted_paid = held_paid = plb_claims = plb_provider = Money.zero()
            ref_date = r.payment_date or r.production_date or date.today()
            seen_claims: dict[str, int] = {}
            plb_report: list[dict[str, Any]] = []
            base = f"{r.payer_id}|{r.trace_number}|{r.content_hash}"

            def hold(kind: str, rule: str, claim: str, amount: Money, detail: dict[str, Any],
                     key: str, r: Remittance = r, base: str = base) -> None:
                result.exceptions.append(RaisedException(
                    kind, rule, f"{base}|{key}", claim, r.payer_id, r.trace_number,
                    amount.amount, parsed.file_hash, detail))

            for c in r.claims:
                target = self._match(c, r, found, by_icn, encounters)
                if isinstance(target, str):
                    unmatched += 1
                    held_paid = held_paid + c.paid
                    rows_unmatched.append((r.payer_id, r.trace_number, r.content_hash,
                                           c.claim_number, c.status, c.charge.amount,
                                           c.paid.amount, c.payer_icn, target))
                    result.unmatched_claims.append({
                        "transaction": r.index, "claim": c.claim_number, "status": c.status,
                        "charge": str(c.charge), "paid": str(c.paid), "reason": target})
                    hold("unmatched_claim", "835.claim_unmatched", c.claim_number, c.paid,
                         {"status": c.status, "charge": str(c.charge), "payer_icn":
                          c.payer_icn, "reason": target}, f"{c.claim_number}|{c.position}")
                    continue
                enc, claim = target
                # the same claim twice in one remittance (reversal + re-adjudication): each
                # occurrence gets its own key, deterministically
                n = seen_claims.get(claim.number, 0) + 1
                seen_claims[claim.number] = n
                ref = RemittanceRef(r.payer_id, r.trace_number,
                                    r.content_hash + (f"#{n}" if n > 1 else ""), ref_date)
                if f"{ref.key}|{claim.number}" in enc.remittances:
                    dup += 1
                    continue
                try:
                    lines = _line_results(enc, claim, c)
                except LineMatchError as err:
                    held += 1
                    held_paid = held_paid + c.paid
                    result.issues.append(Issue(err.rule, f"claim {c.claim_number[:38]}: "
                                               f"{err.message}", "warning", r.index,
                                               c.claim_number, err.position, c.segment))
                    hold("line_unmatched", err.rule, claim.wire_number, c.paid,
                         {"svc": err.position, "message": err.message, "status": c.status,
                          "claim_key": claim.number}, f"{c.claim_number}|{c.position}")
                    continue
                try:
                    done = enc.post_adjudication(
                        claim.number, status_code=c.status, charge=c.charge, paid=c.paid,
                        patient_responsibility=c.patient_responsibility,
                        payer_icn=c.payer_icn, adjudication_date=r.production_date or ref_date,
                        remittance=ref,
                        claim_adjustments=list(_adjustments(c.adjustments)),
                        lines=lines, remarks=list(c.remarks), actor=self.actor,
                        appeal_window_days=getattr(self.app, "appeal_window_days", 120),
                        drg_code=c.drg_code)
                except DuplicatePayment as err:
                    held += 1
                    held_paid = held_paid + c.paid
                    hold("duplicate_payment", err.rule, claim.wire_number, c.paid,
                         {"status": c.status, "payer_icn": c.payer_icn, "claim_key":
                          claim.number, "earlier_trace": err.earlier_trace, "trace":
                          r.trace_number, "earlier_remittance": err.earlier_remittance},
                         f"{c.claim_number}|{c.position}")
                    result.issues.append(Issue(err.rule, err.message, "warning", r.index,
                                               c.claim_number, segment=c.segment))
                    continue
                except LedgerError as err:
                    refusals.append(Issue(err.rule, f"claim {c.claim_number[:38]}: "
                                          f"{err.message}", transaction=r.index,
                                          claim=c.claim_number, segment=c.segment))
                    continue
                if done:
                    posted += 1
                    posted_paid = posted_paid + c.paid
                else:
                    dup += 1
            for k, p in enumerate(r.provider_adjustments):
                entry = {"reason": p.reason, "reference": p.reference, "amount": str(p.amount),
                         "applied_to": ""}
                plb_report.append(entry)
                if p.amount.is_zero():
                    continue
                if p.reason not in CLAIM_LINKED_PLB or not p.reference:
                    entry["applied_to"] = "provider account"
                    plb_provider = plb_provider + p.amount
                    rows_provider.append((r.payer_id, r.trace_number, r.content_hash,
                                          p.provider_id[:50], p.fiscal_date, p.reason,
                                          p.reference, p.amount.amount))
                    continue
                owner = self._plb_owner(p.reference, found, by_icn, encounters)
                rule = "plb.claim_not_found"
                message = "names no claim of ours (by payer ICN or claim number)"
                if owner is not None:
                    enc, claim = owner
                    try:
                        enc.post_provider_adjustment(
                            claim.number, reason_code=p.reason, reference=p.reference,
                            amount=p.amount, remittance_key=f"{base}|plb{k}", actor=self.actor)
                        entry["applied_to"] = claim.number
                        plb_claims = plb_claims + p.amount
                        continue
                    except LedgerError as err:
                        rule, message = err.rule, err.message
                held += 1
                hold("unposted_plb", rule, p.reference, p.amount,
                     {"reason": p.reason, "reference": p.reference, "message": message},
                     f"plb{k}")
            recon = _reconciliation(r, parsed.file_hash, plb_claims, plb_provider,
                                    posted_paid, held_paid, "posted")
            rows_recon.append(recon)
            result.reconciliation.append(_recon_dict(recon))
            result.posted += posted
            result.unmatched += unmatched
            result.duplicates += dup
            result.held += held
            rows_remit.append((r.payer_id, r.trace_number, r.content_hash, parsed.file_hash,
                               result.name[:200], r.total_paid.amount, r.payment_date, posted,
                               unmatched, dup, orjson.dumps({
                                   "transaction": r.index, "payer": r.payer_name,
                                   "claims": len(r.claims), "held": held,
                                   "provider_adjustments": plb_report,
                                   "warnings": [i.as_dict() for i in result.issues
                                                if i.severity == "warning"][:50]}).decode()))
        if refusals:
            result.issues.extend(refusals)
            result.exceptions = []
            result.reconciliation = []
            return self._quarantine(result, parsed.remittances)
        changed = [e for e in encounters.values() if e.pending_events]
        raised = list(result.exceptions)

        def side_write(curs: Any, *_: Any) -> None:
            _write_remittance_rows(curs, rows_remit, rows_unmatched)
            _write_money_rows(curs, rows_recon, rows_provider)
            write_raised(curs, raised)

        try:
            if changed:
                chunks = _chunks(changed, self.max_events_per_save)
                for k, chunk in enumerate(chunks):
                    last = k == len(chunks) - 1
                    self.app.save(*chunk, side_writes=[side_write] if last else [])
            else:
                with conn.transaction(), conn.cursor() as cur:
                    side_write(cur)
        except (IntegrityError, psycopg.errors.UniqueViolation):
            raise _Retry() from None
        result.encounters = [e.id for e in changed]
        if not result.posted:
            result.outcome = "duplicate" if result.duplicates and not result.unmatched \
                and not result.held else "nothing"
        return result

    def _load(self, eid: UUID, encounters: dict[UUID, Encounter]) -> Encounter:
        enc = encounters.get(eid)
        if enc is None:
            enc = self.app.get_encounter(eid)
            encounters[eid] = enc
        return enc

    def _match(self, c: ClaimPayment, r: Remittance, found: dict[str, list[tuple[UUID, str]]],
               by_icn: dict[str, list[UUID]], encounters: dict[UUID, Encounter],
               ) -> tuple[Encounter, Claim] | str:
        """The claim a CLP pays: CLP01 (CLM01) on an encounter, narrowed to the payer of the
        remittance (TRN03 / N1*PR / REF*2U) when the encounter names it; a reversal pairs
        with the adjudication it negates (CLP07 = its payer ICN when CLP01 is another claim's);
        the next payer's claim is created when its remittance comes first (COB crossover)."""
        eids = [eid for eid, _ in found.get(c.claim_number, [])]
        if c.status == REVERSAL_CODE and c.payer_icn:
            eids += by_icn.get(c.payer_icn, [])
        eids = list(dict.fromkeys(eids))
        if not eids:
            return "no claim with this number"
        encs = [self._load(eid, encounters) for eid in eids]
        by_payer = [e for e in encs if any(p.payer_id in r.payer_ids for p in e.parties
                                           if p.kind != "patient")]
        pool = by_payer or encs
        if len(pool) > 1:
            return f"ambiguous: {len(pool)} encounters carry this claim number"
        enc = pool[0]
        parties = [p for p in enc.parties if p.kind != "patient" and p.payer_id in r.payer_ids]
        payer_ids = {p.payer_id for p in parties}
        if c.status == REVERSAL_CODE:
            named = [x for x in enc.claims.values() if x.wire_number == c.claim_number or
                     (c.payer_icn and x.payer_icn == c.payer_icn)]
            named = [x for x in named if not payer_ids or x.payer_id in payer_ids] or named
            for x in named:
                if _reversible(x, c) is not None:
                    return enc, x
            return enc, named[0] if named else next(iter(enc.claims.values()))
        claim = enc.find_claim(c.claim_number, payer_ids)
        if claim is None and parties:
            primary = enc.find_claim(c.claim_number)
            party = parties[0]
            if primary is not None and primary.bucket != party.bucket:
                key = enc.create_crossover_claim(primary.number, bucket=party.bucket,
                                                 actor=self.actor)
                claim = enc.claims[key]
        if claim is None:
            claim = enc.find_claim(c.claim_number) if not payer_ids else None
        if claim is None:
            return "no live claim with this number for this payer"
        if claim.status not in POSTABLE_STATUSES:
            return f"claim not submitted (status {claim.status})"
        return enc, claim

    def _plb_owner(self, reference: str, found: dict[str, list[tuple[UUID, str]]],
                   by_icn: dict[str, list[UUID]], encounters: dict[UUID, Encounter],
                   ) -> tuple[Encounter, Claim] | None:
        """The claim a PLB names in PLB03-2: by the payer's ICN, else by claim number."""
        owners = []
        for eid in by_icn.get(reference, []):
            enc = self._load(eid, encounters)
            owners += [(enc, c) for c in enc.claims.values() if c.payer_icn == reference]
        if not owners:
            for eid, _ in found.get(reference, []):
                enc = self._load(eid, encounters)
                owed = [c for c in enc.claims_for(reference) if c.owed_back.is_positive()]
                live = enc.find_claim(reference)
                pick = owed[-1] if owed else live
                if pick is not None:
                    owners.append((enc, pick))
        return owners[-1] if len({(e.id, c.number) for e, c in owners}) == 1 else None

    def _quarantine(self, result: FileResult,
                    remittances: list[Remittance] | None = None) -> FileResult:
        result.outcome = "quarantined"
        result.quarantined = 1
        result.posted = 0
        report = {"issues": [i.as_dict() for i in result.issues], "file": result.name[:200]}
        first = next((i for i in result.issues if i.severity == "error"), None)
        raised = [RaisedException(
            "quarantined_file", first.rule if first else "x12.quarantined", result.file_hash,
            first.claim if first else "", file_hash=result.file_hash,
            detail={"file": result.name[:200], "kind": result.kind, "rules": result.rules,
                    "issues": [i.as_dict() for i in result.issues
                               if i.severity == "error"][:20]})]
        recon_rows = []
        for r in remittances or []:
            row = _reconciliation(r, result.file_hash, Money.zero(), Money.zero(),
                                  Money.zero(), _claims_paid(r), "quarantined")
            difference = _difference(r)
            recon_rows.append(row)
            result.reconciliation.append(_recon_dict(row))
            if not difference.is_zero():
                raised.append(RaisedException(
                    "unreconciled_remittance", "835.transaction_balance",
                    f"{r.payer_id}|{r.trace_number}|{r.content_hash}", "", r.payer_id,
                    r.trace_number, r.total_paid.amount, result.file_hash,
                    {"bpr_amount": str(r.total_paid), "difference": str(difference),
                     "claims_paid": row[5] and str(row[5]), "plb_total": str(row[6])}))
        result.exceptions = raised
        with self._connect() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("INSERT INTO x12_quarantine (file_hash, file_name, kind, rules, report)"
                        " VALUES (%s, %s, %s, %s, %s)",
                        (result.file_hash, result.name[:200], result.kind, result.rules,
                         orjson.dumps(report).decode()))
            _write_money_rows(cur, recon_rows, [])
            write_raised(cur, raised)
        log.warning("x12 import: %s file quarantined (%d error(s), rules %s)", result.kind,
                    len([i for i in result.issues if i.severity == "error"]),
                    ",".join(result.rules))
        return result

    # ------------------------------------------------------------------ 837
    def _import_837(self, data: bytes, name: str) -> FileResult:
        """Claims of an 837P/837I. Originals (frequency 1) open an encounter each; a
        replacement (7) or void (8) whose REF*F8 payer ICN or CLM01 names a claim already in
        the ledger corrects that claim on its encounter (lines revised to the replacement's,
        new claim ``replaces`` the original). The file is a duplicate only when its content
        is (same hash) or its ISA/GS/ST control numbers from the same sender (ISA06) are.
        Encounters are saved in chunks of at most ``max_events_per_save`` events, built and
        released chunk by chunk, so a 20,000-claim file stays small in memory."""
        fhash = file_hash(data)
        sender, isa13, gs06, controls = _envelope_837(data)
        result = FileResult(name, "837P", "imported", fhash)
        chunks = read_837_chunks(data, self.claims_per_chunk)
        first = next(chunks)
        result.kind = first.kind
        result.issues.extend(first.issues)
        if any(i.severity == "error" for i in first.issues):
            return self._quarantine(result)
        with self._connect() as conn:
            seen = conn.execute(
                "SELECT file_hash FROM x12_claim_files WHERE file_hash = %s OR (sender_id = %s"
                " AND interchange_control = %s AND group_control = %s AND"
                " transaction_controls && %s::text[]) LIMIT 1",
                (fhash, sender, isa13, gs06, controls)).fetchone()
            if seen is not None:
                result.outcome = "duplicate"
                result.duplicates = len(first.claims)
                result.issues.append(Issue(
                    "837.file_duplicate", "file: already imported (same content, or the same "
                    "ISA13/GS06/ST02 control numbers from the same sender)", "warning"))
                return result
            index.catch_up(self.app, conn)
            index.catch_up_icn(self.app, conn)
            return self._import_837_chunks(conn, first, chunks, result,
                                           (fhash, sender, isa13, gs06, controls, name[:200]))

    def _import_837_chunks(self, conn: Any, first: Parsed837, chunks: Iterator[Parsed837],
                           result: FileResult, file_row: tuple) -> FileResult:
        pending: list[Encounter] = []
        corrected: dict[UUID, Encounter] = {}
        saved: list[UUID] = []
        claims_seen = 0

        def flush(last: bool) -> None:
            batch = pending + [e for e in corrected.values() if e.pending_events] if last \
                else pending
            # the file is recorded (for duplicate detection) once something of it is saved
            row = (*file_row, claims_seen)
            writes = [lambda curs, *_: _write_claim_file(curs, row)] if last else []
            if batch or (writes and saved):
                try:
                    if batch:
                        self.app.save(*batch, side_writes=writes)
                    else:
                        with self._connect() as c2, c2.transaction(), c2.cursor() as cur:
                            _write_claim_file(cur, row)
                except (IntegrityError, psycopg.errors.UniqueViolation):
                    # a concurrent import of the same claims or file: report them as duplicates
                    result.duplicates += len(batch)
                    batch = []
            saved.extend(e.id for e in batch)
            pending.clear()  # released: a large file is held one chunk at a time
            batch = []
            _release_memory()

        for parsed in itertools.chain([first], chunks):
            if parsed is not first:
                known = {(i.rule, i.message) for i in result.issues}
                result.issues.extend(i for i in parsed.issues if (i.rule, i.message) not in known)
                if any(i.severity == "error" for i in parsed.issues):
                    result.quarantined += 1  # a slice the reader refused whole
                    continue
            claims_seen += len(parsed.claims)
            found = index.lookup(conn, [c.claim_number for c in parsed.claims])
            by_icn = index.lookup_icn(conn, [c.original_icn for c in parsed.claims
                                             if c.original_icn])
            self._drafts_837(parsed, found, by_icn, result, pending, corrected, flush)
            parsed.claims.clear()  # the slice's drafts are in the encounters now
        flush(True)
        result.posted = len(saved)
        result.encounters = saved
        if not saved:
            result.outcome = "duplicate" if result.duplicates and not result.quarantined \
                else "nothing"
        if result.quarantined:
            self._record_refused_claims(result)
        return result

    def _drafts_837(self, parsed: Parsed837, found: dict[str, list[tuple[UUID, str]]],
                    by_icn: dict[str, list[UUID]], result: FileResult,
                    pending: list[Encounter], corrected: dict[UUID, Encounter],
                    flush: Callable[[bool], None]) -> None:
        for draft in parsed.claims:
            result.issues.extend(draft.issues)
            if not draft.valid:
                result.quarantined += 1
                continue
            own_payer = next(p.payer_id for p in draft.payers if p.bucket == draft.bucket)
            on_file = [eid for eid, payer in found.get(draft.claim_number, [])
                       if payer == own_payer]
            try:
                if draft.frequency in ("7", "8"):
                    eids = list(dict.fromkeys(by_icn.get(draft.original_icn, []) + on_file))
                    if len(eids) > 1:
                        raise LedgerError("claim", "837.original_ambiguous",
                                          f"the correction names claims on {len(eids)} "
                                          "encounters; not guessed")
                    if eids:
                        enc = corrected.get(eids[0]) or self.app.get_encounter(eids[0])
                        self._correct(enc, draft, parsed.interchange_control,
                                      parsed.group_control, parsed.file_hash)
                        corrected[enc.id] = enc
                        continue
                    result.issues.append(Issue(
                        "837.original_not_found", f"claim {draft.claim_number[:38]}: frequency "
                        f"{draft.frequency} names no claim in the ledger (REF*F8 / CLM01); "
                        "imported as it stands", "warning", claim=draft.claim_number))
                elif on_file:
                    result.duplicates += 1  # this payer's claim is already in the ledger
                    continue
                enc = self._encounter_from(draft, parsed.interchange_control,
                                           parsed.group_control, parsed.file_hash)
            except LedgerError as err:
                result.quarantined += 1
                result.issues.append(Issue(err.rule, f"claim {draft.claim_number[:38]}: "
                                           f"{err.message}", claim=draft.claim_number))
                corrected.pop(getattr(err, "encounter_id", None), None)  # type: ignore[arg-type]
                continue
            pending.append(enc)
            if sum(len(e.pending_events) for e in pending) >= self.max_837_events_per_save:
                flush(False)

    def _correct(self, enc: Encounter, d: ClaimDraft, isa13: str, gs06: str,
                 fhash: str) -> None:
        """Apply a replacement (7) or void (8) to the encounter of the claim it names."""
        original = None
        for c in enc.claims.values():
            if d.original_icn and c.payer_icn == d.original_icn:
                original = c
        if original is None:
            original = enc.find_claim(d.claim_number)
        if original is None:
            raise LedgerError("claim", "837.original_not_found",
                              "the correction names no live claim on its encounter")
        line_nos = [n for n in original.line_nos if not enc.lines[str(n)].removed]
        if d.frequency == "7":
            kept = []
            for i, dl in enumerate(d.lines):
                if i < len(line_nos):
                    n = line_nos[i]
                    ln = enc.lines[str(n)]
                    changes: dict[str, Any] = {}
                    if dl.procedure_code and dl.procedure_code != ln.procedure_code:
                        changes["procedure_code"] = dl.procedure_code
                    if dl.charge != ln.current_charge:
                        changes["charge"] = dl.charge - ln.adjustment_total
                    if list(dl.modifiers) != list(ln.modifiers):
                        changes["modifiers"] = list(dl.modifiers)
                    if dl.units != ln.units:
                        changes["units"] = dl.units
                    if changes:
                        enc.revise_service_line(n, actor=self.actor, reason="837 replacement "
                                                "(frequency 7)", **changes)
                    kept.append(n)
                else:
                    kept.append(enc.add_service_line(
                        procedure_code=dl.procedure_code or None, charge=dl.charge,
                        actor=self.actor, units=dl.units, pointers=dl.pointers[:4],
                        modifiers=dl.modifiers, unit_type=dl.unit_type, line_date=dl.line_date,
                        rendering_npi=dl.rendering_npi, revenue_code=dl.revenue_code,
                        ndc=dl.ndc, ndc_quantity=dl.ndc_quantity, reason="837 replacement"))
            line_nos = kept
        key = enc.create_claim(d.claim_number, actor=self.actor, bucket=original.bucket,
                               frequency=d.frequency, original_icn=d.original_icn,
                               line_nos=line_nos, reason=f"837 frequency {d.frequency}")
        self._scrub_and_submit(enc, key, isa13, gs06, d.transaction_control, fhash)

    def _scrub_and_submit(self, enc: Encounter, key: str, isa13: str, gs06: str, st02: str,
                          fhash: str) -> None:
        claim = enc.claims[key]
        findings = scrub(enc, claim, self.app.code_set, self.app.edit_tables)
        if not enc.scrub_claim(key, ruleset_version=self.app.edit_tables.ruleset_version,
                               findings=findings, actor=self.actor):
            first = next(f for f in findings if f.severity == "error")
            raise LedgerError("claim", f"scrub.{first.rule_id}",
                              f"the scrubber refuses it: {first.rule_id} {first.message}")
        enc.submit_claim(key, actor=self.actor, interchange_control=isa13, group_control=gs06,
                         transaction_control=st02, batch_hash=fhash)

    def _record_refused_claims(self, result: FileResult) -> None:
        report = {"issues": [i.as_dict() for i in result.issues if i.claim],
                  "file": result.name[:200], "imported": result.posted}
        refused: dict[str, Issue] = {}
        for i in result.issues:
            if i.claim and i.severity == "error":
                refused.setdefault(i.claim, i)
        raised = [RaisedException("refused_claim", i.rule, f"{result.file_hash}|{claim}", claim,
                                  file_hash=result.file_hash,
                                  detail={"file": result.name[:200], "message": i.message})
                  for claim, i in refused.items()]
        result.exceptions.extend(raised)
        with self._connect() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("INSERT INTO x12_quarantine (file_hash, file_name, kind, rules, report)"
                        " VALUES (%s, %s, %s, %s, %s)",
                        (result.file_hash, result.name[:200], result.kind, result.rules,
                         orjson.dumps(report).decode()))
            write_raised(cur, raised)

    def _encounter_from(self, d: ClaimDraft, isa13: str, gs06: str, fhash: str) -> Encounter:
        institutional = d.kind == "837I"
        pos = FACILITY_TO_POS.get(d.facility_code, "99") if institutional else d.facility_code
        parties = [ResponsibleParty(p.bucket, "insurer", p.payer_id, p.name[:60], p.member_id)
                   for p in d.payers]
        parties.append(ResponsibleParty("patient", "patient", "", "", ""))
        eid = uuid.uuid5(NAMESPACE, f"837|{d.payers[0].payer_id}|{d.claim_number}")
        enc = Encounter.open(facility_id=d.billing_npi or "X12", patient_ref=_patient_ref(
            d.subscriber_key), service_from=d.service_from, service_to=d.service_to,
            place_of_service=pos, responsible_parties=parties, actor=self.actor,
            claim_type="institutional" if institutional else "professional",
            encounter_id=eid)
        for code in d.diagnoses:
            enc.code_diagnosis(code, code_set=self.app.code_set, actor=self.actor,
                               reason="837 import")
        line_nos = []
        for ln in d.lines:
            line_nos.append(enc.add_service_line(
                procedure_code=ln.procedure_code or None, charge=ln.charge, actor=self.actor,
                units=ln.units, pointers=ln.pointers[:4] if not institutional else
                ([1] if enc.diagnoses else []), modifiers=ln.modifiers,
                unit_type=ln.unit_type, line_date=ln.line_date,
                rendering_npi=ln.rendering_npi, revenue_code=ln.revenue_code,
                ndc=ln.ndc, ndc_quantity=ln.ndc_quantity, reason="837 import"))
        enc.create_claim(d.claim_number, actor=self.actor, bucket=d.bucket,
                         frequency=d.frequency, original_icn=d.original_icn,
                         line_nos=line_nos, reason="837 import")
        self._scrub_and_submit(enc, d.claim_number, isa13, gs06, d.transaction_control, fhash)
        return enc

    # ------------------------------------------------------------------ 999 / 277CA
    def _import_acks(self, parsed: ParsedAcks, fhash: str, name: str) -> FileResult:
        result = FileResult(name, parsed.kind, "acknowledged", fhash, issues=list(parsed.issues))
        if any(i.severity == "error" for i in parsed.issues):
            return self._quarantine(result)
        with self._connect() as conn:
            if conn.execute("SELECT 1 FROM x12_acknowledgements WHERE file_hash = %s",
                            (fhash,)).fetchone():
                result.outcome = "duplicate"
                result.duplicates = len(parsed.acks)
                return result
            index.catch_up(self.app, conn)
            encounters: dict[UUID, Encounter] = {}
            for ack in parsed.acks:
                if ack.source == "999":
                    targets = index.lookup_submission(conn, ack.group_control,
                                                      ack.transaction_control)
                else:
                    targets = [(ack.claim_number, eid) for eid, _ in
                               index.lookup(conn, [ack.claim_number]).get(ack.claim_number, [])]
                applied = False
                for number, eid in targets:
                    enc = self._load(eid, encounters)
                    claim = enc.claims.get(number)
                    if claim is None or claim.status not in ("submitted", "accepted"):
                        continue
                    try:
                        enc.acknowledge_claim(number, source=ack.source, accepted=ack.accepted,
                                              category=ack.category, message=ack.message,
                                              actor=self.actor)
                        applied = True
                        result.posted += 1
                    except LedgerError as err:
                        result.issues.append(Issue(err.rule, err.message, "warning",
                                                   claim=number))
                if not applied:
                    result.unmatched += 1
                    result.unmatched_claims.append({
                        "claim": ack.claim_number, "group_control": ack.group_control,
                        "transaction_control": ack.transaction_control,
                        "reason": "no submitted claim awaiting this acknowledgement"})
            changed = [e for e in encounters.values() if e.pending_events]
            row = (fhash, parsed.kind, name[:200], result.posted, result.unmatched,
                   orjson.dumps({"unmatched": result.unmatched_claims}).decode())

            def side_write(curs: Any, *_: Any) -> None:
                curs.execute("INSERT INTO x12_acknowledgements (file_hash, kind, file_name,"
                             " applied, unmatched, report) VALUES (%s, %s, %s, %s, %s, %s)", row)

            try:
                if changed:
                    self.app.save(*changed, side_writes=[side_write])
                else:
                    with conn.transaction(), conn.cursor() as cur:
                        side_write(cur)
            except (IntegrityError, psycopg.errors.UniqueViolation):
                result.outcome = "duplicate"
                result.duplicates, result.posted = result.posted, 0
                return result
        result.encounters = [e.id for e in changed]
        if not result.posted:
            result.outcome = "nothing"
        return result


# ---------------------------------------------------------------------- helpers
def _write_remittance_rows(curs: Any, remits: list[tuple], unmatched: list[tuple]) -> None:
    for row in remits:
        curs.execute(
            "INSERT INTO x12_remittances (payer_id, trace_number, content_hash, file_hash,"
            " file_name, total_paid, payment_date, claims_posted, claims_unmatched,"
            " claims_duplicate, report) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            row)
    for row in unmatched:
        curs.execute(
            "INSERT INTO x12_unmatched (payer_id, trace_number, content_hash, claim_number,"
            " status_code, charge, paid, payer_icn, reason) VALUES (%s, %s, %s, %s, %s, %s,"
            " %s, %s, %s) ON CONFLICT DO NOTHING", row)


_SNIFF_PREFIX = 64 * 1024


def _sniff_large(data: bytes) -> str | None:
    """The kind of a large 835/837 from its first segments (None: tokenize it whole). The
    whole file's tokens of a 20,000-claim 837 would hold ~150 MB for the whole import."""
    if len(data) <= 4 * _SNIFF_PREFIX:
        return None
    start = len(data) - len(data.lstrip())
    if data[start:start + 3] != b"ISA" or len(data) < start + 106:
        return None
    cut = data.rfind(data[start + 105:start + 106], start, start + _SNIFF_PREFIX)
    if cut < 0:
        return None
    try:
        found = sniff(tokenize(data[:cut + 1]))
    except X12Error:
        return None
    if found.kind == "835" or (found.kind in ("837P", "837I") and
                               ("X222" in found.version or "X223" in found.version)):
        return found.kind
    return None


def _release_memory() -> None:
    """Hand freed heap back to the OS after a chunk (glibc keeps it in its arenas otherwise,
    and a 20,000-claim file's peak RSS would grow with every chunk). A no-op elsewhere."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM: Any = None
def _write_claim_file(curs: Any, row: tuple) -> None:
    curs.execute("INSERT INTO x12_claim_files (file_hash, sender_id, interchange_control,"
                 " group_control, transaction_controls, file_name, claims) VALUES (%s, %s, %s,"
                 " %s, %s, %s, %s) ON CONFLICT (file_hash) DO NOTHING", row)


def _envelope_837(data: bytes) -> tuple[str, str, str, list[str]]:
    """(ISA06 sender, ISA13, GS06, every ST02) of a file, read from its raw text."""
    text = data.decode("latin-1")
    start = len(text) - len(text.lstrip())
    if not text.startswith("ISA", start) or len(text) - start < 106:
        return "", "", "", []
    element, terminator = text[start + 3], text[start + 105]
    isa = text[start:start + 105].split(element)
    sender = isa[6].strip() if len(isa) > 6 else ""
    isa13 = isa[13].strip() if len(isa) > 13 else ""
    gs06, controls = "", set()
    for seg in iter_segments(text, terminator, start):
        if seg.startswith("GS" + element) and not gs06:
            parts = seg.split(element)
            gs06 = parts[6] if len(parts) > 6 else ""
        elif seg.startswith("ST" + element):
            parts = seg.split(element)
            controls.add(parts[2] if len(parts) > 2 else "")
    return sender, isa13, gs06, sorted(controls)


def _write_money_rows(curs: Any, recon: list[tuple], provider: list[tuple]) -> None:
    for row in recon:
        curs.execute(
            "INSERT INTO x12_reconciliation (payer_id, trace_number, content_hash, file_hash,"
            " bpr_amount, claims_paid, plb_total, plb_claims, plb_provider, posted_paid,"
            " held_paid, difference, reconciled, outcome) VALUES (%s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (payer_id, trace_number, content_hash)"
            " DO NOTHING", row)
    for row in provider:
        curs.execute(
            "INSERT INTO x12_provider_account (payer_id, trace_number, content_hash,"
            " provider_id, fiscal_date, reason, reference, amount) VALUES (%s, %s, %s, %s, %s,"
            " %s, %s, %s) ON CONFLICT DO NOTHING", row)


RECON_COLUMNS = ("payer_id", "trace_number", "content_hash", "file_hash", "bpr_amount",
                 "claims_paid", "plb_total", "plb_claims", "plb_provider", "posted_paid",
                 "held_paid", "difference", "reconciled", "outcome")


def _claims_paid(r: Remittance) -> Money:
    return sum((c.paid for c in r.claims), Money.zero())


def _plb_total(r: Remittance) -> Money:
    return sum((p.amount for p in r.provider_adjustments), Money.zero())


def _difference(r: Remittance) -> Money:
    """BPR02 against what the claims paid less the PLB adjustments: zero when it reconciles."""
    return r.total_paid - (_claims_paid(r) - _plb_total(r))


def _reconciliation(r: Remittance, fhash: str, plb_claims: Money, plb_provider: Money,
                    posted_paid: Money, held_paid: Money, outcome: str) -> tuple:
    """The x12_reconciliation row of a remittance (RECON_COLUMNS)."""
    claims_paid, plb_total, difference = _claims_paid(r), _plb_total(r), _difference(r)
    return (r.payer_id, r.trace_number, r.content_hash, fhash, r.total_paid.amount,
            claims_paid.amount, plb_total.amount, plb_claims.amount, plb_provider.amount,
            posted_paid.amount, held_paid.amount, difference.amount, difference.is_zero(),
            outcome)


def _recon_dict(row: tuple) -> dict[str, Any]:
    return {k: (str(v) if not isinstance(v, bool | str) and v is not None else v)
            for k, v in zip(RECON_COLUMNS, row, strict=True) if k != "content_hash"}


def _chunks(encounters: list[Encounter], max_events: int) -> list[list[Encounter]]:
    out: list[list[Encounter]] = [[]]
    size = 0
    for enc in encounters:
        n = len(enc.pending_events)
        if out[-1] and size + n > max_events:
            out.append([])
            size = 0
        out[-1].append(enc)
        size += n
    return out


def _patient_ref(key: str) -> str:
    """A stable surrogate patient reference: a keyed hash, never the member id or name."""
    secret = get_settings().patient_ref_key.encode()
    digest = hmac.new(secret, key.upper().encode("utf-8"), hashlib.sha256).hexdigest()
    return "x12-" + digest[:20]


def _reversible(claim: Claim, c: ClaimPayment) -> Adjudication | None:
    """The posted adjudication of ``claim`` that a reversal CLP negates: the domain's rule
    (``reversed_adjudication``), on the CLP's amounts and every CAS of the claim and its SVCs."""
    return reversed_adjudication(claim, c.charge, c.paid, c.patient_responsibility,
                                 c.payer_icn, [*_adjustments(c.adjustments),
                                               *(a for s in c.services
                                                 for a in _adjustments(s.adjustments))])


def _adjustments(cas: list[Cas]) -> tuple[Adjustment, ...]:
    """The domain's adjustments of the CAS segments of a CLP or SVC loop."""
    return tuple(Adjustment(a.group, a.reason, a.amount, a.quantity) for a in cas)


class LineMatchError(LedgerError):
    def __init__(self, position: int, rule: str, message: str) -> None:
        super().__init__(f"SVC[{position}]", rule, message)
        self.position = position


def _control_line(s: ServicePayment) -> int | None:
    ctl = s.control_number.strip().rsplit("-", 1)[-1]
    return int(ctl) if ctl.isdigit() else None


def _line_results(enc: Encounter, claim: Claim, c: ClaimPayment) -> list[LineResult]:
    """Map SVC loops to the claim's lines, never by guess: REF*6R (the line item control
    number the 837 export writes), then SVC06 (the procedure as submitted, when the payer
    changed it), then procedure + modifiers + charge + units (service date breaks ties between
    otherwise different lines). An SVC matching no line, or two different lines, raises
    ``LineMatchError`` (the claim is held in the exceptions queue, not posted). A reversal's
    SVCs are matched against the lines of the adjudication it negates."""
    reversal = c.status == REVERSAL_CODE
    if reversal:
        original = _reversible(claim, c)
        if original is None:
            return _reversal_without_original(enc, claim, c)
        pool = {r.line_no: (r.procedure_code, [], -r.submitted, r.units, None)
                for r in original.lines}
    else:
        pool = {}
        for n in claim.line_nos:
            ln = enc.lines[str(n)]
            if ln.removed:
                continue
            pool[n] = (ln.procedure_code, list(ln.modifiers), ln.current_charge, ln.units,
                       ln.line_date)
    free = list(pool)
    chosen: dict[int, int] = {}

    def pick(s: ServicePayment, candidates: list[int], step: str) -> bool:
        if not candidates:
            return False
        if len(candidates) > 1 and s.service_date is not None:
            dated = [n for n in candidates if pool[n][4] == s.service_date]
            candidates = dated or candidates
        distinct = {(pool[n][0], tuple(pool[n][1]), pool[n][2], pool[n][3], pool[n][4])
                    for n in candidates}
        if len(distinct) > 1:
            raise LineMatchError(s.position, "835.line_ambiguous",
                                 f"SVC {s.position} ({step}) matches lines "
                                 f"{', '.join(str(n) for n in candidates)}; not guessed")
        chosen[s.position] = candidates[0]
        free.remove(candidates[0])
        return True

    for s in c.services:  # 1. REF*6R, when it is one of ours (same code as billed or charge)
        n = _control_line(s)
        if n is not None and n in free and (
                pool[n][0] in (s.procedure_code, s.original_code) or pool[n][2] == s.charge):
            chosen[s.position] = n
            free.remove(n)
    for s in c.services:  # 2. SVC06: the code as submitted
        if s.position in chosen or not s.original_code:
            continue
        pick(s, [n for n in free if pool[n][0] == s.original_code and
                 pool[n][2] == s.charge], "SVC06")
    for s in c.services:  # 3. procedure + modifiers + charge + units
        if s.position in chosen:
            continue
        code = s.procedure_code
        cands = [n for n in free if pool[n][0] == code and pool[n][2] == s.charge and
                 pool[n][3] == s.units and (reversal or pool[n][1] == s.modifiers)]
        if not pick(s, cands, "procedure, modifiers, charge, units") and s.revenue_code and \
                not code:
            pick(s, [n for n in free if enc.lines[str(n)].revenue_code == s.revenue_code
                     and pool[n][2] == s.charge], "revenue code, charge")
        if s.position not in chosen:
            raise LineMatchError(s.position, "835.line_unmatched",
                                 f"SVC {s.position} ({code or s.revenue_code} {s.charge} x "
                                 f"{s.units}) matches no line of the claim")
    return [_line_result(s, chosen[s.position], pool[chosen[s.position]][0])
            for s in c.services]


def _line_result(s: ServicePayment, no: int, code: str = "") -> LineResult:
    """Line ``no``'s result as the SVC says it (``code``: the line's procedure when the SVC
    names none)."""
    return LineResult(no, s.procedure_code or code, s.charge, s.paid, s.allowed, s.units,
                      _adjustments(s.adjustments), tuple(s.remarks))


def _reversal_without_original(enc: Encounter, claim: Claim, c: ClaimPayment,
                               ) -> list[LineResult]:
    """No adjudication to pair with: map by control number or in order, so the domain refuses
    the reversal with its own rule (reversal.pairs_with_original)."""
    nos = list(claim.line_nos)
    out = []
    for i, s in enumerate(c.services):
        n = _control_line(s)
        out.append(_line_result(s, n if n in nos else nos[min(i, len(nos) - 1)]))
    return out


__all__ = ["X12Importer", "FileResult", "Money"]
