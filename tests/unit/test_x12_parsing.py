"""X12 tokenizer, 835 reading and balancing, 999/277CA reading: no database."""

from __future__ import annotations

import pytest

from ledger.domain.values import Money
from ledger.x12.acks import read_277ca, read_999
from ledger.x12.remit835 import balance, read_835
from ledger.x12.tokenizer import Delimiters, X12Error, components, sniff, tokenize
from tests.conftest import FIXTURES

X12 = FIXTURES / "x12"
SCEN = FIXTURES / "scenarios"


def m(text):
    return Money.parse(text)


def test_tokenizer_reads_isa_delimiters():
    t = tokenize((X12 / "imsweb-x12-parser/x12_277CA_rejected.txt").read_bytes())
    assert t.has_isa and t.delimiters == Delimiters("*", "|", "~", "^")
    assert [s.id for s in t.segments][:3] == ["ISA", "GS", "ST"]
    assert sniff(t).kind == "277CA"


def test_tokenizer_without_isa_guesses_from_st_and_line_breaks():
    t = tokenize(b"ST*835*1234\nBPR*I*1*C*CHK\nSE*3*1234\n")
    assert not t.has_isa and [s.id for s in t.segments] == ["ST", "BPR", "SE"]
    assert t.segments[1].get(2) == "1"


@pytest.mark.parametrize("data,rule", [(b"", "x12.empty"), (b"   \n", "x12.empty"),
                                       (b"PDF-1.4 garbage", "x12.not_x12"),
                                       (b"\x00\x00", "x12.not_text"),
                                       (b"ISA*00*x~", "x12.isa_length")])
def test_tokenizer_refuses_non_x12_with_rule(data, rule):
    with pytest.raises(X12Error) as err:
        tokenize(data)
    assert err.value.rule == rule


def test_components_fall_back_to_the_separator_actually_used():
    d = Delimiters()
    assert components("HC:99214:25", d) == ["HC", "99214", "25"]
    assert components("HC>12345>26", d) == ["HC", "12345", "26"]
    assert components("HC", d) == ["HC"]


def test_sniff_kinds():
    assert sniff(tokenize((SCEN / "s01_original_freq1.837p").read_bytes())).kind == "837P"
    assert sniff(tokenize((X12 / "linuxforhealth-x12/demo-file__demo.837i").read_bytes())
                 ).kind == "837I"
    assert sniff(tokenize((X12 / "imsweb-x12-parser/x12_999_accepted.txt").read_bytes())
                 ).kind == "999"


def test_read_scenario_1_835():
    p = read_835((SCEN / "s01_copay_co45.835").read_bytes())
    assert not p.errors
    (r,) = p.remittances
    assert (r.payer_id, r.trace_number, r.total_paid) == ("1512345678", "EFT0001", m("114.82"))
    (c,) = r.claims
    assert (c.claim_number, c.status, c.charge, c.paid, c.patient_responsibility, c.payer_icn) \
        == ("ENC1001", "1", m("240.00"), m("114.82"), m("30.00"), "ICN2026A0001")
    assert [(s.procedure_code, s.allowed, s.control_number) for s in c.services] == [
        ("99214", m("128.50"), "1001-1"), ("83036", m("13.32"), "1001-2"),
        ("36415", m("3.00"), "1001-3")]
    assert [(a.group, a.reason, a.amount) for a in c.services[0].adjustments] == [
        ("CO", "45", m("51.50")), ("PR", "3", m("30.00"))]
    assert r.content_hash.startswith("sha256:")
    assert balance(p.remittances) == []


def test_oxedi_snip_diagnostics_are_warnings():
    data = (X12 / "linuxforhealth-x12/835_005010X221A1__secondary-payment.835").read_bytes()
    with_oxedi, without = read_835(data), read_835(data, use_oxedi=False)
    snip = [i for i in with_oxedi.issues if i.rule.startswith("snip")]
    assert snip and all(i.severity == "warning" for i in snip)
    assert not [i for i in without.issues if i.rule.startswith("snip")]
    assert not with_oxedi.errors
    assert [c.claim_number for c in with_oxedi.remittances[0].claims] == [
        c.claim_number for c in without.remittances[0].claims]


def test_cas_with_several_triplets_and_denial_remarks():
    p = read_835((SCEN / "s02_deductible_coins.835").read_bytes())
    svc = p.remittances[0].claims[0].services[0]
    assert [(a.group, a.reason, a.amount) for a in svc.adjustments] == [
        ("CO", "45", m("90.00")), ("PR", "1", m("100.00")), ("PR", "2", m("12.00"))]
    p = read_835((SCEN / "s03a_denial_co50.835").read_bytes())
    assert p.remittances[0].claims[0].services[0].remarks == ["N115"]
    assert p.remittances[0].claims[0].patient_responsibility == m("0.00")


def _835(body: str) -> bytes:
    isa = ("ISA*00*          *00*          *ZZ*PAYER          *ZZ*PROVIDER       *260415*1200*"
           "^*00501*000000001*0*T*:~GS*HP*PAYER*PROVIDER*20260415*1200*1*X*005010X221A1~")
    segs = body.strip().split("\n")
    return (isa + "~".join(["ST*835*0001", *segs, f"SE*{len(segs) + 2}*0001"]) +
            "~GE*1*1~IEA*1*000000001~").encode()


BASE = """BPR*I*{bpr}*C*ACH*CCP*01*1*DA*1*1**01*1*DA*1*20260415
TRN*1*T1*PAYER1
CLP*C1*1*100.00*{paid}*{pr}*12*ICN1
SVC*HC:99213*100.00*{svc_paid}**1
CAS*CO*45*{co}
CAS*PR*3*20.00
{plb}"""


@pytest.mark.parametrize("values,rule", [
    (dict(bpr="60.00", paid="60.00", pr="20.00", svc_paid="60.00", co="20.00", plb=""), None),
    (dict(bpr="60.00", paid="60.00", pr="20.00", svc_paid="60.00", co="25.00", plb=""),
     "835.line_balance"),
    (dict(bpr="55.00", paid="55.00", pr="20.00", svc_paid="60.00", co="20.00", plb=""),
     "835.claim_balance"),
    (dict(bpr="60.00", paid="60.00", pr="25.00", svc_paid="60.00", co="20.00", plb=""),
     "835.patient_responsibility"),
    (dict(bpr="61.00", paid="60.00", pr="20.00", svc_paid="60.00", co="20.00", plb=""),
     "835.transaction_balance"),
    # a positive PLB (e.g. WO recoupment) reduces the payment; a negative one (L6) adds
    (dict(bpr="50.00", paid="60.00", pr="20.00", svc_paid="60.00", co="20.00",
          plb="PLB*123*20261231*WO:ICN0*10.00"), None),
    (dict(bpr="62.50", paid="60.00", pr="20.00", svc_paid="60.00", co="20.00",
          plb="PLB*123*20261231*L6:C1*-2.50"), None),
])
def test_balancing_rules(values, rule):
    p = read_835(_835(BASE.format(**values)))
    assert not p.errors
    rules = [i.rule for i in balance(p.remittances)]
    assert (rules[:1] == [rule]) if rule else rules == []


def test_cas_group_from_4010_is_refused():
    p = read_835(_835(BASE.format(bpr="60.00", paid="60.00", pr="20.00", svc_paid="60.00",
                                  co="20.00", plb="").replace("CAS*CO*45", "CAS*CR*45")))
    assert "835.cas_group" in [i.rule for i in balance(p.remittances)]


def test_malformed_segments_are_issues_not_crashes():
    p = read_835(_835(BASE.format(bpr="6O.00", paid="60.00", pr="20.00", svc_paid="60.00",
                                  co="20.00", plb="")))
    assert [i.rule for i in p.errors] == ["x12.amount_format"]
    p = read_835(_835("BPR*I*1*C\nCLP**1*1*1"))
    assert {i.rule for i in p.errors} >= {"835.trace_missing", "x12.element_required"}


def test_999_and_277ca():
    a = read_999(tokenize((X12 / "imsweb-x12-parser/x12_999_rejected.txt").read_bytes()))
    (ack,) = a.acks
    assert (ack.group_control, ack.transaction_control, ack.accepted, ack.category) == (
        "28", "0028", False, "R")
    a = read_277ca(tokenize((X12 / "imsweb-x12-parser/x12_277CA_rejected.txt").read_bytes()))
    (ack,) = a.acks
    assert (ack.claim_number, ack.accepted, ack.category) == ("3920394930203", False, "A7")
    a = read_277ca(tokenize((X12 / "imsweb-x12-parser/x12_277CA_accepted.txt").read_bytes()))
    assert [(x.claim_number, x.accepted, x.category) for x in a.acks] == [("5781", True, "A2")]


def test_clp11_drg_code_is_read():
    body = """BPR*I*12650.00*C*ACH*CCP*01*1*DA*1*1**01*1*DA*1*20260415
TRN*1*T8*PAYER1
CLP*S8-0001*1*24070.00*12650.00*1600.00*12*ICN-S8*11*1*01*470
CAS*CO*45*9820.00
CAS*PR*1*1600.00"""
    (claim,) = read_835(_835(body)).remittances[0].claims
    assert (claim.drg_code, claim.payer_icn, claim.frequency) == ("470", "ICN-S8", "1")
