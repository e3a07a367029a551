"""Loaders for the CMS files a deployment supplies (HCPCS, NCCI PTP, MUE) and the CPT
descriptor CSV, read from tiny test files in the same layouts. No database."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ledger.codes.edits import (
    CMSEditTables,
    edit_tables_from_settings,
    read_mue_files,
    read_ptp_files,
)
from ledger.codes.procedures import (
    CptDescriptors,
    HcpcsCodeSet,
    read_cpt_descriptors,
    read_hcpcs_file,
)
from ledger.config import Settings
from ledger.domain.errors import InvalidValue
from ledger.domain.scrubber import EditTables, MUELimit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "codes"
PTP = FIXTURES / "ncci_ptp_test.txt"
MUE = FIXTURES / "mue_test.csv"
HCPCS = FIXTURES / "hcpcs_test_anweb.txt"
CPT = FIXTURES / "cpt_descriptors_test.csv"


# ---------------------------------------------------------------- HCPCS
def test_hcpcs_quarterly_file_codes_modifiers_and_continuations():
    codes, modifiers = read_hcpcs_file(HCPCS)
    assert set(codes) == {"A0428", "J1100", "J3301", "J7999", "S9999", "G0999"}
    j = codes["J1100"]
    assert j.long_description == "Injection, dexamethasone sodium phosphate, 1 mg"
    assert j.short_description == "Dexamethasone sodium phos"
    assert j.added == date(1994, 1, 1) and j.terminated is None and j.action == "N"
    assert codes["J7999"].long_description.endswith("whose long description continues on a "
                                                    "second line)")
    assert codes["S9999"].terminated == date(2025, 12, 31) and codes["S9999"].action == "D"
    assert modifiers["GA"].long_description.endswith("payer policy, individual case")
    assert set(modifiers) == {"GA", "XE", "LT"}


def test_hcpcs_validity_on_the_date_of_service():
    hcpcs = HcpcsCodeSet(HCPCS)
    assert hcpcs.check("J1100", date(2026, 3, 10)).billable
    assert hcpcs.check("J1100", date(2026, 3, 10)).description.startswith("Injection, dexa")
    gone = hcpcs.check("S9999", date(2026, 3, 10))
    assert gone.rule == "hcpcs.dos" and "discontinued after 2025-12-31" in gone.message
    assert hcpcs.check("S9999", date(2025, 12, 31)).billable
    future = hcpcs.check("G0999", date(2026, 3, 10))
    assert future.rule == "hcpcs.dos" and "starts on 2027-01-01" in future.message
    unknown = hcpcs.check("J9999", date(2026, 3, 10))
    assert unknown.rule == "hcpcs.unknown" and "hcpcs_test_anweb.txt" in unknown.message
    assert hcpcs.check("99213", date(2026, 3, 10)).billable, "CPT is outside the HCPCS file"
    assert hcpcs.version == "HCPCS (hcpcs_test_anweb.txt)"


def test_bad_hcpcs_files_are_refused_naming_line_and_rule(tmp_path):
    orphan = tmp_path / "orphan.txt"
    orphan.write_text("J1100000214continued text without its first line\n")
    with pytest.raises(InvalidValue) as err:
        read_hcpcs_file(orphan)
    assert err.value.field == "hcpcs_file" and err.value.rule == "hcpcs_file.continuation"
    assert "line 1" in err.value.message
    bad_date = tmp_path / "date.txt"
    bad_date.write_text(HCPCS.read_text().splitlines()[1][:284] + "2026AB01N\n")
    with pytest.raises(InvalidValue) as err:
        read_hcpcs_file(bad_date)
    assert err.value.rule == "hcpcs_file.date"


# ---------------------------------------------------------------- CPT descriptors
def test_cpt_descriptor_csv():
    table = read_cpt_descriptors(CPT)
    assert table["99213"] == "Office visit for an established patient (test text)"
    assert set(table) == {"99213", "96372", "0001F"}
    cpt = CptDescriptors(CPT)
    assert cpt.description("96372").startswith("Injection under the skin")
    assert cpt.description("99999") == ""
    assert CptDescriptors().description("99213") == "" and CptDescriptors().version == ""


def test_bad_cpt_descriptor_files(tmp_path):
    no_header = tmp_path / "a.csv"
    no_header.write_text("99213,Office visit\n")
    with pytest.raises(InvalidValue) as err:
        read_cpt_descriptors(no_header)
    assert err.value.rule == "cpt_file.header"
    bad_code = tmp_path / "b.csv"
    bad_code.write_text("code,description\nJ1100,not a CPT code\n")
    with pytest.raises(InvalidValue) as err:
        read_cpt_descriptors(bad_code)
    assert err.value.rule == "cpt_file.code" and "row 2" in err.value.message


# ---------------------------------------------------------------- NCCI PTP and MUE
def test_ptp_file_dated_edits_and_indicators():
    table = read_ptp_files([PTP])
    assert len(table) == 7
    (edit,) = table.edits("96372", "99213")
    assert edit.modifier_indicator == "1" and edit.effective == date(2024, 1, 1)
    assert edit.deleted is None and edit.rationale.startswith("Misuse of column two")
    assert table.edits("99213", "96372") == [], "pairs are ordered: column 1, column 2"
    old, new = table.edits("96372", "99214")
    assert (old.deleted, new.modifier_indicator) == (date(2023, 1, 1), "0")
    tables = CMSEditTables(str(PTP))
    assert tables.ptp_edit("96372", "99214", date(2022, 6, 1)).modifier_indicator == "1"
    assert tables.ptp_edit("96372", "99214", date(2023, 1, 1)) is None, "deleted that day"
    assert tables.ptp_edit("96372", "99214", date(2026, 3, 10)).modifier_indicator == "0"
    assert tables.ptp_edit("93000", "93005", date(1996, 1, 1)) is not None
    assert tables.ptp_edit("93000", "93005", date(1995, 12, 31)) is None


def test_ptp_reads_a_comma_separated_export_too(tmp_path):
    csv_file = tmp_path / "ptp.csv"
    csv_file.write_text(PTP.read_text().replace("\t", ","))
    assert len(read_ptp_files([csv_file])) == 7


def test_mue_file_limits_and_adjudication_indicators():
    limits = read_mue_files([MUE])
    assert limits["J1100"] == MUELimit("J1100", 8, "3", "Clinical: Data")
    assert limits["J1100"].per_date_of_service
    assert not limits["36415"].per_date_of_service
    assert set(limits) == {"J1100", "96372", "99213", "36415"}


@pytest.mark.parametrize("row,rule", [
    ("96372\t99213\t\t2024-01-01\t*\t1\tx", "edit_file.date"),
    ("96372\t99213\t\t20240101\t*\t5\tx", "edit_file.modifier_indicator"),
])
def test_bad_ptp_rows_are_refused(tmp_path, row, rule):
    f = tmp_path / "ptp.txt"
    f.write_text(row + "\n")
    with pytest.raises(InvalidValue) as err:
        read_ptp_files([f])
    assert err.value.field == "ncci_ptp_file" and err.value.rule == rule


def test_bad_mue_rows_are_refused(tmp_path):
    f = tmp_path / "mue.csv"
    f.write_text("HCPCS/CPT Code,Practitioner Services MUE Values,MUE Adjudication Indicator\n"
                 "J1100,eight,3 Date of Service Edit: Clinical\n")
    with pytest.raises(InvalidValue) as err:
        read_mue_files([f])
    assert err.value.field == "mue_file" and err.value.rule == "edit_file.mue_value"


def test_edit_tables_from_settings_are_lazy_and_versioned(tmp_path):
    assert type(edit_tables_from_settings(Settings())) is EditTables
    missing = edit_tables_from_settings(Settings(ncci_ptp_file=str(tmp_path / "absent.txt")))
    assert isinstance(missing, CMSEditTables), "nothing is read until the first scrub"
    tables = edit_tables_from_settings(Settings(ncci_ptp_file=str(PTP), mue_file=str(MUE),
                                                hcpcs_file=str(HCPCS)))
    assert isinstance(tables, CMSEditTables)
    assert tables.counts() == {"ptp_pairs": 7, "mue_codes": 4}
    version = tables.version
    assert version.startswith("ncci-ptp:ncci_ptp_test.txt#") and ";mue:mue_test.csv#" in version
    assert version.endswith(";HCPCS (hcpcs_test_anweb.txt)")
    assert tables.procedure_codes is not None


def test_missing_files_are_refused_naming_the_setting(tmp_path):
    absent = tmp_path / "absent.txt"
    for call, field in ((lambda: CMSEditTables(str(absent)).load(), "ncci_ptp_file"),
                        (lambda: CMSEditTables(None, str(absent)).load(), "mue_file"),
                        (lambda: read_hcpcs_file(absent), "hcpcs_file"),
                        (lambda: read_cpt_descriptors(absent), "cpt_descriptor_file")):
        with pytest.raises(InvalidValue) as err:
            call()
        assert err.value.field == field and err.value.rule.endswith(".unreadable")
        assert "absent.txt" in err.value.message
