"""One money model, as a property (issue 12 item 7): random valid command sequences through the
application — open, code, lines, supplies, claims, scrub, submit, adjudications (paid,
forwarded to a secondary, denied, appealed), reversals, replacements and voids, the
secondary's adjudication, PLB, statements, patient payments, refunds and write-offs — and
after every step the claims read model (encounter balances, claims, claim lines, payer
balances with aging, patient balances), caught up on real PostgreSQL, equals what the
Encounter aggregate says; no payer bucket is negative unless an explicit credit/recoupment
event says why.

``check`` returns the mismatches it finds; the last tests break one projection handler on
purpose and show that ``check`` reports it.
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row

from ledger.domain import figures
from ledger.domain.encounter import Encounter
from ledger.domain.errors import LedgerError
from ledger.domain.model import Adjustment, LineResult
from ledger.domain.values import Money
from ledger.projections import claims as claims_view
from ledger.projections.runner import ProjectionRunner
from tests import builders as s

# ruff: noqa: F811 - the private_* fixtures below are imported, then requested by name
from tests.integration.test_projections_fixtures import (  # noqa: F401
    private_app,
    private_db,
    private_env,
)

pytestmark = pytest.mark.postgres

D = Decimal
ZERO = D("0.00")
# Events that may legitimately leave a payer owing money back (a payer bucket below zero).
CREDIT_EVENTS = frozenset({"ProviderAdjustmentPosted", "PaymentRecouped", "PayerCreditPosted",
                           "OverpaymentRecorded"})
SERVICES = ("99213", "99214", "36415", "83036", "97110")
SUPPLIES = ("A4550", "A6402")
_numbers = itertools.count(1)
# bounded in `make test`; LEDGER_PROPERTY_EXAMPLES=200 LEDGER_PROPERTY_RANDOM=1 to explore
EXAMPLES = int(os.environ.get("LEDGER_PROPERTY_EXAMPLES", "12"))


def m(value: Any) -> Money:
    return Money(D(value).quantize(D("0.01")))


# ---------------------------------------------------------------- the property
def _expected(app: Any, eid: UUID) -> tuple[Encounter, dict[str, D], dict[str, D]]:
    """The aggregate, and per claim the write-offs booked to it and its PLB total (facts
    the aggregate keeps only as events)."""
    enc = app.get_encounter(eid)
    written: dict[str, D] = defaultdict(lambda: ZERO)
    plb: dict[str, D] = defaultdict(lambda: ZERO)
    for e in app.history(eid):
        name = type(e).__name__
        if name == "WriteOffPosted" and e.claim_number and \
                enc.claims[e.claim_number].bucket == e.bucket:
            written[e.claim_number] += e.amount.amount
        elif name == "ProviderAdjustmentPosted":
            plb[e.claim_number] += e.amount.amount
    return enc, written, plb


def check(conn: psycopg.Connection[Any], app: Any, eids: list[UUID]) -> list[str]:
    """Every difference between the claims read model and the aggregates of ``eids`` (the
    only encounters in the database), and every unexplained negative payer bucket."""
    problems: list[str] = []

    def same(what: str, view: Any, agg: Any) -> None:
        if view != agg:
            problems.append(f"{what}: view {view!r} != aggregate {agg!r}")

    payer: dict[tuple[str, str], list[D]] = defaultdict(lambda: [ZERO] * 11)
    for eid in eids:
        enc, written, plb = _expected(app, eid)
        row = conn.execute("SELECT * FROM claims_encounters WHERE encounter_id = %s",
                           (eid,)).fetchone()
        if row is None:
            problems.append(f"encounter {eid}: no row")
            continue
        for b in figures.BUCKETS:
            same(f"{eid} balance {b}", row[f"balance_{b}"], enc.balance(b).amount)
        same(f"{eid} total_charge", row["total_charge"], enc.total_charge.amount)
        same(f"{eid} version", row["version"], enc.version)
        for name in ("patient_paid", "refunded", "written_off"):
            same(f"{eid} {name}", row[name], getattr(enc, name).amount)
        for name in ("deductible", "coinsurance", "copay"):
            same(f"{eid} {name}", row[name], enc.patient_share.get(name, m(0)).amount)
        same(f"{eid} provider_adjustments", row["provider_adjustments"],
             sum((a.amount for a in enc.provider_adjustments), ZERO))
        history = {type(e).__name__ for e in app.history(eid)}
        for p in enc.parties:
            if p.kind != "patient" and enc.balance(p.bucket).is_negative() and \
                    not history & CREDIT_EVENTS:
                problems.append(f"{eid} {p.bucket} bucket is {enc.balance(p.bucket)} with "
                                "no credit or recoupment event")
        claims = {r["claim_number"]: r for r in conn.execute(
            "SELECT * FROM current_claims WHERE encounter_id = %s", (eid,))}
        same(f"{eid} claims", sorted(claims), sorted(enc.claims))
        for number, c in enc.claims.items():
            r = claims.get(number)
            if r is None:
                continue
            adjustments = figures.claim_adjustments(c)
            outstanding = figures.claim_outstanding(c, m(written[number])).amount
            for name, agg in (
                    ("status", c.status), ("paid", c.paid.amount),
                    ("patient_responsibility", c.patient_responsibility.amount),
                    ("allowed", figures.claim_allowed(c).amount),
                    ("contractual", figures.adjustment_total(adjustments, ("CO",)).amount),
                    ("outstanding", outstanding), ("payer_icn", c.payer_icn),
                    ("replaces", c.replaces), ("replaced_by", c.replaced_by),
                    ("submitted_charge", c.submitted_charge.amount if c.submitted_charge
                     else None), ("written_off", written[number]),
                    ("provider_adjustments", plb[number]), ("appeal_open", c.appeal_open)):
                same(f"{eid} claim {number} {name}", r[name], agg)
            money = figures.claim_line_money(c)
            for ln in conn.execute("SELECT * FROM current_claim_lines WHERE encounter_id = %s "
                                   "AND claim_number = %s", (eid, number)):
                lm = money.get(ln["line_no"], figures.LineMoney())
                same(f"{eid} claim {number} line {ln['line_no']} paid", ln["paid"],
                     lm.paid.amount)
                same(f"{eid} claim {number} line {ln['line_no']} allowed", ln["allowed"],
                     lm.allowed.amount)
            kind = next(p.kind for p in enc.parties if p.bucket == c.bucket)
            total = payer[(c.payer_id, kind)]
            for i, v in enumerate((
                    D(1), D(1 if c.status in figures.OPEN_STATUSES else 0),
                    figures.billed(c).amount, figures.claim_allowed(c).amount, c.paid.amount,
                    figures.adjustment_total(adjustments, ("CO",)).amount,
                    figures.adjustment_total(adjustments, ("OA", "PI")).amount,
                    c.patient_responsibility.amount, written[number], plb[number],
                    outstanding)):
                total[i] += v
        patient = conn.execute("SELECT * FROM patient_balances WHERE patient_ref = %s",
                               (enc.patient_ref,)).fetchone()
        bal = enc.balance("patient").amount
        same(f"{eid} patient owed/credit", (patient["owed"], patient["credit"]) if patient
             else None, (max(bal, ZERO), max(-bal, ZERO)))
    columns = ("claims", "open_claims", "billed", "allowed", "paid", "contractual",
               "other_adjustments", "patient_responsibility", "written_off",
               "provider_adjustments", "outstanding")
    rows = {(r["payer_id"], r["party_kind"]): r for r in
            conn.execute("SELECT * FROM payer_balances")}
    same("payer rows", sorted(rows), sorted(k for k, v in payer.items() if any(v)))
    for key, values in payer.items():
        r = rows.get(key)
        if r is not None:
            for name, v in zip(columns, values, strict=True):
                same(f"payer {key} {name}", D(r[name]), v)
            aged = conn.execute("SELECT COALESCE(sum(outstanding), 0) FROM payer_aging WHERE "
                                "payer_id = %s AND party_kind = %s", key).fetchone()
            same(f"payer {key} aging total", aged["coalesce"], r["outstanding"])
    return problems


# ---------------------------------------------------------------- valid commands
class Session:
    """One encounter driven by random valid commands."""

    def __init__(self, app: Any, data: Any, with_secondary: bool) -> None:
        self.app, self.data = app, data
        n = next(_numbers)
        self.patient = f"PT-P{n:05d}"
        self.eid = s.open_encounter(app, patient_ref=self.patient, payer="PAYER-P",
                                    secondary="PAYER-S" if with_secondary else None)
        s.code(app, self.eid, "E11.9")
        self.traces = itertools.count(1)
        self.prefix = f"P{n}"
        self.refused = 0

    @property
    def enc(self) -> Encounter:
        return self.app.get_encounter(self.eid)

    def run(self, command: str, **kw: Any) -> None:
        self.app.execute(self.eid, command, actor=s.BILLER, **kw)

    def trace(self) -> str:
        return f"{self.prefix}-T{next(self.traces)}"

    def draw(self, strategy: Any) -> Any:
        return self.data.draw(strategy)

    # ---- what can be done now
    def actions(self) -> list[str]:
        enc = self.enc
        out = ["add_line", "add_supply", "patient_payment"]
        claims = list(enc.claims.values())
        if enc.active_lines() and not any(c.bucket == "primary" and not c.replaced_by and
                                          c.status not in ("voided", "closed")
                                          for c in claims):
            out.append("create_primary")
        for c in claims:
            if c.status in ("draft", "scrubbed", "rejected") and enc.claim_lines(c):
                out.append("scrub")
            if c.status == "scrubbed" and c.scrub_revision == enc.content_revision:
                out.append("submit")
            if self._adjudicable(enc, c):
                out += ["adjudicate", "deny"] if c.bucket == "primary" else ["adjudicate"]
            if self._standing(c) is not None and self._standing(c).status_code != "4":
                out.append("reverse")
            if c.bucket == "primary" and c.payer_icn and not c.replaced_by and \
                    c.status in ("paid", "adjudicated"):
                out += ["replace", "void", "plb"]
            if c.status == "denied" and c.denial_seq is not None:
                out.append("appeal")
            if c.appeal_open:
                out.append("decide")
        if enc.balance("secondary").is_positive() and not any(
                c.bucket == "secondary" for c in claims):
            out.append("create_secondary")
        if enc.patient_balance().is_positive():
            out += ["statement", "write_off"]
        if enc.patient_balance().is_negative():
            out.append("refund")
        if enc.balance("primary").is_positive() and claims:
            out.append("write_off")
        return sorted(set(out))

    @staticmethod
    def _standing(c: Any) -> Any:
        for a in reversed(c.adjudications):
            if a.status_code != "22":
                return None if a.reversed else a
        return None

    def _adjudicable(self, enc: Encounter, c: Any) -> bool:
        if c.status not in ("submitted", "accepted", "in_appeal") or \
                self._standing(c) is not None:
            return False
        if c.replaces and self._standing(enc.claims[c.replaces]) is not None:
            return False  # the payer reverses the original before paying the replacement
        if c.bucket == "secondary":
            return enc.balance("secondary").is_positive()
        return bool(enc.claim_lines(c))

    # ---- the commands
    def step(self, action: str) -> None:
        enc = self.enc
        claims = list(enc.claims.values())
        if action == "add_line":
            charge = self.draw(st.sampled_from((15, 45, 80, 130, 180, 240)))
            s.line(self.app, self.eid, self.draw(st.sampled_from(SERVICES)), f"{charge}.00",
                   [1])
        elif action == "add_supply":
            self.app.execute(self.eid, "add_supply", actor=s.CODER_A,
                             procedure_code=self.draw(st.sampled_from(SUPPLIES)),
                             charge=f"{self.draw(st.sampled_from((12, 35)))}.00", pointers=[1])
        elif action == "create_primary":
            self.run("create_claim", claim_number=f"{self.prefix}-C{len(claims) + 1}")
        elif action == "create_secondary":
            self.run("create_claim", claim_number=f"{self.prefix}-S{len(claims) + 1}",
                     bucket="secondary")
        elif action == "scrub":
            c = self.draw(st.sampled_from([c for c in claims if c.status in
                                           ("draft", "scrubbed", "rejected")]))
            self.app.scrub_claim(self.eid, c.number, actor=s.BILLER)
        elif action == "submit":
            c = self.draw(st.sampled_from([c for c in claims if c.status == "scrubbed"]))
            self.run("submit_claim", claim_number=c.number)
        elif action == "adjudicate":
            c = self.draw(st.sampled_from([c for c in claims if self._adjudicable(enc, c)]))
            self._adjudicate(enc, c)
        elif action == "deny":
            c = self.draw(st.sampled_from([c for c in claims if c.bucket == "primary" and
                                           self._adjudicable(enc, c)]))
            lines = [LineResult(ln.line_no, ln.procedure_code, ln.current_charge, m(0), None,
                                ln.units, (Adjustment("CO", "50", ln.current_charge),))
                     for ln in enc.claim_lines(c)]
            self._post(c, "4", enc.claim_charge(c), m(0), m(0), [], lines)
        elif action == "reverse":
            c = self.draw(st.sampled_from([c for c in claims if self._standing(c) is not None
                                           and self._standing(c).status_code != "4"]))
            a = self._standing(c)
            lines = [LineResult(r.line_no, r.procedure_code, -r.submitted, -r.paid,
                                -r.allowed if r.allowed is not None else None, r.units,
                                tuple(Adjustment(x.group, x.reason, -x.amount)
                                      for x in r.adjustments)) for r in a.lines]
            claim_level = [Adjustment(x.group, x.reason, -x.amount) for x in a.adjustments
                           if x.line_no is None]
            self._post(c, "22", -a.charge, -a.paid, -a.patient_responsibility, claim_level,
                       lines)
        elif action in ("replace", "void"):
            c = self.draw(st.sampled_from([c for c in claims if c.bucket == "primary" and
                                           c.payer_icn and not c.replaced_by and
                                           c.status in ("paid", "adjudicated")]))
            self.run("create_claim", claim_number=f"{self.prefix}-R{len(claims) + 1}",
                     frequency="7" if action == "replace" else "8", original_icn=c.payer_icn)
        elif action == "plb":
            c = self.draw(st.sampled_from([c for c in claims if c.payer_icn]))
            code, amount = self.draw(st.sampled_from((("WO", "10.00"), ("L6", "-1.25"),
                                                      ("FB", "5.00"))))
            self.run("post_provider_adjustment", claim_number=c.number, reason_code=code,
                     reference=c.payer_icn, amount=amount, remittance_key=self.trace())
        elif action == "appeal":
            c = self.draw(st.sampled_from([c for c in claims if c.status == "denied" and
                                           c.denial_seq is not None]))
            self.run("file_appeal", claim_number=c.number, filed_on=date(2026, 5, 1),
                     reason="records attached")
        elif action == "decide":
            c = self.draw(st.sampled_from([c for c in claims if c.appeal_open]))
            self.run("decide_appeal", claim_number=c.number,
                     outcome=self.draw(st.sampled_from(("overturned", "upheld"))),
                     decided_on=date(2026, 6, 1), reason="payer letter")
        elif action == "statement":
            self.run("issue_statement", statement_date=date(2026, 5, 2))
        elif action == "patient_payment":
            self.run("record_patient_payment",
                     amount=f"{self.draw(st.sampled_from((5, 10, 25, 50)))}.00",
                     method="card", received_on=date(2026, 5, 3))
        elif action == "refund":
            credit = -enc.patient_balance()
            self.run("issue_refund", amount=self._part(credit), method="check",
                     issued_on=date(2026, 5, 4), reason="credit balance")
        elif action == "write_off":
            bucket = self.draw(st.sampled_from([b for b in ("primary", "patient")
                                                if enc.balance(b).is_positive()]))
            on = [c.number for c in claims if c.bucket == bucket] if bucket != "patient" \
                else []
            self.run("write_off", amount=self._part(enc.balance(bucket)), bucket=bucket,
                     category="small_balance", approver_id="mgr-1", reason="policy",
                     claim_number=self.draw(st.sampled_from(on)) if on else "")
        else:  # pragma: no cover - a typo in actions()
            raise AssertionError(action)

    def _part(self, amount: Money) -> str:
        share = self.draw(st.sampled_from((D("1"), D("0.5"), D("0.1"))))
        value = max((amount.amount * share).quantize(D("0.01")), D("0.01"))
        return str(min(value, amount.amount))

    def _adjudicate(self, enc: Encounter, c: Any) -> None:
        if c.bucket == "secondary":
            # the secondary adjudicates what the primary forwarded to it (claim level)
            owed = enc.balance("secondary")
            pr = m((owed.amount * self.draw(st.sampled_from((0, D("0.2"))))).quantize(
                D("0.01")))
            co = m((owed.amount * self.draw(st.sampled_from((0, D("0.1"))))).quantize(
                D("0.01")))
            paid = owed - pr - co
            adjs = [a for a in (Adjustment("CO", "45", co), Adjustment("PR", "2", pr))
                    if not a.amount.is_zero()]
            self._post(c, "2", owed, paid, pr, adjs, [])
            return
        forward = enc._next_payer("primary") is not None and self.draw(st.booleans())
        lines, paid, pr = [], m(0), m(0)
        for ln in enc.claim_lines(c):
            charge = ln.current_charge
            co = m((charge.amount * self.draw(st.sampled_from((0, D("0.2"), D("0.4"))))
                    ).quantize(D("0.01")))
            allowed = charge - co
            patient = m(min(allowed.amount, D(self.draw(st.sampled_from((0, 10, 30))))))
            adjs = tuple(a for a in (Adjustment("CO", "45", co), Adjustment("PR", "2", patient))
                         if not a.amount.is_zero())
            lines.append(LineResult(ln.line_no, ln.procedure_code, charge, allowed - patient,
                                    allowed, ln.units, adjs))
            paid, pr = paid + allowed - patient, pr + patient
        status = "19" if forward and pr.is_positive() else "1"
        self._post(c, status, enc.claim_charge(c), paid, pr, [], lines)

    def _post(self, c: Any, status: str, charge: Money, paid: Money, pr: Money,
              claim_adjs: list[Adjustment], lines: list[LineResult]) -> None:
        trace = self.trace()
        payer = c.payer_id
        self.run("post_adjudication", claim_number=c.number, status_code=status, charge=charge,
                 paid=paid, patient_responsibility=pr,
                 payer_icn=c.payer_icn if status == "22" else f"ICN-{trace}",
                 adjudication_date=date(2026, 4, 20),
                 remittance=s.remit(trace, payer=payer, paid_on=date(2026, 4, 20)),
                 claim_adjustments=claim_adjs, lines=lines)


def drive(app: Any, runner: ProjectionRunner, conn: Any, data: Any, eids: list[UUID],
          steps: int) -> list[str]:
    session = Session(app, data, with_secondary=data.draw(st.booleans()))
    eids.append(session.eid)
    done: list[str] = []
    found: list[str] = []
    for _ in range(steps):
        action = data.draw(st.sampled_from(session.actions()))
        done.append(action)
        before = session.enc.version
        try:
            session.step(action)
        except LedgerError:
            # refused: nothing may have been written
            assert session.enc.version == before, action
            session.refused += 1
        if data.draw(st.integers(0, 3)) == 0:
            runner.views["claims"].forget()  # next page rebuilds from the store
        runner.catch_up()
        problems = check(conn, app, eids)
        if problems and not found:  # keep going: the draws must not depend on the outcome
            found.extend(f"after {' → '.join(done)}: {p}" for p in problems)
    return found


@pytest.fixture
def world(private_app, private_env, private_db):
    runner = ProjectionRunner(private_env, ["claims"], page_size=7, max_page_size=7)
    with psycopg.connect(private_db, autocommit=True, row_factory=dict_row) as conn:
        yield private_app, runner, conn, []
    runner.close()


@pytest.mark.timeout(60 + 30 * EXAMPLES)
def test_claims_view_and_balances_equal_the_aggregate_after_every_step(world):
    app, runner, conn, eids = world
    found: list[str] = []

    # Examples share the database (payer balances sum over every encounter in it), so a
    # failing example cannot be replayed alone: the first one's steps and mismatches are
    # collected and reported, without shrinking.
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get(
                  "LEDGER_PROPERTY_RANDOM"), database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def one_encounter(data):
        problems = drive(app, runner, conn, data, eids, steps=14)
        if not found:
            found.extend(problems)

    one_encounter()
    assert found == []
    assert len(eids) == EXAMPLES


# ---------------------------------------------------------------- the check can fail
def _broken_write_off(state: Any, e: Any, pe: Any) -> None:
    """A write-off booked to the claim twice (as a hand-written handler might)."""
    claims_view.on_write_off(state, e, pe)
    claims_view.on_write_off(state, e, pe)


def _payment_applied_twice(state: Any, e: Any, pe: Any) -> None:
    """A handler re-applying the payment to the aggregate: a second money model."""
    e.apply(state.enc)


def _paid_claim(app: Any) -> UUID:
    eid = s.open_encounter(app, patient_ref=f"PT-B{next(_numbers):05d}", payer="PAYER-B")
    s.code(app, eid, "E11.9")
    l1 = s.line(app, eid, "99214", "180.00", [1])
    s.create_scrub_submit(app, eid, "B-1")
    s.post(app, eid, "B-1", status="1", charge="180.00", paid="120.00", pr="30.00",
           icn="ICN-B1", trace="TRN-B1", lines=[
               s.lr(l1, "99214", "180.00", "120.00", "150.00", s.adj("CO", "45", "30.00"),
                    s.adj("PR", "2", "30.00"))])
    return eid


@pytest.mark.parametrize("event,broken", [
    (Encounter.WriteOffPosted, _broken_write_off),
    (Encounter.PatientPaymentReceived, _payment_applied_twice),
])
def test_the_property_check_reports_a_broken_handler(world, monkeypatch, event, broken):
    app, runner, conn, eids = world
    eid = _paid_claim(app)
    eids.append(eid)
    runner.catch_up()
    assert check(conn, app, eids) == []
    monkeypatch.setitem(claims_view.HANDLERS, event, broken)
    if event is Encounter.WriteOffPosted:
        # the payer reverses its payment, the office writes off part of the claim
        app.execute(eid, "post_adjudication", actor=s.BILLER, claim_number="B-1",
                    status_code="22", charge=m("-180.00"), paid=m("-120.00"),
                    patient_responsibility=m("-30.00"), payer_icn="ICN-B1",
                    adjudication_date=date(2026, 4, 21),
                    remittance=s.remit("TRN-B2", payer="PAYER-B"), claim_adjustments=[],
                    lines=[s.lr(1, "99214", "-180.00", "-120.00", "-150.00",
                                s.adj("CO", "45", "-30.00"), s.adj("PR", "2", "-30.00"))])
        app.execute(eid, "write_off", actor=s.BILLER, amount="5.00", bucket="primary",
                    category="small_balance", approver_id="mgr-1", reason="policy",
                    claim_number="B-1")
    else:
        app.execute(eid, "record_patient_payment", actor=s.BILLER, amount="10.00",
                    method="card", received_on=date(2026, 5, 3))
    runner.catch_up()
    problems = check(conn, app, eids)
    assert problems, "the broken handler went unnoticed"
    wanted = "written_off" if event is Encounter.WriteOffPosted else "balance patient"
    assert any(wanted in p for p in problems), problems
