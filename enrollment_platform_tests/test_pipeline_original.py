"""The original AWS system's raw files, dropped in as they are, with no configuration."""

from __future__ import annotations

import duckdb

from enrollment_platform.resources.warehouse import duckdb_path


def warehouse(settings) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(duckdb_path(settings.warehouse_url), read_only=True)


def test_enrollment_counts(original_run):
    settings, summary = original_run
    counts = summary.datasets["enrollments"]
    assert counts["rows_in"] == 140
    assert counts["rows_quarantined"] == 15
    assert counts["rows_duplicate"] == 0
    assert counts["rows_out"] == 125
    with warehouse(settings) as con:
        assert con.execute("SELECT count(*) FROM enrollment_fact").fetchone()[0] == 125
        assert (
            con.execute(
                "SELECT count(*) FROM enrollment_fact WHERE student_key IS NULL OR course_key IS NULL"
            ).fetchone()[0]
            == 0
        )


def test_the_fifteen_orphans_are_quarantined_for_their_missing_student(original_run):
    settings, _ = original_run
    quarantine = f"{settings.lake_uri}/quarantine/enrollments/*/rows-*.parquet"
    rows = duckdb.execute(f"SELECT student_id, DataQualityRulesFail FROM read_parquet('{quarantine}')").fetchall()
    assert len(rows) == 15
    for student_id, failed in rows:
        assert failed == [
            'ReferentialIntegrity "student_id" "students.student_id" = 1.0 labels=["severity"="blocking"]'
        ]
        assert int(student_id) > 55


def test_students_from_csv_and_json_lines_with_full_name(original_run):
    settings, summary = original_run
    assert summary.datasets["students"]["rows_in"] == 55
    with warehouse(settings) as con:
        assert con.execute("SELECT count(*) FROM student_dim").fetchone()[0] == 55
        assert con.execute("SELECT full_name FROM student_dim WHERE student_id = '1'").fetchone()[0] == "John Doe"
        assert con.execute("SELECT count(*) FROM student_dim WHERE full_name IS NULL").fetchone()[0] == 0


def test_both_date_formats_are_parsed(original_run):
    settings, _ = original_run
    with warehouse(settings) as con:
        # student.csv writes M/D/YYYY, student1.json ISO; both become a birth year
        assert con.execute("SELECT birth_year FROM student_dim WHERE student_id = '1'").fetchone()[0] == 1998
        assert con.execute("SELECT birth_year FROM student_dim WHERE student_id = '51'").fetchone()[0] == 2003
        assert con.execute("SELECT count(*) FROM student_dim WHERE birth_year IS NULL").fetchone()[0] == 0
        dates = dict(
            con.execute(
                "SELECT enrollment_id, enrollment_date FROM enrollment_fact WHERE enrollment_id IN ('1001', '1151')"
            ).fetchall()
        )
    assert str(dates["1001"]) == "2023-09-15"  # 9/15/2023
    assert str(dates["1151"]) == "2024-06-05"  # 2024-06-05


def test_every_dataset_reconciles(original_run):
    _, summary = original_run
    for dataset, counts in summary.datasets.items():
        assert counts["rows_in"] == counts["rows_out"] + counts["rows_quarantined"] + counts["rows_duplicate"], dataset
        assert counts["reconciled"] is True


def test_student_dim_holds_no_raw_pii(original_run):
    settings, _ = original_run
    with warehouse(settings) as con:
        columns = {r[0] for r in con.execute("DESCRIBE student_dim").fetchall()}
        assert not columns & {"phone", "date_of_birth", "ssn", "email", "address"}
        assert con.execute("SELECT phone_last4 FROM student_dim WHERE student_id = '1'").fetchone()[0] == "******4567"
        assert con.execute("SELECT phone FROM student_pii WHERE student_id = '1'").fetchone()[0] == "555-123-4567"
