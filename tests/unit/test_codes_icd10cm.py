"""ICD-10-CM from real data (the shipped FY2025 and FY2026 sets, and the April-2026 update)
and yearly editions by date of service. No database."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from ledger.codes import icd10cm
from ledger.codes.icd10cm import (
    Edition,
    ICD10CMCodeSet,
    code_set_from_specs,
    default_code_set,
    order_file_edition,
    read_order_file,
)
from ledger.domain.encounter import Encounter
from ledger.domain.errors import InvalidCode, InvalidValue
from ledger.domain.model import Actor, ResponsibleParty

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "codes"
DOS = date(2026, 4, 10)  # the FY2026 April 1, 2026 update applies
OCTOBER_DOS = date(2026, 3, 10)  # FY2026 as of 1 Oct 2025
FY2025_DOS = date(2025, 5, 1)


@pytest.fixture(scope="module")
def cs() -> ICD10CMCodeSet:
    return default_code_set()


@pytest.mark.parametrize("code,description", [
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("I10", "Essential (primary) hypertension"),
    ("M54.50", "Low back pain, unspecified"),
    ("R10.31", "Right lower quadrant pain"),
    ("S52.521A", "Torus fracture of lower end of right radius, initial encounter for closed "
                 "fracture"),
    ("J45.901", "Unspecified asthma with (acute) exacerbation"),
])
def test_real_billable_codes_are_accepted(cs, code, description):
    verdict = cs.check(code.replace(".", ""), DOS)
    assert verdict.billable and verdict.rule == ""
    assert verdict.description == description
    assert verdict.version == "ICD-10-CM FY2026 (April 1, 2026 update)"


@pytest.mark.parametrize("code,rule,why", [
    ("R10.3", "icd10cm.not_billable", "'R10.3' is a subcategory, not a billable code: it needs "
                                      "more characters (R10.30, R10.31"),
    ("S52.521", "icd10cm.not_billable", "needs its 7th character (S52.521A"),
    ("E11", "icd10cm.not_billable", "'E11' is a category, not a billable code"),
    ("ZZZ.9", "icd10cm.format", "'ZZZ.9' is not in ICD-10-CM format"),
    ("99213X", "icd10cm.format", "'99213X' is not in ICD-10-CM format"),
    ("Z99.99", "icd10cm.unknown", "'Z99.99' is not an ICD-10-CM code in ICD-10-CM FY2026"),
])
def test_codes_are_refused_with_a_message_naming_why(cs, code, rule, why):
    verdict = cs.check(code, DOS)
    assert not verdict.billable and verdict.rule == rule
    assert why in verdict.message


def test_placeholder_and_qa0_codes(cs):
    assert "X placeholder and a 7th character (T07.XXXA" in cs.check("T07", DOS).message
    assert cs.check("T07.XXXA", DOS).billable
    # category QA0 (April 2026) has a letter in the 2nd position
    assert cs.check("QA0.0101", DOS).billable
    assert not cs.check("QA0.0101", OCTOBER_DOS).billable


def test_shipped_set_counts(cs):
    table = cs.table(cs.editions[0])
    billable = sum(1 for b, _ in table.entries.values() if b)
    # 74,724 leaves in the package's list, 5 of them listed twice (block and category B20,
    # F99, P84, R99, Z66): 74,719 distinct billable codes
    assert billable == 74_719


def test_a_date_of_service_outside_every_edition_is_refused_naming_the_set_and_how(cs):
    verdict = cs.check("E119", date(2024, 5, 1))
    assert verdict.rule == "icd10cm.dos" and "2024-05-01" in verdict.message
    # which set is missing, and how to add it
    assert "needs ICD-10-CM FY2024 (services 2023-10-01 to 2024-09-30)" in verdict.message
    assert "LEDGER_ICD10CM_ORDER_FILES=FY2024=/path/to/icd10cm_order_2024.txt" in \
        verdict.message
    assert "loaded: FY2025, FY2026" in verdict.message
    later = cs.check("E119", date(2026, 10, 1))
    assert later.rule == "icd10cm.dos" and "needs ICD-10-CM FY2027" in later.message


# ---------------------------------------------------------------- shipped editions by DOS
def test_the_shipped_editions_and_their_dates(cs):
    assert [(e.version, e.valid_from, e.valid_to) for e in cs.editions] == [
        ("ICD-10-CM FY2026 (April 1, 2026 update)", date(2026, 4, 1), date(2026, 9, 30)),
        ("ICD-10-CM FY2026 (October 1, 2025)", date(2025, 10, 1), date(2026, 3, 31)),
        ("ICD-10-CM FY2025 (April 1, 2025 release)", date(2024, 10, 1), date(2025, 9, 30))]
    assert cs.check("E119", date(2024, 10, 1)).version == \
        "ICD-10-CM FY2025 (April 1, 2025 release)"
    assert cs.check("E119", date(2025, 9, 30)).version == \
        "ICD-10-CM FY2025 (April 1, 2025 release)"
    assert cs.check("E119", date(2025, 10, 1)).version == "ICD-10-CM FY2026 (October 1, 2025)"
    assert cs.check("E119", date(2026, 4, 1)).version == \
        "ICD-10-CM FY2026 (April 1, 2026 update)"


def test_shipped_fy2025_counts(cs):
    fy2025 = cs.editions[-1]
    table = cs.table(fy2025)
    assert len(table) == 97_584
    assert sum(1 for b, _ in table.entries.values() if b) == 74_260


@pytest.mark.parametrize("code,description", [
    # new in FY2026 (1 Oct 2025): not in the FY2025 tabular list
    ("B88.01", "Infestation by Demodex mites"),
    ("R10.8A1", "Right flank tenderness"),
    ("T65.842D", "Toxic effect of xylazine, intentional self-harm, subsequent encounter"),
])
def test_a_code_added_in_fy2026_is_refused_for_2025_and_accepted_for_2026(cs, code,
                                                                           description):
    before = cs.check(code.replace(".", ""), FY2025_DOS)
    assert not before.billable and before.rule == "icd10cm.dos"
    assert before.version == "ICD-10-CM FY2025 (April 1, 2025 release)"
    assert f"'{code}' is not valid on the date of service 2025-05-01" in before.message
    assert "it exists in ICD-10-CM FY2026" in before.message
    after = cs.check(code.replace(".", ""), OCTOBER_DOS)
    assert after.billable and after.version == "ICD-10-CM FY2026 (October 1, 2025)"
    assert after.description == description


def test_a_code_deleted_for_fy2026_is_accepted_for_2025_and_refused_for_2026(cs):
    # S30.1XXA (contusion of abdominal wall) was split into S30.10-S30.12 for FY2026
    old = cs.check("S301XXA", FY2025_DOS)
    assert old.billable and old.description == "Contusion of abdominal wall, initial encounter"
    new = cs.check("S301XXA", OCTOBER_DOS)
    assert not new.billable and new.rule == "icd10cm.dos"
    assert "exists in ICD-10-CM FY2025" in new.message


def test_a_code_that_became_a_category_in_fy2026(cs):
    # G35 (multiple sclerosis) was billable in FY2025; FY2026 subdivided it
    assert cs.check("G35", FY2025_DOS).billable
    after = cs.check("G35", OCTOBER_DOS)
    assert after.rule == "icd10cm.not_billable" and "'G35' is a category" in after.message


def test_the_april_2026_update_applies_from_april_first(cs):
    early = cs.check("QA00101", date(2026, 3, 31))
    assert not early.billable and early.rule == "icd10cm.dos"
    assert "the April 1, 2026 update added it, for services from 2026-04-01" in early.message
    assert cs.check("QA00101", date(2026, 4, 1)).billable
    assert cs.check("QA00101", FY2025_DOS).rule in ("icd10cm.dos", "icd10cm.format")


def test_an_encounter_of_2025_codes_with_fy2025(cs):
    enc = Encounter.open(facility_id="F", patient_ref="P-1", service_from=FY2025_DOS,
                         service_to=None, place_of_service="11", actor=Actor("b", "biller"),
                         responsible_parties=[ResponsibleParty("primary", "insurer", "X"),
                                              ResponsibleParty("patient", "patient", "")])
    enc.code_diagnosis("S30.1XXA", code_set=cs, actor=Actor("c", "coder"))
    assert enc.collect_events()[-1].code_set_version == \
        "ICD-10-CM FY2025 (April 1, 2025 release)"
    with pytest.raises(InvalidCode) as err:
        enc.code_diagnosis("L98.A1", code_set=cs, actor=Actor("c", "coder"))
    assert err.value.rule == "icd10cm.dos"


def test_the_domain_records_the_code_set_version_on_diagnosis_coded(cs):
    enc = Encounter.open(facility_id="F", patient_ref="P-1", service_from=DOS, service_to=None,
                         place_of_service="11", actor=Actor("b", "biller"),
                         responsible_parties=[ResponsibleParty("primary", "insurer", "X"),
                                              ResponsibleParty("patient", "patient", "")])
    enc.code_diagnosis("J45.901", code_set=cs, actor=Actor("c", "coder"))
    event = enc.collect_events()[-1]
    assert type(event).__name__ == "DiagnosisCoded"
    assert event.code == "J45901"
    assert event.code_set_version == "ICD-10-CM FY2026 (April 1, 2026 update)"
    with pytest.raises(InvalidCode) as err:
        enc.code_diagnosis("S52.521", code_set=cs, actor=Actor("c", "coder"))
    assert err.value.rule == "icd10cm.not_billable" and "7th character" in err.value.message


# ---------------------------------------------------------------- editions by DOS
def two_editions() -> ICD10CMCodeSet:
    return code_set_from_specs(os.pathsep.join([
        str(FIXTURES / "icd10cm_order_2022.txt"),
        f"FY2021={FIXTURES / 'icd10cm_order_2021.txt'}"]))


def test_order_file_layout():
    entries = read_order_file(FIXTURES / "icd10cm_order_2022.txt")
    assert entries["M5450"] == (True, "Low back pain, unspecified")
    assert entries["M545"] == (False, "Low back pain")


def test_the_edition_covering_the_date_of_service_decides():
    cs = two_editions()
    assert [e.version for e in cs.editions[:2]] == [
        "ICD-10-CM FY2022 (icd10cm_order_2022.txt)", "ICD-10-CM FY2021 (icd10cm_order_2021.txt)"]
    # M54.5 was billable until 30 Sep 2021, then split into M54.50/M54.51/M54.59
    assert cs.check("M545", date(2021, 5, 1)).billable
    before = cs.check("M545", date(2021, 5, 1))
    assert before.version == "ICD-10-CM FY2021 (icd10cm_order_2021.txt)"
    after = cs.check("M545", date(2021, 10, 1))
    assert after.rule == "icd10cm.not_billable" and "M54.50, M54.51, M54.59" in after.message
    early = cs.check("M5450", date(2021, 9, 30))
    assert early.rule == "icd10cm.dos"
    assert "not valid on the date of service 2021-09-30" in early.message
    assert "FY2022" in early.message
    assert cs.check("M5450", date(2021, 10, 1)).billable
    # the shipped set still answers for FY2026
    assert cs.check("M5450", DOS).version.startswith("ICD-10-CM FY2026")


def test_bad_order_files_are_refused_naming_the_setting(tmp_path):
    bad = tmp_path / "icd10cm_order_2027.txt"
    bad.write_text("this is not an order file\n")
    with pytest.raises(InvalidValue) as err:
        read_order_file(bad)
    assert err.value.field == "icd10cm_order_file" and err.value.rule == "icd10cm_file.row"
    with pytest.raises(InvalidValue) as err:
        order_file_edition(str(tmp_path / "codes.txt"))
    assert err.value.rule == "icd10cm_file.year"
    assert order_file_edition(f"FY2027={tmp_path / 'codes.txt'}").valid_from == date(2026, 10, 1)


# ---------------------------------------------------------------- the on-disk cache
def test_the_built_table_is_cached_and_a_broken_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGER_CODES_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(icd10cm, "_packaged_fingerprint", lambda: "test-fingerprint")
    calls = []

    def source():
        calls.append(1)
        return {"E119": (True, "Type 2 diabetes mellitus without complications"),
                "E11": (False, "Type 2 diabetes mellitus")}

    edition = Edition("TEST", date(2025, 10, 1), date(2026, 9, 30), source,
                      cache_key="packaged-test")
    assert ICD10CMCodeSet([edition]).check("E119", DOS).billable
    assert ICD10CMCodeSet([edition]).check("E11", DOS).rule == "icd10cm.not_billable"
    assert len(calls) == 1, "the second process-equivalent load came from the cache"
    (cached,) = tmp_path.glob("icd10cm-packaged-test-*.json")
    cached.write_text("{broken")
    assert ICD10CMCodeSet([edition]).check("E119", DOS).billable
    assert len(calls) == 2
    assert ICD10CMCodeSet([edition], cache=False).check("E119", DOS).billable
    assert len(calls) == 3
