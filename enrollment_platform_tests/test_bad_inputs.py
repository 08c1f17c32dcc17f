"""A raw layer full of bad files still runs: each bad input is a clear message or a quarantine entry."""

import shutil
from pathlib import Path

import duckdb
import pytest

from enrollment_platform.runner import run_pipeline
from enrollment_platform_tests.conftest import local_settings

HEADER = "e_id,s_id,c_id,instructor_id,enrollment_date,marks_scored,attendance_percentage\n"
BAD_FILES = {
    "enrollment/empty.csv": b"",
    "enrollment/header_only.csv": HEADER.encode(),
    "enrollment/no_student_column.csv": b"e_id,c_id,enrollment_date\n9001,101,2024-01-01\n9002,102,2024-01-02\n",
    "enrollment/latin1.csv": (HEADER + "9003,1,101,201,2024-02-01,70,80\n").encode("latin-1")
    + "9004,2,101,201,2024-02-01,71,81,Müller\n".encode("latin-1"),
    "enrollment/picture.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,
    "enrollment/broken.jsonl": (
        b'{"e_id": "9005", "s_id": "3", "c_id": "101", "enrollment_date": "2024-03-01"}\n{not json\n'
    ),
    "student/wrong_types.csv": b"student_id,fname,lname,dob\n901,Ada,Lovelace,not-a-date\n",
}


@pytest.fixture(scope="module")
def bad_run(original_raw, tmp_path_factory):
    raw = tmp_path_factory.mktemp("bad_raw")
    shutil.copytree(original_raw, raw, dirs_exist_ok=True)
    for name, content in BAD_FILES.items():
        (raw / name).write_bytes(content)
    settings = local_settings(tmp_path_factory.mktemp("bad_home"), raw)
    summary = run_pipeline(settings)
    return settings, summary


def quarantine(settings, dataset: str) -> list[tuple[str, list[str]]]:
    path = Path(settings.lake_uri, "quarantine", dataset, "*", "rows-*.parquet")
    return duckdb.execute(
        f"SELECT _source_file, DataQualityRulesFail FROM read_parquet('{path}') ORDER BY _source_file, _source_row"
    ).fetchall()


def test_run_succeeds_and_every_dataset_reconciles(bad_run):
    _, summary = bad_run
    assert summary.success, summary.failures
    for dataset, counts in summary.datasets.items():
        assert counts["reconciled"] is True, dataset


def test_binary_file_is_listed_as_rejected_with_its_reason(bad_run):
    settings, summary = bad_run
    assert summary.datasets["enrollments"]["files_rejected"] == 1
    path = Path(settings.lake_uri, "quarantine", "enrollments", "*", "files-*.parquet")
    rows = duckdb.execute(f"SELECT path, reason FROM read_parquet('{path}')").fetchall()
    assert rows == [("enrollment/picture.csv", "binary content (NUL bytes): not a text table")]


def test_rows_of_a_file_without_a_required_column_are_quarantined_with_the_reason(bad_run):
    settings, _ = bad_run
    entries = [
        reasons for file, reasons in quarantine(settings, "enrollments") if file == "enrollment/no_student_column.csv"
    ]
    assert len(entries) == 2
    assert all(any("no required column 'student_id'" in r for r in reasons) for reasons in entries)


def test_malformed_json_line_is_quarantined_and_the_good_line_kept(bad_run):
    settings, _ = bad_run
    entries = [reasons for file, reasons in quarantine(settings, "enrollments") if file == "enrollment/broken.jsonl"]
    assert len(entries) == 1 and entries[0][0].startswith("malformed JSON line 2")
    with duckdb.connect(settings.warehouse_url.removeprefix("duckdb:///"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM enrollment_fact WHERE enrollment_id = '9005'").fetchone()[0] == 1


def test_latin1_file_rows_are_loaded(bad_run):
    settings, _ = bad_run
    with duckdb.connect(settings.warehouse_url.removeprefix("duckdb:///"), read_only=True) as con:
        loaded = con.execute("SELECT count(*) FROM enrollment_fact WHERE enrollment_id IN ('9003', '9004')").fetchone()
    # 9004 has one field too many: its line is quarantined as malformed, 9003 loads
    assert loaded[0] == 1
    entries = [reasons for file, reasons in quarantine(settings, "enrollments") if file == "enrollment/latin1.csv"]
    assert len(entries) == 1 and entries[0][0].startswith("malformed CSV line 3")


def test_value_of_the_wrong_type_is_quarantined_with_the_column_named(bad_run):
    settings, _ = bad_run
    entries = quarantine(settings, "students")
    assert entries == [("student/wrong_types.csv", ["date_of_birth: value is not a valid date"])]


def test_empty_and_header_only_files_add_no_rows_and_no_errors(bad_run):
    _, summary = bad_run
    # 140 original + 2 (no student column) + 2 (latin-1, one malformed) + 2 (json, one malformed)
    assert summary.datasets["enrollments"]["rows_in"] == 146
