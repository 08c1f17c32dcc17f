"""The whole Dagster graph on generated data with every defect kind: counts, files, idempotent loads."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from enrollment_platform.definitions import build_definitions
from enrollment_platform.jobs import all_assets_job
from enrollment_platform.partitions import range_tags
from enrollment_platform.resources.warehouse import duckdb_path
from enrollment_platform.runner import dagster_instance, run_pipeline, summarize

STAR_TABLES = ("student_dim", "course_dim", "instructor_dim", "enrollment_fact", "student_pii")
COUNTS = ("rows_in", "rows_out", "rows_quarantined", "rows_duplicate")


def test_counts_equal_what_the_generator_injected(generated_run):
    _, summary, manifest = generated_run
    for dataset, info in manifest["datasets"].items():
        got = {name: summary.datasets[dataset][name] for name in COUNTS}
        assert got == info["expected"], dataset


def test_reconciliation_holds_for_every_dataset(generated_run):
    _, summary, _ = generated_run
    assert set(summary.datasets) == {"students", "courses", "instructors", "enrollments"}
    for dataset, counts in summary.datasets.items():
        assert counts["rows_in"] == counts["rows_out"] + counts["rows_quarantined"] + counts["rows_duplicate"]
        assert counts["reconciled"] is True, dataset


def test_quarantine_reasons_match_injected_defects(generated_run):
    settings, _, manifest = generated_run
    defects = manifest["datasets"]["enrollments"]["defects"]
    path = Path(settings.lake_uri, "quarantine", "enrollments", "*", "rows-*.parquet")
    reasons = dict(
        duckdb.execute(
            f"SELECT reason, count(*) FROM (SELECT unnest(DataQualityRulesFail) AS reason FROM read_parquet('{path}')) "
            "GROUP BY reason"
        ).fetchall()
    )

    def failed(prefix: str) -> int:
        return sum(n for reason, n in reasons.items() if reason.startswith(prefix))

    assert failed('IsPrimaryKey "enrollment_id"') == defects["missing_enrollment_id"]
    assert failed('IsComplete "enrollment_date"') == defects["missing_enrollment_date"]
    assert failed('ColumnValues "marks"') == defects["marks_out_of_range"]
    assert failed('ColumnValues "attendance_percentage"') == defects["attendance_out_of_range"]
    assert failed('ReferentialIntegrity "student_id"') == defects["orphan_student_id"]
    assert failed('ReferentialIntegrity "course_id"') == defects["orphan_course_id"]


def test_instructor_ratings_out_of_range_are_nulled_and_flagged(generated_run):
    settings, summary, manifest = generated_run
    expected = manifest["datasets"]["instructors"]["defects"]["rating_out_of_range"]
    with duckdb.connect(duckdb_path(settings.warehouse_url), read_only=True) as con:
        flagged = con.execute(
            "SELECT count(*) FROM instructor_dim WHERE dq_flags LIKE '%ColumnValues \"rating\"%'"
        ).fetchone()[0]
        out_of_range = con.execute("SELECT count(*) FROM instructor_dim WHERE rating < 0 OR rating > 5").fetchone()[0]
    assert flagged == expected and expected > 0
    assert out_of_range == 0
    assert summary.datasets["instructors"]["rows_quarantined"] == 0


def test_curated_files_are_parquet_with_snappy(generated_run):
    settings, _, _ = generated_run
    files = sorted(Path(settings.lake_uri, "curated").rglob("*.parquet"))
    assert {f.parent.name for f in files} == {"students", "courses", "instructors", "enrollments"}
    for file in files:
        metadata = pq.ParquetFile(file).metadata
        for group in range(metadata.num_row_groups):
            for column in range(metadata.num_columns):
                assert metadata.row_group(group).column(column).compression == "SNAPPY", file
    leftovers = [p for p in Path(settings.lake_uri).rglob("*.tmp")]
    assert leftovers == []


def _snapshot(settings) -> dict[str, list[tuple]]:
    with duckdb.connect(duckdb_path(settings.warehouse_url), read_only=True) as con:
        return {table: sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in STAR_TABLES}


def test_second_run_over_the_same_data_changes_no_warehouse_table(generated_run):
    settings, _, _ = generated_run
    before = _snapshot(settings)
    summary = run_pipeline(settings)
    assert summary.success and summary.nothing_new
    assert _snapshot(settings) == before


def test_rematerializing_a_processed_partition_changes_nothing(generated_run):
    """Materializing the same ingestion dates again (a manual re-run): no file is pending, every load is a no-op."""
    settings, _, _ = generated_run
    dates = sorted(set(_ingest_dates(settings)))
    before = _snapshot(settings)
    quarantine = f"{settings.lake_uri}/quarantine/*/*/rows-*.parquet"
    quarantined = duckdb.execute(f"SELECT count(*) FROM read_parquet('{quarantine}')").fetchone()[0]
    job = build_definitions(settings).resolve_job_def(all_assets_job.name)
    result = job.execute_in_process(instance=dagster_instance(settings), tags=range_tags(dates[0], dates[-1]))
    summary = summarize(result, settings, settings.raw_uri)
    assert _snapshot(settings) == before
    assert duckdb.execute(f"SELECT count(*) FROM read_parquet('{quarantine}')").fetchone()[0] == quarantined > 0
    for dataset, counts in summary.datasets.items():
        assert counts["rows_in"] == 0, dataset
    for table in ("student_dim", "course_dim", "instructor_dim", "enrollment_fact"):
        assert summary.warehouse[table]["inserted"] == 0
        assert summary.warehouse[table]["updated"] == 0
        assert summary.warehouse[table]["deleted"] == 0


def _ingest_dates(settings):
    from enrollment_platform.bookmarks import load_ledger
    from enrollment_platform.resources.lake import LocalLake

    return [entry["ingest_date"] for entry in load_ledger(LocalLake(root=settings.lake_uri)).values()]


def test_fact_rows_reference_existing_dimension_rows(generated_run):
    settings, summary, _ = generated_run
    with duckdb.connect(duckdb_path(settings.warehouse_url), read_only=True) as con:
        fact = con.execute("SELECT count(*) FROM enrollment_fact").fetchone()[0]
        joined = con.execute(
            "SELECT count(*) FROM enrollment_fact f JOIN student_dim s USING (student_key) "
            "JOIN course_dim c USING (course_key)"
        ).fetchone()[0]
    assert fact == joined == summary.datasets["enrollments"]["rows_out"]


@pytest.mark.parametrize("dataset", ["students", "enrollments"])
def test_curated_layer_carries_no_raw_pii_columns(generated_run, dataset):
    settings, _, _ = generated_run
    path = Path(settings.lake_uri, "curated", dataset, f"{dataset}.parquet")
    columns = set(pq.ParquetFile(path).schema_arrow.names)
    assert not columns & {"ssn", "email", "phone", "date_of_birth", "address"}
    leaks = duckdb.execute(
        f"SELECT count(*) FROM read_parquet('{path}') "
        r"WHERE regexp_matches(notes, '\d{3}-\d{2}-\d{4}|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[a-z]{2,}')"
    ).fetchone()[0]
    assert leaks == 0
