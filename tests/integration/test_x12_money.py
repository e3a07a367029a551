"""Money from real-world remittances (issue 12), on real PostgreSQL, from the hand-written
837/835 files under tests/fixtures/x12 (see the README there for what each shows).

One billing office's month, in order: six original claims (c1), the first 835 (r1), a
correction batch with a replacement and two voids carrying the same CLM01 (c2), the payer's
reversal + corrected re-adjudication (r2), the secondary payer's crossover 835 (r3), a PLB WO
recoupment of the voided claim's payment plus L6 interest (r4), the same payment re-sent
under a new trace (r5) and a remittance whose BPR02 does not reconcile (r6). Each step
asserts exact amounts per claim, per line and per payer, and that no payer balance is
negative.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import psycopg
import pytest

from ledger.domain.values import Money
from ledger.x12.exceptions import list_exceptions, resolve
from ledger.x12.importer import X12Importer

pytestmark = pytest.mark.postgres

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "x12"


def m(text: str) -> Money:
    return Money(Decimal(text))


@pytest.fixture
def imp(app, clean_db):
    return X12Importer(app, clean_db)


def no_payer_below_zero(enc) -> None:
    for party in enc.parties:
        if party.kind != "patient":
            assert not enc.balance(party.bucket).is_negative(), (party.bucket,
                                                                 enc.balance(party.bucket))


def load(app, eids, number):
    for eid in eids:
        enc = app.get_encounter(eid)
        if number in enc.claims:
            return enc
    raise AssertionError(number)


def run_month(app, imp):
    """Import c1 and r1; return the encounters by claim number."""
    r = imp.import_path(HERE / "c1_originals.837p")
    assert (r.outcome, r.posted, r.quarantined) == ("imported", 6, 0), r.as_dict()
    encs = {n: load(app, r.encounters, n).id for n in
            ("ENC7001", "ENC7002", "ENC7003", "ENC7004", "ENC7005", "ENC7006")}
    r = imp.import_path(HERE / "r1_first_payments.835")
    assert (r.outcome, r.posted, r.held, r.unmatched) == ("posted", 4, 0, 0), r.as_dict()
    return encs


def test_first_payments_lines_matched_by_control_number_svc06_and_content(app, imp):
    encs = run_month(app, imp)
    # ENC7005: SVC lines out of order, no REF*6R, 99214 paid as 99213 (SVC06 = 99214)
    enc = app.get_encounter(encs["ENC7005"])
    claim = enc.claims["ENC7005"]
    assert claim.line_paid == {"1": m("98.50"), "2": m("13.32"), "3": m("3.00")}
    assert claim.line_allowed == {"1": m("128.50"), "2": m("13.32"), "3": m("3.00")}
    assert claim.line_adjusted == {"1": m("51.50"), "2": m("31.68"), "3": m("12.00")}
    assert claim.line_patient == {"1": m("30.00")}
    for n, ln in enc.lines.items():
        assert ln.paid <= ln.current_charge, n
    assert (claim.paid, enc.balance("primary"), enc.patient_balance()) == (
        m("114.82"), m("0.00"), m("30.00"))
    no_payer_below_zero(enc)


def test_replacement_and_void_with_the_same_clm01_then_reversal_and_correction(app, imp,
                                                                                 clean_db):
    encs = run_month(app, imp)
    r = imp.import_path(HERE / "c2_corrections.837p")
    assert (r.outcome, r.posted, r.duplicates, r.quarantined) == ("imported", 3, 0, 0), \
        r.as_dict()
    # --- scenario 7: replacement with the same CLM01 (frequency 7, REF*F8 A0004)
    enc = app.get_encounter(encs["ENC7001"])
    original, replacement = enc.claims["ENC7001"], enc.claims["ENC7001~r2"]
    assert (original.status, original.replaced_by) == ("replaced", "ENC7001~r2")
    assert (replacement.replaces, replacement.wire_number, replacement.frequency,
            replacement.status) == ("ENC7001", "ENC7001", "7", "submitted")
    assert enc.lines["1"].procedure_code == "99214" and enc.lines["1"].current_charge == \
        m("180.00")
    assert enc.balance("primary") == m("50.00")  # the added 50.00 is open with the payer
    # --- a void of an unpaid claim (same CLM01, frequency 8): no receivable is left
    enc2 = app.get_encounter(encs["ENC7002"])
    assert enc2.claims["ENC7002"].status == "voided"
    assert enc2.claims["ENC7002"].replaced_by == "ENC7002~v2"
    assert enc2.balance("primary") == m("0.00") and enc2.voided == m("130.00")
    assert enc2.claims["ENC7002"].open_balance == m("0.00")
    # --- a void of a paid claim: nothing open, the payment is owed back
    enc3 = app.get_encounter(encs["ENC7003"])
    assert enc3.claims["ENC7003"].status == "voided"
    assert enc3.claims["ENC7003"].owed_back == m("67.00")
    assert enc3.balance("primary") == m("0.00")
    # re-sending the same correction file is a duplicate file, nothing more is created
    again = imp.import_path(HERE / "c2_corrections.837p")
    assert again.outcome == "duplicate" and again.posted == 0
    assert app.get_encounter(encs["ENC7001"]).version == enc.version

    # --- the payer reverses A0004 and re-adjudicates (CLP01 = the same CLM01 both times)
    r = imp.import_path(HERE / "r2_reversal_correction.835")
    assert (r.outcome, r.posted, r.held) == ("posted", 2, 0), r.as_dict()
    enc = app.get_encounter(encs["ENC7001"])
    original, replacement = enc.claims["ENC7001"], enc.claims["ENC7001~r2"]
    assert original.status == "replaced" and original.paid == m("0.00")
    first, reversal = original.adjudications
    assert first.reversed and first.reversed_by == reversal.seq and reversal.status_code == "22"
    # the reversal negated every figure of the original, claim and line level
    assert original.line_paid == {"1": m("0.00")} and original.line_allowed == {"1": m("0.00")}
    assert original.line_adjusted == {"1": m("0.00")} and original.line_patient == \
        {"1": m("0.00")}
    assert original.adjusted == m("0.00") and original.patient_responsibility == m("0.00")
    assert (replacement.status, replacement.paid, replacement.payer_icn) == (
        "paid", m("103.50"), "A0005")
    assert replacement.line_paid == {"1": m("103.50")}
    assert replacement.line_allowed == {"1": m("128.50")}
    assert replacement.line_adjusted == {"1": m("51.50")}
    assert replacement.line_patient == {"1": m("25.00")}
    assert enc.lines["1"].paid == m("103.50") and enc.lines["1"].allowed == m("128.50")
    net = sum((a.paid for c in enc.claims.values() for a in c.adjudications
               if a.remittance_key.split("|")[1] == "EFT7200"), m("0.00"))
    assert net == m("36.50")
    assert enc.balance("primary") == m("0.00") and enc.patient_balance() == m("25.00")
    no_payer_below_zero(enc)
    with psycopg.connect(clean_db) as conn:
        recon = conn.execute("SELECT bpr_amount, claims_paid, difference, reconciled FROM"
                             " x12_reconciliation WHERE trace_number = 'EFT7200'").fetchone()
    assert recon == (Decimal("36.50"), Decimal("36.50"), Decimal("0.00"), True)
    # re-importing posts nothing
    assert imp.import_path(HERE / "r2_reversal_correction.835").posted == 0


def test_primary_forwards_secondary_created_and_posted_to_its_own_bucket(app, imp):
    encs = run_month(app, imp)
    enc = app.get_encounter(encs["ENC7004"])
    primary = enc.claims["ENC7004"]
    # CLP02 = 19: processed as primary, forwarded; PR 30.00 moved to the secondary payer
    assert (primary.status, primary.paid, primary.forwarded) == ("paid", m("114.82"),
                                                                 m("30.00"))
    crossover = enc.claims["ENC7004~secondary"]
    assert (crossover.crossover, crossover.status, crossover.payer_id, crossover.wire_number) \
        == (True, "submitted", "88888", "ENC7004")
    assert (enc.balance("primary"), enc.balance("secondary"), enc.patient_balance()) == (
        m("0.00"), m("30.00"), m("0.00"))
    r = imp.import_path(HERE / "r3_secondary_crossover.835")
    assert (r.outcome, r.posted, r.unmatched, r.held) == ("posted", 1, 0, 0), r.as_dict()
    enc = app.get_encounter(encs["ENC7004"])
    primary, secondary = enc.claims["ENC7004"], enc.claims["ENC7004~secondary"]
    # the primary's figures did not change
    assert (primary.paid, primary.adjusted, primary.patient_responsibility) == (
        m("114.82"), m("95.18"), m("30.00"))
    assert primary.line_paid == {"1": m("98.50"), "2": m("13.32"), "3": m("3.00")}
    # the secondary posted to its own claim and bucket; CAS OA-23 (prior payer) not booked
    assert (secondary.status, secondary.paid, secondary.adjusted,
            secondary.prior_payer_impact, secondary.patient_responsibility) == (
        "paid", m("20.00"), m("0.00"), m("210.00"), m("10.00"))
    assert secondary.line_paid == {"1": m("20.00"), "2": m("0.00"), "3": m("0.00")}
    assert secondary.line_patient == {"1": m("10.00")}
    assert (enc.balance("primary"), enc.balance("secondary"), enc.patient_balance()) == (
        m("0.00"), m("0.00"), m("10.00"))
    assert enc.lines["1"].paid == m("118.50") and enc.lines["1"].paid <= \
        enc.lines["1"].current_charge
    no_payer_below_zero(enc)


def test_plb_wo_recoupment_and_l6_interest_reconcile(app, imp, clean_db):
    encs = run_month(app, imp)
    assert imp.import_path(HERE / "c2_corrections.837p").outcome == "imported"
    r = imp.import_path(HERE / "r4_plb_recoupment_interest.835")
    assert (r.outcome, r.posted, r.held) == ("posted", 1, 0), r.as_dict()
    enc3 = app.get_encounter(encs["ENC7003"])
    voided = enc3.claims["ENC7003"]
    # WO:C0003 names the voided claim by its payer ICN: the 67.00 owed back is returned
    assert (voided.recouped, voided.owed_back, voided.paid) == (m("67.00"), m("0.00"),
                                                                m("67.00"))
    assert [(p.reason, p.reference, p.amount) for p in voided.plb] == [("WO", "C0003",
                                                                         m("67.00"))]
    assert enc3.balance("primary") == m("0.00")
    no_payer_below_zero(enc3)
    enc6 = app.get_encounter(encs["ENC7006"])
    assert enc6.claims["ENC7006"].paid == m("67.00") and enc6.balance("primary") == m("0.00")
    with psycopg.connect(clean_db) as conn:
        recon = conn.execute(
            "SELECT bpr_amount, claims_paid, plb_total, plb_claims, plb_provider, difference,"
            " reconciled FROM x12_reconciliation WHERE trace_number = 'EFT7400'").fetchone()
        account = conn.execute("SELECT payer_id, reason, reference, amount FROM"
                               " x12_provider_account").fetchall()
    # BPR02 1.25 = Σ CLP04 67.00 - Σ PLB (67.00 WO - 1.25 L6)
    assert recon == (Decimal("1.25"), Decimal("67.00"), Decimal("65.75"), Decimal("67.00"),
                     Decimal("-1.25"), Decimal("0.00"), True)
    # L6 interest names no claim: the payer's provider account
    assert account == [("1512345678", "L6", "INT7400", Decimal("-1.25"))]


def test_same_payment_resent_under_new_trace_is_held_not_posted(app, imp, clean_db):
    encs = run_month(app, imp)
    before = app.get_encounter(encs["ENC7005"])
    r = imp.import_path(HERE / "r5_same_payment_new_trace.835")
    assert (r.outcome, r.posted, r.held) == ("nothing", 0, 1), r.as_dict()
    after = app.get_encounter(encs["ENC7005"])
    assert after.version == before.version  # balances untouched: nothing recorded
    assert (after.claims["ENC7005"].paid, after.balance("primary"), after.patient_balance()) \
        == (m("114.82"), m("0.00"), m("30.00"))
    with psycopg.connect(clean_db, autocommit=True) as conn:
        items = list_exceptions(conn, kind="duplicate_payment")
        assert len(items) == 1
        item = items[0]
        assert (item["claim_number"], item["trace_number"], item["amount"], item["rule"]) == (
            "ENC7005", "EFT7500", "114.82", "payment.duplicate")
        assert item["detail"]["earlier_trace"] == "EFT7100"  # both traces kept
        # worked by an event: dismissed with a reason; the row of the raise is untouched
        resolve(conn, item["exception_id"], action="dismissed", reason="payer confirmed a "
                "re-sent remittance; no second payment", actor_id="biller-1")
        assert list_exceptions(conn, kind="duplicate_payment") == []
        done = list_exceptions(conn, status="resolved")[0]
        assert (done["resolution"], done["resolved_by"]) == ("dismissed", "biller-1")
        events = conn.execute("SELECT event FROM x12_exception_events ORDER BY seq"
                              ).fetchall()
        assert [e[0] for e in events] == ["raised", "dismissed"]
        from ledger.domain.errors import IllegalTransition, InvalidValue
        with pytest.raises(IllegalTransition):
            resolve(conn, item["exception_id"], action="posted", reason="x", actor_id="b")
        with pytest.raises(InvalidValue):
            resolve(conn, item["exception_id"], action="dismissed", reason=" ", actor_id="b")
    # re-importing the re-sent file raises nothing new
    assert imp.import_path(HERE / "r5_same_payment_new_trace.835").outcome == "duplicate"


def test_unreconciled_remittance_quarantined_whole_and_listed(app, imp, clean_db):
    encs = run_month(app, imp)
    version = app.get_encounter(encs["ENC7005"]).version
    r = imp.import_path(HERE / "r6_unreconciled.835")
    assert r.outcome == "quarantined" and "835.transaction_balance" in r.rules
    assert app.get_encounter(encs["ENC7005"]).version == version
    with psycopg.connect(clean_db, autocommit=True) as conn:
        kinds = {e["kind"]: e for e in list_exceptions(conn)}
        recon = conn.execute("SELECT bpr_amount, claims_paid, difference, reconciled, outcome"
                             " FROM x12_reconciliation WHERE trace_number = 'EFT7600'"
                             ).fetchone()
    assert set(kinds) == {"quarantined_file", "unreconciled_remittance"}
    assert kinds["unreconciled_remittance"]["amount"] == "100.00"
    assert kinds["unreconciled_remittance"]["detail"]["difference"] == "-14.82"
    assert recon == (Decimal("100.00"), Decimal("114.82"), Decimal("-14.82"), False,
                     "quarantined")


def test_cli_exceptions_and_import_exit_status(app, imp, clean_db, monkeypatch):
    from typer.testing import CliRunner

    from ledger.cli.main import app as cli
    from ledger.config import get_settings

    run_month(app, imp)
    monkeypatch.setenv("LEDGER_DATABASE_URL", clean_db)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    try:
        runner = CliRunner(mix_stderr=False) if "mix_stderr" in \
            CliRunner.__init__.__code__.co_varnames else CliRunner()
        held = runner.invoke(cli, ["import", str(HERE / "r5_same_payment_new_trace.835"),
                                   "--json"])
        assert held.exit_code == 1, held.output
        doc = orjson.loads(held.stdout)  # only JSON on stdout
        assert doc["totals"]["held"] == 1 and doc["ok"] is False
        assert doc["files"][0]["exceptions"][0]["kind"] == "duplicate_payment"
        listed = runner.invoke(cli, ["x12", "exceptions", "--json"])
        assert listed.exit_code == 0, listed.output
        items = orjson.loads(listed.stdout)["exceptions"]
        assert [(e["kind"], e["claim_number"], e["trace_number"]) for e in items] == [
            ("duplicate_payment", "ENC7005", "EFT7500")]
        table = runner.invoke(cli, ["x12", "exceptions"])
        assert table.exit_code == 0 and "duplicate_payment" in table.stdout
        assert "payment.duplicate" in table.stdout
        done = runner.invoke(cli, ["x12", "resolve", items[0]["exception_id"], "--action",
                                   "dismissed", "--reason", "re-sent file", "--actor", "b-1"])
        assert done.exit_code == 0, done.output
        bad = runner.invoke(cli, ["x12", "resolve", items[0]["exception_id"], "--action",
                                  "dismissed", "--reason", "again"])
        assert bad.exit_code == 2 and "exceptions.open" in bad.stdout
        ok = runner.invoke(cli, ["import", str(HERE / "r3_secondary_crossover.835"), "--json"])
        assert ok.exit_code == 0 and orjson.loads(ok.stdout)["ok"] is True
        recon = runner.invoke(cli, ["x12", "reconciliation", "--json"])
        rows = orjson.loads(recon.stdout)["remittances"]
        assert [(x["trace_number"], x["reconciled"]) for x in rows] == [
            ("EFT7100", True), ("EFT7500", True), ("EFT7300", True)]
        table = runner.invoke(cli, ["x12", "reconciliation"])
        assert table.exit_code == 0 and "EFT7300" in table.stdout
    finally:
        get_settings.cache_clear()


# ---------------------------------------------------------------- REF*6R round trip
def _remit(ctl: int, trace: str, total: str, claims: list[str]) -> bytes:
    body = ["ST*835*0001", f"BPR*I*{total}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*"
            "999988880*DA*98765*20260515", f"TRN*1*{trace}*1512345678", "DTM*405*20260514",
            "N1*PR*EXAMPLE HEALTH PLAN*XV*99999", "N3*PO BOX 1000", "N4*CHICAGO*IL*606010000",
            "PER*BL*EDI SUPPORT*TE*8005551212",
            "N1*PE*EXAMPLE FAMILY MEDICINE*XX*1234567893", "LX*1", *claims]
    body.append(f"SE*{len(body) + 1}*0001")
    head = ("ISA*00*          *00*          *ZZ*PAYERSUBMIT    *ZZ*PROVIDERRCV    *260515*1200*"
            f"^*00501*{ctl:09d}*0*T*:~GS*HP*PAYERSUBMIT*PROVIDERRCV*20260515*1200*{ctl}*X*"
            "005010X221A1~")
    return (head + "~".join(body) + f"~GE*1*{ctl}~IEA*1*{ctl:09d}~").encode()


def test_export_writes_ref_6r_and_the_835_matches_lines_by_it(app, imp, clean_db):
    from datetime import date

    from ledger.x12.export837 import export_837p
    from tests import builders as s
    from tests.integration.test_x12_export import CTX, NOW, segments

    eid = s.open_encounter(app, patient_ref="PT-6R", dos=date(2026, 3, 2),
                           dos_to=date(2026, 3, 3))
    s.code(app, eid, "M54.50")
    s.line(app, eid, "97110", "90.00", [1], units=2, modifiers=["GP"], line_date=date(2026, 3, 2))
    s.line(app, eid, "97110", "90.00", [1], units=2, modifiers=["GP"],  # another day: same SVC
           line_date=date(2026, 3, 3))
    s.line(app, eid, "97140", "60.00", [1], modifiers=["GP"])
    s.create_scrub_submit(app, eid, "PT6R-1")
    out = export_837p(app.get_encounter(eid), "PT6R-1", CTX, control_number=61, now=NOW)
    assert [x for x in segments(out.text) if x.startswith("REF*6R")] == [
        "REF*6R*1", "REF*6R*2", "REF*6R*3"]
    # lines come back out of order; REF*6R names each; line 2 paid less than line 1
    paid = _remit(61, "EFT6R1", "120.00", [
        "CLP*PT6R-1*1*240*120*0*12*G0061*11*1",
        "SVC*HC:97140:GP*60*30**1", "CAS*CO*45*30", "REF*6R*3",
        "SVC*HC:97110:GP*90*40**2", "CAS*CO*45*50", "REF*6R*2",
        "SVC*HC:97110:GP*90*50**2", "CAS*CO*45*40", "REF*6R*1"])
    r = imp.import_bytes(paid, "6r.835")
    assert (r.outcome, r.posted) == ("posted", 1), r.as_dict()
    claim = app.get_encounter(eid).claims["PT6R-1"]
    assert claim.line_paid == {"1": m("50.00"), "2": m("40.00"), "3": m("30.00")}
    assert claim.line_adjusted == {"1": m("40.00"), "2": m("50.00"), "3": m("30.00")}


def test_svc_matching_two_different_lines_is_held_not_guessed(app, imp, clean_db):
    from tests import builders as s

    eid = s.open_encounter(app, patient_ref="PT-AMB")
    s.code(app, eid, "M54.50")
    s.line(app, eid, "97110", "90.00", [1], units=2, modifiers=["GP"])
    s.line(app, eid, "97110", "90.00", [1], units=2, modifiers=["GO"])
    s.create_scrub_submit(app, eid, "AMB-1")
    version = app.get_encounter(eid).version
    # the payer dropped the modifiers and sent no REF*6R: either line could be meant
    remit = _remit(62, "EFTAMB", "90.00", [
        "CLP*AMB-1*1*180*90*0*12*G0062*11*1",
        "SVC*HC:97110*90*50**2", "CAS*CO*45*40",
        "SVC*HC:97110*90*40**2", "CAS*CO*45*50"])
    r = imp.import_bytes(remit, "amb.835")
    assert (r.outcome, r.posted, r.held) == ("nothing", 0, 1), r.as_dict()
    assert app.get_encounter(eid).version == version  # nothing posted, nothing guessed
    with psycopg.connect(clean_db, autocommit=True) as conn:
        (item,) = list_exceptions(conn, kind="line_unmatched")
    assert (item["claim_number"], item["rule"], item["amount"]) == ("AMB-1",
                                                                   "835.line_unmatched", "90.00")
    # a line can never be paid more than its charge: SVC03 above SVC02 is refused
    over = _remit(63, "EFTOVER", "100.00", [
        "CLP*AMB-1*1*180*100*0*12*G0063*11*1",
        "SVC*HC:97110:GP*90*95**2", "CAS*CO*45*-5", "REF*6R*1",
        "SVC*HC:97110:GO*90*5**2", "CAS*CO*45*85", "REF*6R*2"])
    r = imp.import_bytes(over, "over.835")
    assert r.outcome == "quarantined" and "payments.line_not_above_charge" in r.rules


def test_read_models_catch_up_over_the_whole_month(app, app_env, imp, clean_db):
    """The projections run over every event of the month (corrections, reversal, crossover,
    PLB, void settlement) without failing; the payer balances they show are never negative."""
    from ledger.projections.runner import ProjectionRunner

    run_month(app, imp)
    with ProjectionRunner(app_env) as runner:
        runner.catch_up()
    with psycopg.connect(clean_db) as conn:
        # before the secondary pays, it awaits the 30.00 the primary forwarded, not 240.00
        waiting = conn.execute("SELECT outstanding FROM payer_balances WHERE payer_id ="
                               " '88888'").fetchone()
    assert waiting == (Decimal("30.00"),)
    for name in ("c2_corrections.837p", "r2_reversal_correction.835",
                 "r3_secondary_crossover.835", "r4_plb_recoupment_interest.835"):
        assert imp.import_path(HERE / name).outcome in ("imported", "posted"), name
    with ProjectionRunner(app_env) as runner:
        runner.catch_up()
    with psycopg.connect(clean_db) as conn:
        lag = conn.execute("SELECT max(notification_id) FROM ledger_events").fetchone()[0]
        claims = dict(conn.execute("SELECT claim_number, status FROM current_claims").fetchall())
        balances = conn.execute("SELECT payer_id, outstanding FROM payer_balances").fetchall()
    assert lag
    assert claims["ENC7001"] == "replaced" and claims["ENC7001~r2"] == "paid"
    assert claims["ENC7002"] == "voided" and claims["ENC7004~secondary"] == "paid"
    assert all(b >= 0 for _, b in balances), balances


def test_large_837_read_and_saved_in_chunks_gives_the_same_ledger(app, clean_db):
    """Slices of 2 claims, saves every 20 events: the same six encounters, each whole."""
    small = X12Importer(app, clean_db, claims_per_chunk=2, max_837_events_per_save=20)
    r = small.import_path(HERE / "c1_originals.837p")
    assert (r.outcome, r.posted, r.quarantined) == ("imported", 6, 0), r.as_dict()
    numbers = set()
    for eid in r.encounters:
        enc = app.get_encounter(eid)
        (claim,) = enc.claims.values()
        assert claim.status == "submitted" and claim.submitted_charge == enc.total_charge
        numbers.add(claim.number)
    assert numbers == {f"ENC700{i}" for i in range(1, 7)}
    assert app.get_encounter(next(e for e in r.encounters if "ENC7004" in
                                  app.get_encounter(e).claims)).parties[1].payer_id == "88888"
    # the whole file is recorded once: sending it again is a duplicate
    again = small.import_path(HERE / "c1_originals.837p")
    assert again.outcome == "duplicate" and again.posted == 0
    with psycopg.connect(clean_db) as conn:
        row = conn.execute("SELECT sender_id, interchange_control, group_control,"
                           " transaction_controls, claims FROM x12_claim_files").fetchall()
    assert row == [("PROVIDERSUBMIT", "000007001", "7001", ["7001"], 6)]


def test_claim_linked_plb_naming_no_claim_is_held_and_the_rest_posts(app, imp, clean_db):
    run_month(app, imp)
    remit = _remit(64, "EFTPLB", "-10.00", [
        "PLB*1234567893*20261231*WO:NOSUCHICN*10"])
    r = imp.import_bytes(remit, "plb.835")
    assert r.held == 1 and r.posted == 0, r.as_dict()
    with psycopg.connect(clean_db, autocommit=True) as conn:
        (item,) = list_exceptions(conn, kind="unposted_plb")
        recon = conn.execute("SELECT bpr_amount, plb_total, plb_claims, plb_provider,"
                             " reconciled FROM x12_reconciliation WHERE trace_number ="
                             " 'EFTPLB'").fetchone()
    assert (item["claim_number"], item["amount"], item["rule"], item["detail"]["reason"]) == (
        "NOSUCHICN", "10.00", "plb.claim_not_found", "WO")
    assert recon == (Decimal("-10.00"), Decimal("10.00"), Decimal("0.00"), Decimal("0.00"),
                     True)
