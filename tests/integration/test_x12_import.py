"""X12 import on real PostgreSQL: every fixture file under ../shared/fixtures/x12 and
../shared/fixtures/scenarios is imported here with its expected outcome."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from ledger.x12.importer import X12Importer
from tests import builders as s
from tests.conftest import FIXTURES

pytestmark = pytest.mark.postgres

X12 = FIXTURES / "x12"
SCEN = FIXTURES / "scenarios"


@pytest.fixture
def imp(app, clean_db):
    return X12Importer(app, clean_db)


def claim_events(app, eid):
    return [type(e).__name__ for e in app.history(eid)]


def test_scenario_1_837p_then_835(app, imp, clean_db):
    r = imp.import_path(SCEN / "s01_original_freq1.837p")
    assert r.outcome == "imported", r.as_dict()
    assert r.posted == 1 and len(r.encounters) == 1
    eid = r.encounters[0]
    enc = app.get_encounter(eid)
    assert [d.code for d in enc.diagnoses] == ["E119", "I10"]
    claim = enc.claims["ENC1001"]
    assert claim.status == "submitted"
    assert enc.total_charge == s.m("240.00")
    r = imp.import_path(SCEN / "s01_copay_co45.835")
    assert r.outcome == "posted", r.as_dict()
    assert (r.posted, r.unmatched, r.duplicates) == (1, 0, 0)
    enc = app.get_encounter(eid)
    claim = enc.claims["ENC1001"]
    assert claim.status == "paid"
    assert claim.paid == s.m("114.82")
    assert enc.balance("primary") == s.m("0.00")
    assert enc.patient_balance() == s.m("30.00")
    assert enc.patient_share["copay"] == s.m("30.00")
    co = sum((a.amount for a in claim.adjudications[0].adjustments if a.group == "CO"),
             s.m("0.00"))
    assert co == s.m("95.18")
    assert claim.allowed == s.m("144.82")
    # re-importing posts nothing
    version = enc.version
    again = imp.import_path(SCEN / "s01_copay_co45.835")
    assert again.outcome == "duplicate" and again.posted == 0
    assert app.get_encounter(eid).version == version
    again = imp.import_path(SCEN / "s01_original_freq1.837p")
    assert again.outcome == "duplicate" and again.posted == 0


# ---------------------------------------------------------------- helpers
DOS = date(2026, 3, 2)


def submit(app, eid, number, *, group="1", transaction="0001", **create):
    app.execute(eid, "create_claim", actor=s.BILLER, claim_number=number, **create)
    findings = app.scrub_claim(eid, number, actor=s.BILLER).value
    assert not [f for f in findings if f.severity == "error"], findings
    app.execute(eid, "submit_claim", actor=s.BILLER, claim_number=number,
                interchange_control="000000009", group_control=group,
                transaction_control=transaction)


def mirror_claims(app, path):
    """Create and submit, through the application, the claims an 835 pays: one encounter per
    CLP01, one line per SVC (or one line of CLP03 when the claim has no SVC)."""
    from ledger.x12.remit835 import read_835

    parsed = read_835(path.read_bytes())
    made = {}
    for r in parsed.remittances:
        for c in r.claims:
            if c.claim_number in made:
                continue
            eid = s.open_encounter(app, dos=DOS, dos_to=date(2026, 3, 28),
                                   patient_ref=f"PT-{len(made)}")
            s.code(app, eid, "E11.9")
            services = c.services or []
            if services:
                for i, svc in enumerate(services):
                    units = svc.units if svc.units > 0 else 1
                    s.line(app, eid, svc.procedure_code or "99499", str(svc.charge), [1],
                           units=str(units),
                           modifiers=svc.modifiers, line_date=date(2026, 3, 2 + i))
            else:
                s.line(app, eid, "99499", str(c.charge), [1])
            submit(app, eid, c.claim_number)
            made[c.claim_number] = (eid, c)
    return parsed, made


BALANCED_835 = [
    "x12/linuxforhealth-x12/835_005010X221A1__cob-contractural-adjustment.835",
    "x12/linuxforhealth-x12/835_005010X221A1__managed-care.835",
    "x12/linuxforhealth-x12/835_005010X221A1__medicare-part-a.835",
    "x12/linuxforhealth-x12/835_005010X221A1__secondary-payment.835",
    "x12/linuxforhealth-x12/demo-file__demo.835",
    "x12/keironstoddart-edi-835-parser/united_healthcare_legacy_sample.txt",
    "x12/pyx12/835_mult_loops.txt",
]


@pytest.mark.parametrize("rel", BALANCED_835)
def test_balanced_835_posts_and_balances(app, imp, clean_db, rel):
    path = FIXTURES / rel
    parsed, made = mirror_claims(app, path)
    r = imp.import_path(path)
    assert r.outcome == "posted", r.as_dict()
    assert r.posted == len(made) and r.unmatched == 0 and r.quarantined == 0
    for number, (eid, c) in made.items():
        enc = app.get_encounter(eid)
        claim = enc.claims[number]
        assert claim.paid == c.paid
        assert enc.balance("primary") == s.m("0.00"), number
        assert enc.patient_balance() == c.patient_responsibility, number
        if c.status == "4":
            assert claim.status == "denied" and claim.denial_deadline is not None
    with psycopg.connect(clean_db) as conn:
        rows = conn.execute("SELECT payer_id, trace_number, total_paid, claims_posted"
                            " FROM x12_remittances").fetchall()
    assert [(row[0], row[1]) for row in rows] == [(x.payer_id, x.trace_number)
                                                  for x in parsed.remittances]
    assert rows[0][2] == parsed.remittances[0].total_paid.amount
    # re-importing any 835 posts nothing
    positions = {eid: app.get_encounter(eid).version for eid, _ in made.values()}
    again = imp.import_path(path)
    assert again.outcome == "duplicate" and again.posted == 0, again.as_dict()
    assert {eid: app.get_encounter(eid).version for eid in positions} == positions


def test_medicare_plb_kept_provider_level(app, imp, clean_db):
    path = X12 / "linuxforhealth-x12/835_005010X221A1__medicare-part-a.835"
    mirror_claims(app, path)
    imp.import_path(path)
    with psycopg.connect(clean_db) as conn:
        report = conn.execute("SELECT report FROM x12_remittances").fetchone()[0]
        account = conn.execute("SELECT reason, reference, amount FROM x12_provider_account"
                               ).fetchall()
        recon = conn.execute("SELECT plb_total, plb_provider, difference, reconciled"
                             " FROM x12_reconciliation").fetchall()
    # CV (capital pass-through) names no claim: posted to the payer's provider account
    assert report["provider_adjustments"] == [
        {"reason": "CV", "reference": "CP", "amount": "-1.27", "applied_to": "provider account"}]
    assert account == [("CV", "CP", s.m("-1.27").amount)]
    assert recon == [(s.m("-1.27").amount, s.m("-1.27").amount, s.m("0.00").amount, True)]
    # the same remittance in another file (demo.835 is a copy) is a duplicate
    again = imp.import_path(X12 / "linuxforhealth-x12/demo-file__demo.835")
    assert again.outcome == "duplicate"


def test_unmatched_claims_are_listed_not_dropped(imp, clean_db):
    r = imp.import_path(X12 / "keironstoddart-edi-835-parser/emedny_sample.txt")
    assert r.outcome == "nothing" and r.posted == 0
    assert r.unmatched == 3
    assert {u["reason"] for u in r.unmatched_claims} == {"no claim with this number"}
    with psycopg.connect(clean_db) as conn:
        n = conn.execute("SELECT count(*) FROM x12_unmatched").fetchone()[0]
        remits = conn.execute("SELECT claims_unmatched FROM x12_remittances").fetchall()
        queued = conn.execute("SELECT kind, rule, claim_number FROM x12_exceptions").fetchall()
    assert n == 3 and remits == [(3,)]
    # each is in the exceptions queue, to be re-matched or dismissed
    assert sorted(queued) == sorted(("unmatched_claim", "835.claim_unmatched", u["claim"])
                                    for u in r.unmatched_claims)
    assert imp.import_path(X12 / "keironstoddart-edi-835-parser/emedny_sample.txt"
                           ).outcome == "duplicate"


QUARANTINED = {
    "x12/linuxforhealth-x12/835_005010X221A1__tertiary-payment.835": {"835.line_balance"},
    "x12/diasks2-era_835_parser/example_1.835": {"835.transaction_balance",
                                                 "x12.envelope.isa_missing"},
    "x12/diasks2-era_835_parser/example_6.835": {"835.patient_responsibility",
                                                 "x12.envelope.isa_missing"},
    "x12/diasks2-era_835_parser/example_2.835": {"x12.envelope.isa_missing"},
    "x12/diasks2-era_835_parser/example_3.835": {"x12.envelope.isa_missing"},
    "x12/diasks2-era_835_parser/example_4.835": {"x12.envelope.isa_missing"},
    "x12/diasks2-era_835_parser/example_5.835": {"x12.envelope.isa_missing"},
    "x12/keironstoddart-edi-835-parser/blue_cross_nc_sample.txt": {
        "x12.envelope.isa_missing", "x12.element_required"},
}


@pytest.mark.parametrize("rel", sorted(QUARANTINED))
def test_bad_835_quarantined_with_rule(app, imp, clean_db, rel):
    path = FIXTURES / rel
    _, made = mirror_claims(app, path) if "blue_cross" not in rel else (None, {})
    r = imp.import_path(path)
    assert r.outcome == "quarantined" and r.posted == 0, r.as_dict()
    assert QUARANTINED[rel] <= set(r.rules), r.rules
    for eid, _ in made.values():
        assert "ClaimAdjudicated" not in claim_events(app, eid), "nothing posted"
    with psycopg.connect(clean_db) as conn:
        rules, report = conn.execute("SELECT rules, report FROM x12_quarantine").fetchone()
    assert QUARANTINED[rel] <= set(rules)
    named = [i for i in report["issues"] if i["rule"].startswith("835.")]
    for issue in named:  # each balancing failure names its claim
        assert issue.get("claim") or issue["rule"] == "835.transaction_balance"


def test_tertiary_names_the_line(imp):
    r = imp.import_path(X12 / "linuxforhealth-x12/835_005010X221A1__tertiary-payment.835")
    issue = next(i for i in r.issues if i.rule == "835.line_balance")
    assert (issue.claim, issue.line) == ("0001000054", 1)
    assert "SVC02-SVC03=ΣCAS" in issue.message


def test_example_6_names_clp05_on_both_transactions(imp):
    r = imp.import_path(X12 / "diasks2-era_835_parser/example_6.835")
    pr = [i for i in r.issues if i.rule == "835.patient_responsibility"]
    assert [(i.transaction, i.claim) for i in pr] == [(1, "200200964A52"), (2, "200200964A52")]


def test_not_x12_is_a_clear_error(imp, tmp_path):
    for content, rule in ((b"", "x12.empty"), (b"hello world", "x12.not_x12"),
                          (b"\x00\x01binary", "x12.not_text"),
                          (b"ISA*00*short~", "x12.isa_length")):
        r = imp.import_bytes(content, "bad")
        assert r.outcome == "error" and r.rules == [rule], (content, r.as_dict())


# ---------------------------------------------------------------- scenarios 2, 3, 7
def test_scenario_2_deductible_coinsurance(app, imp):
    eid = s.open_encounter(app, patient_ref="PT-1002")
    s.code(app, eid, "M54.50")
    s.line(app, eid, "99203", "250.00", [1])
    s.line(app, eid, "72100", "120.00", [1])
    submit(app, eid, "ENC1002")
    r = imp.import_path(SCEN / "s02_deductible_coins.835")
    assert (r.outcome, r.posted) == ("posted", 1), r.as_dict()
    enc = app.get_encounter(eid)
    assert enc.claims["ENC1002"].paid == s.m("80.00")
    assert enc.balance("primary") == s.m("0.00")
    assert enc.patient_balance() == s.m("120.00")
    assert enc.patient_share["deductible"] == s.m("100.00")
    assert enc.patient_share["coinsurance"] == s.m("20.00")
    assert imp.import_path(SCEN / "s02_deductible_coins.835").posted == 0


def test_scenario_3_denial_appeal_paid(app, imp):
    eid = s.open_encounter(app, patient_ref="PT-1003")
    s.code(app, eid, "M54.50")
    s.line(app, eid, "97110", "180.00", [1], units=4, modifiers=["GP"])
    submit(app, eid, "ENC1003")
    r = imp.import_path(SCEN / "s03a_denial_co50.835")
    assert (r.outcome, r.posted) == ("posted", 1), r.as_dict()
    enc = app.get_encounter(eid)
    claim = enc.claims["ENC1003"]
    assert claim.status == "denied" and claim.denial_deadline is not None
    assert enc.patient_balance() == s.m("0.00") and enc.balance("primary") == s.m("0.00")
    assert "N115" in enc.lines["1"].remarks
    app.execute(eid, "file_appeal", actor=s.BILLER, claim_number="ENC1003",
                filed_on=date(2026, 5, 1), reason="medical necessity documented")
    app.execute(eid, "decide_appeal", actor=s.BILLER, claim_number="ENC1003",
                outcome="overturned", decided_on=date(2026, 6, 1), reason="payer letter")
    r = imp.import_path(SCEN / "s03b_appeal_paid.835")
    assert (r.outcome, r.posted) == ("posted", 1), r.as_dict()
    enc = app.get_encounter(eid)
    claim = enc.claims["ENC1003"]
    assert claim.status == "paid" and claim.paid == s.m("112.64")
    assert claim.payer_icn == "ICN2026A0003B"
    assert enc.balance("primary") == s.m("0.00")
    assert enc.patient_balance() == s.m("28.16")
    assert enc.lines["1"].allowed == s.m("140.80")


ENVELOPE = ("ISA*00*          *00*          *ZZ*PAYERSUBMIT    *ZZ*PROVIDERRCV    *260415*1200*"
            "^*00501*{ctl:09d}*0*T*:~GS*HP*PAYERSUBMIT*PROVIDERRCV*20260415*1200*{ctl}*X*"
            "005010X221A1~")


def remittance_835(ctl, trace, total, claims):
    body = ["ST*835*0001", f"BPR*I*{total}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*"
            "999988880*DA*98765*20260515", f"TRN*1*{trace}*1512345678", "DTM*405*20260514",
            "N1*PR*EXAMPLE HEALTH PLAN", "PER*BL*EDI SUPPORT*TE*8005551212",
            "N1*PE*EXAMPLE FAMILY MEDICINE*XX*1234567893", "LX*1", *claims]
    body.append(f"SE*{len(body) + 1}*0001")
    return (ENVELOPE.format(ctl=ctl) + "~".join(body) + f"~GE*1*{ctl}~IEA*1*{ctl:09d}~"
            ).encode()


def test_scenario_7_replacement_reversal_readjudication(app, imp):
    eid = s.open_encounter(app, patient_ref="PT-1007")
    s.code(app, eid, "E11.9")
    line = s.line(app, eid, "99213", "130.00", [1])
    submit(app, eid, "ENC1007")
    first = remittance_835(11, "EFT0701", "67.00", [
        "CLP*ENC1007*1*130.00*67.00*25.00*12*A0004*11*1", "SVC*HC:99213*130.00*67.00**1",
        "CAS*CO*45*38.00", "CAS*PR*3*25.00", "REF*6R*1", "AMT*B6*92.00"])
    assert imp.import_bytes(first, "first.835").posted == 1
    app.execute(eid, "revise_service_line", actor=s.CODER_B, line_no=line, reason="MDM moderate",
                procedure_code="99214", charge="180.00")
    submit(app, eid, "ENC1007R", frequency="7", original_icn="A0004")
    enc = app.get_encounter(eid)
    assert enc.claims["ENC1007"].replaced_by == "ENC1007R"
    second = remittance_835(12, "EFT0702", "36.50", [
        "CLP*ENC1007*22*-130.00*-67.00*-25.00*12*A0004*11*1", "SVC*HC:99213*-130.00*-67.00**1",
        "CAS*CO*45*-38.00", "CAS*PR*3*-25.00",
        "CLP*ENC1007R*1*180.00*103.50*25.00*12*A0005*11*7", "SVC*HC:99214*180.00*103.50**1",
        "CAS*CO*45*51.50", "CAS*PR*3*25.00", "REF*6R*1", "AMT*B6*128.50"])
    r = imp.import_bytes(second, "second.835")
    assert (r.outcome, r.posted) == ("posted", 2), r.as_dict()
    enc = app.get_encounter(eid)
    original, replacement = enc.claims["ENC1007"], enc.claims["ENC1007R"]
    assert original.paid == s.m("0.00") and original.status == "replaced"
    assert original.adjudications[0].reversed and original.adjudications[1].reversed
    assert replacement.paid == s.m("103.50") and replacement.status == "paid"
    net = original.paid + replacement.paid - s.m("67.00")
    assert net == s.m("36.50")
    assert enc.patient_balance() == s.m("25.00")
    assert enc.balance("primary") == s.m("0.00")
    # both versions stay queryable; re-importing posts nothing
    assert imp.import_bytes(second, "second.835").posted == 0
    assert imp.import_bytes(first, "first.835").posted == 0


def test_unpaired_reversal_quarantines_the_file(app, imp):
    eid = s.open_encounter(app, patient_ref="PT-1017")
    s.code(app, eid, "E11.9")
    s.line(app, eid, "99213", "130.00", [1])
    submit(app, eid, "ENC1017")
    bad = remittance_835(13, "EFT1701", "-67.00", [
        "CLP*ENC1017*22*-130.00*-67.00*-25.00*12*A0099*11*1", "SVC*HC:99213*-130.00*-67.00**1",
        "CAS*CO*45*-38.00", "CAS*PR*3*-25.00"])
    r = imp.import_bytes(bad, "bad.835")
    assert r.outcome == "quarantined" and "reversal.pairs_with_original" in r.rules
    assert "ClaimAdjudicated" not in claim_events(app, eid)


def test_same_trace_other_content_is_quarantined(app, imp):
    eid = s.open_encounter(app, patient_ref="PT-1018")
    s.code(app, eid, "E11.9")
    s.line(app, eid, "99213", "130.00", [1])
    submit(app, eid, "ENC1018")
    one = remittance_835(14, "EFT1801", "0.00", ["CLP*ENC1018*4*130.00*0.00**12*B1*11*1",
                                                  "CAS*CO*50*130.00"])
    two = remittance_835(15, "EFT1801", "0.00", ["CLP*ENC1018*4*130.00*0.00**12*B2*11*1",
                                                  "CAS*CO*50*130.00"])
    assert imp.import_bytes(one, "one.835").posted == 1
    r = imp.import_bytes(two, "two.835")
    assert r.outcome == "quarantined" and r.rules == ["835.trace_conflict"]


# ---------------------------------------------------------------- 837P / 837I
FIXTURE_837 = sorted(p.relative_to(FIXTURES).as_posix() for p in X12.glob("*/*.837*"))


@pytest.mark.parametrize("rel", FIXTURE_837)
def test_fixture_837_reported_per_claim(app, imp, clean_db, rel):
    """The public 837 samples are ICD-9 (BK/BF) on X222A2/X223A3 envelopes: every claim is
    reported (rule 837.icd9_qualifier) and none imported; nothing crashes."""
    r = imp.import_path(FIXTURES / rel)
    assert r.outcome == "nothing" and r.posted == 0, r.as_dict()
    assert r.quarantined >= 1
    claims = {i.claim for i in r.issues if i.rule == "837.icd9_qualifier"}
    assert len(claims) == r.quarantined
    assert any(i.rule == "x12.envelope.version" and i.severity == "warning" for i in r.issues)
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_events").fetchone()[0] == 0
        report = conn.execute("SELECT report FROM x12_quarantine").fetchone()[0]
    assert {i["claim"] for i in report["issues"]} >= claims


def test_837_invalid_claim_reported_valid_one_imported(app, imp):
    text = (SCEN / "s01_original_freq1.837p").read_text()
    bad = text.replace("SV1*HC:36415*15*UN*1***1", "SV1*HC:36415*15*UN*1***3")
    r = imp.import_bytes(bad.encode(), "bad.837p")
    assert r.outcome == "nothing" and r.quarantined == 1
    assert [i.rule for i in r.issues if i.severity == "error"] == ["837.pointer"]
    assert [(e.kind, e.rule, e.claim_number) for e in r.exceptions] == [
        ("refused_claim", "837.pointer", "ENC1001")]
    total = text.replace("CLM*ENC1001*240*", "CLM*ENC1001*250*")
    r = imp.import_bytes(total.encode(), "total.837p")
    # x12sdk enforces CLM02 = sum of SV102 itself, for the whole file (not per claim)
    assert r.rules == ["837.x12sdk_validation"] and r.posted == 0
    assert "loop_2300" in r.issues[-1].message and "240" in r.issues[-1].message
    r = imp.import_bytes(text.encode(), "good.837p")
    assert r.outcome == "imported" and r.posted == 1


# ---------------------------------------------------------------- 999 / 277CA
def _submitted(app, number, group="1", transaction="0001"):
    eid = s.open_encounter(app, patient_ref=f"PT-{number}")
    s.code(app, eid, "E11.9")
    s.line(app, eid, "99213", "125.00", [1])
    submit(app, eid, number, group=group, transaction=transaction)
    return eid


@pytest.mark.parametrize("name,number,group,trn,status", [
    ("x12_999_accepted.txt", "C999A", "17456", "0001", "accepted"),
    ("x12_999_rejected.txt", "C999R", "28", "0028", "rejected"),
    ("x12_277CA_accepted.txt", "5781", "1", "0001", "accepted"),
    ("x12_277CA_rejected.txt", "3920394930203", "1", "0002", "rejected"),
])
def test_acknowledgements(app, imp, name, number, group, trn, status):
    eid = _submitted(app, number, group, trn)
    other = _submitted(app, "UNRELATED", "999", "9999")
    r = imp.import_path(X12 / "imsweb-x12-parser" / name)
    assert (r.outcome, r.posted, r.unmatched) == ("acknowledged", 1, 0), r.as_dict()
    enc = app.get_encounter(eid)
    assert enc.claims[number].status == status
    ack = [e for e in app.history(eid) if type(e).__name__ == "ClaimAcknowledged"][0]
    assert ack.source == ("999" if "999" in name else "277CA")
    assert app.get_encounter(other).claims["UNRELATED"].status == "submitted"
    again = imp.import_path(X12 / "imsweb-x12-parser" / name)
    assert again.outcome == "duplicate" and again.posted == 0
    if status == "rejected":  # a rejected claim is fixed and resubmitted as frequency 1
        findings = app.scrub_claim(eid, number, actor=s.BILLER).value
        assert not [f for f in findings if f.severity == "error"]
        app.execute(eid, "submit_claim", actor=s.BILLER, claim_number=number)
        assert app.get_encounter(eid).claims[number].frequency == "1"


def test_ack_for_unknown_claim_is_unmatched(imp):
    r = imp.import_path(X12 / "imsweb-x12-parser/x12_277CA_accepted.txt")
    assert r.outcome == "nothing" and r.unmatched == 1
