"""PII through the whole pipeline: the leak scan over curated files and warehouse, the detection report against
the generator's manifest, the redacted notes, and keyed tokens across tables. (Tokens across runs and keys:
test_pii_keys.py; a second run over the same data leaving student_dim unchanged: test_pipeline_generated.py.)"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from enrollment_platform.assets.warehouse import warehouse_assets
from enrollment_platform.generator.names import PII_NOTES
from enrollment_platform.pii.detectors import default_detector
from enrollment_platform.pii.leak_scan import (
    CHECK_NAME,
    Leak,
    scan_curated,
    scan_parquet,
    scan_warehouse,
    scan_warehouse_table,
)
from enrollment_platform.pii.report import REPORT_SCHEMA, report_path
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.pii import LocalPiiKey
from enrollment_platform.resources.warehouse import DuckDBWarehouse, duckdb_path
from enrollment_platform.runner import dagster_instance

DATASETS = ("students", "courses", "instructors", "enrollments")


def _resources(settings) -> tuple[LocalLake, DuckDBEngine, DuckDBWarehouse]:
    return (
        LocalLake(root=settings.lake_uri),
        DuckDBEngine(),
        DuckDBWarehouse(path=duckdb_path(settings.warehouse_url)),
    )


def _report(settings, dataset: str, run_id: str) -> list[dict]:
    path = Path(settings.lake_uri, *report_path(dataset, run_id))
    cursor = duckdb.execute(f"SELECT * FROM read_parquet('{path}')")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.mark.parametrize("fixture", ["generated_run", "original_run"])
def test_leak_scan_finds_nothing_outside_the_restricted_table(fixture, request):
    settings = request.getfixturevalue(fixture)[0]
    lake, engine, warehouse = _resources(settings)
    assert [leak for dataset in DATASETS for leak in scan_curated(lake, engine, dataset)] == []
    assert scan_warehouse(warehouse) == []
    assert {"student_dim", "enrollment_fact", "student_pii"} <= set(warehouse.tables())


def test_the_scan_does_find_the_raw_values_the_restricted_table_holds(generated_run):
    """The same scan that passes the curated layer finds every raw SSN, e-mail and phone of student_pii."""
    settings, summary, _ = generated_run
    lake, engine, warehouse = _resources(settings)
    rows = summary.warehouse["student_pii"]["rows"]
    found = scan_parquet(engine, "student_pii", lake.list("restricted", "student_pii"))
    assert {(leak.column, leak.entity) for leak in found} == {
        ("email", "EMAIL"),
        ("phone", "PHONE_NUMBER"),
        ("ssn", "USA_SSN"),
    }
    assert all(leak.matches == rows for leak in found)
    assert scan_warehouse_table(warehouse, "student_pii") == []  # restricted: never scanned


def test_leak_checks_ran_blocking_and_passed(generated_run):
    settings, summary, _ = generated_run
    instance = dagster_instance(settings)
    evaluations = [
        event.dagster_event.event_specific_data
        for event in instance.all_logs(summary.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    leak_checks = {e.asset_key.to_user_string(): e for e in evaluations if e.check_name == CHECK_NAME}
    keys = [k.to_user_string() for asset in warehouse_assets for k in asset.keys]
    warehouse_tables = {k for k in keys if k.startswith("warehouse/")}
    expected = {f"curated/{d}" for d in DATASETS} | {t for t in warehouse_tables if "pii" not in t}
    assert set(leak_checks) == expected
    assert {"warehouse/student_dim", "warehouse/enrollment_fact", "warehouse/dq_results"} <= expected
    assert "warehouse/student_pii" in warehouse_tables - expected
    assert all(e.passed and e.metadata["matches_total"].value == 0 for e in leak_checks.values())
    assert all(e.blocking for e in leak_checks.values())


def test_detection_report_counts_equal_the_manifest(generated_run):
    settings, summary, manifest = generated_run
    for dataset in ("students", "enrollments"):
        rows = _report(settings, dataset, summary.run_id)
        notes = [r for r in rows if r["column"] == "notes"]
        defects = manifest["datasets"][dataset]["defects"]
        assert sum(r["detections"] for r in notes) == defects["notes_with_pii"] > 0
        assert {r["entity"] for r in notes} == {"USA_SSN", "PHONE_NUMBER", "EMAIL"}
        assert {r["action"] for r in notes} == {"redact"}
    students_in = manifest["datasets"]["students"]["expected"]["rows_in"]
    columns = {(r["column"], r["entity"]): r for r in _report(settings, "students", summary.run_id)}
    for column, entity, action in [
        ("ssn", "USA_SSN", "hash"),
        ("email", "EMAIL", "hash"),
        ("phone", "PHONE_NUMBER", "partial"),
        ("date_of_birth", "DATE", "generalize"),
    ]:
        assert (columns[(column, entity)]["detections"], columns[(column, entity)]["action"]) == (students_in, action)


def test_detection_report_has_the_agreed_columns_and_no_raw_values(generated_run):
    settings, summary, _ = generated_run
    paths = [str(Path(settings.lake_uri, *report_path(d, summary.run_id))) for d in DATASETS]
    schema = duckdb.execute(f"DESCRIBE SELECT * FROM read_parquet({paths!r})").fetchall()
    assert [row[0] for row in schema] == REPORT_SCHEMA.names
    assert scan_parquet(DuckDBEngine(), "pii_reports", paths) == []


def test_redacted_notes_keep_the_sentence_around_each_placeholder(generated_run):
    """Every curated note that mentions PII is exactly one generator template with its value replaced."""
    settings, _, _ = generated_run
    entity = {"phone": "PHONE_NUMBER", "ssn": "USA_SSN", "email": "EMAIL"}
    templates = {prefix + f"[{entity[kind]}]" + suffix for prefix, kind, suffix in PII_NOTES}
    for dataset in ("students", "enrollments"):
        path = Path(settings.lake_uri, "curated", dataset, f"{dataset}.parquet")
        query = f"SELECT DISTINCT lower(trim(notes)) FROM read_parquet('{path}') WHERE notes LIKE '%[%'"
        notes = {row[0] for row in duckdb.execute(query).fetchall()}
        assert notes and notes <= {template.lower() for template in templates}


def test_tokens_are_the_keyed_hash_of_the_raw_value_in_every_table(generated_run):
    settings, _, _ = generated_run
    key = LocalPiiKey(home=str(settings.home)).key()
    curated = Path(settings.lake_uri, "curated", "students", "students.parquet")
    with duckdb.connect(duckdb_path(settings.warehouse_url), read_only=True) as con:
        rows = con.execute(
            "SELECT p.ssn, p.email, d.ssn_token, d.email_token, c.ssn_token, c.email_token "
            "FROM student_pii p JOIN student_dim d USING (student_id) "
            f"JOIN read_parquet('{curated}') c USING (student_id)"
        ).fetchall()
    assert rows
    for ssn, email, dim_ssn, dim_email, curated_ssn, curated_email in rows:
        ssn_token = hmac.new(key, re.sub(r"\D", "", ssn).encode(), hashlib.sha256).hexdigest()
        email_token = hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()
        assert dim_ssn == curated_ssn == ssn_token
        assert dim_email == curated_email == email_token


def test_a_planted_leak_fails_the_warehouse_check(generated_run, tmp_path):
    """A copy of the warehouse with one raw SSN written into a note: the check of that table fails, counts only."""
    import shutil

    from enrollment_platform.pii.leak_scan import build_warehouse_leak_check

    settings, _, _ = generated_run
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(duckdb_path(settings.warehouse_url), copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("UPDATE enrollment_fact SET notes = 'SSN 569-60-3012 on file' WHERE enrollment_key = 1")
    warehouse = DuckDBWarehouse(path=str(copy))
    assert scan_warehouse(warehouse) == [Leak("enrollment_fact", "notes", "USA_SSN", 1)]
    check = build_warehouse_leak_check("enrollment_fact")
    lake = LocalLake(root=str(tmp_path / "lake"))  # outside a run the whole table is scanned
    result = check(dg.build_asset_check_context(resources={"lake": lake, "warehouse": warehouse}))
    assert not result.passed
    assert result.metadata["matches"].value == {"enrollment_fact.notes": {"USA_SSN": 1}}
    assert "569-60-3012" not in repr(result.metadata)
    assert default_detector().find("SSN [USA_SSN] on file") == []


def _curated_with_batch(lake_root: Path, leak_in_old_rows: bool) -> None:
    """A curated enrollments state v2 = old rows (of v1) + one batch row, with the batch's change files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from enrollment_platform.assets.curated import changes_parts, removed_parts
    from enrollment_platform.assets.deduped import curated_parts

    old_note = "call 555-867-5309 now" if leak_in_old_rows else "no contact given"

    def write(parts: list[str], ids: list[str], notes: list[str], metadata: dict[str, str]) -> None:
        path = lake_root.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.table({"enrollment_id": pa.array(ids), "notes": pa.array(notes)})
        pq.write_table(table.replace_schema_metadata(metadata), path)

    write(curated_parts("enrollments"), ["e1", "e2"], [old_note, "fine"], {"state_version": "v2"})
    footer = {"base_version": "v1", "state_version": "v2", "state_rows": "2"}
    write(changes_parts("enrollments", "b2"), ["e2"], ["fine"], footer)
    path = lake_root.joinpath(*removed_parts("enrollments", "b2"))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"enrollment_id": pa.array([], pa.string())}).replace_schema_metadata(footer), path)


@pytest.mark.parametrize("v1_scanned_clean", [True, False])
def test_the_curated_leak_scan_covers_the_batch_only_after_a_clean_scan_of_the_version_before(
    tmp_path, v1_scanned_clean
):
    """v1's rows hold a phone number that no clean scan ever vouched for: without the marker the whole state is
    scanned and the leak found; with it (v1 was scanned clean by this detector) only the batch's row is."""
    from enrollment_platform.pii.detectors import default_detector
    from enrollment_platform.pii.leak_scan import clean_marker, scan_curated_batch
    from enrollment_platform.resources.engine import DuckDBEngine
    from enrollment_platform.resources.lake import LocalLake

    lake = LocalLake(root=str(tmp_path / "lake"))
    _curated_with_batch(tmp_path / "lake", leak_in_old_rows=not v1_scanned_clean)
    if v1_scanned_clean:
        with lake.atomic_write(*clean_marker("enrollments", "v1", default_detector())) as marker:
            Path(marker).touch()
    leaks, scanned = scan_curated_batch(lake, DuckDBEngine(), "enrollments", "b2")
    if v1_scanned_clean:
        assert leaks == [] and "the batch's new and changed rows" in scanned
        assert lake.exists(*clean_marker("enrollments", "v2", default_detector()))
    else:
        assert scanned == "curated/enrollments" and [leak.entity for leak in leaks] == ["PHONE_NUMBER"]
        assert not lake.exists(*clean_marker("enrollments", "v2", default_detector()))


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def fact_warehouse(request, tmp_path):
    """An empty warehouse of each connector (PostgreSQL: a schema of its own)."""
    if request.param == "duckdb":
        yield DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
        return
    from enrollment_platform.resources.warehouse import PostgresWarehouse
    from enrollment_platform_tests.test_warehouse_postgres import fresh_schema

    with fresh_schema(request.getfixturevalue("postgres_url")) as url:
        yield PostgresWarehouse(url=url)


def _fact_holding(warehouse, notes: dict[str, str], loaded_version: str) -> None:
    """enrollment_fact with one row per (enrollment_id, notes), recorded as loaded from `loaded_version`."""
    from enrollment_platform.resources.warehouse.model import LOAD_STATE

    with warehouse._transaction() as session:
        session.execute("CREATE TABLE enrollment_fact (enrollment_key BIGINT, enrollment_id TEXT, notes TEXT)")
        for number, (enrollment_id, note) in enumerate(notes.items(), 1):
            session.execute(f"INSERT INTO enrollment_fact VALUES ({number}, '{enrollment_id}', '{note}')")
        session.execute(session.dialect.create_load_state())
        session.execute(f"INSERT INTO {LOAD_STATE} VALUES ('enrollment_fact', '{loaded_version}')")


@pytest.mark.parametrize(
    ("v1_scanned_clean", "loaded_version", "batch_only"),
    [(True, "v2", True), (False, "v2", False), (True, "v1", False)],
)
def test_the_warehouse_leak_scan_covers_the_batch_only_when_the_table_holds_its_version_and_v1_was_clean(
    tmp_path, fact_warehouse, v1_scanned_clean, loaded_version, batch_only
):
    """The fact's old row e1 holds a phone number. Only the rows of the batch's keys (e2) are scanned when the
    table holds the version the batch led to (v2) and v1 was scanned clean in it; else the whole table is, and the
    leak is found. A clean scan marks the version the table holds."""
    from enrollment_platform.pii.leak_scan import clean_marker, scan_warehouse_batch

    lake = LocalLake(root=str(tmp_path / "lake"))
    _curated_with_batch(tmp_path / "lake", leak_in_old_rows=False)
    _fact_holding(fact_warehouse, {"e1": "call 555-867-5309 now", "e2": "fine"}, loaded_version)
    if v1_scanned_clean:
        with lake.atomic_write(*clean_marker("warehouse.enrollment_fact", "v1", default_detector())) as marker:
            Path(marker).touch()
    leaks, scanned = scan_warehouse_batch(lake, fact_warehouse, "enrollment_fact", "b2")
    marked = lake.exists(*clean_marker("warehouse.enrollment_fact", "v2", default_detector()))
    if batch_only:
        assert leaks == [] and "the rows of the batch's new and changed keys" in scanned
        assert marked
    else:
        assert scanned == "enrollment_fact"
        assert leaks == [Leak("enrollment_fact", "notes", "PHONE_NUMBER", 1)] and not marked


def test_the_warehouse_batch_scan_finds_a_leak_in_the_batch_rows(tmp_path, fact_warehouse):
    from enrollment_platform.pii.leak_scan import clean_marker, scan_warehouse_batch

    lake = LocalLake(root=str(tmp_path / "lake"))
    _curated_with_batch(tmp_path / "lake", leak_in_old_rows=False)
    _fact_holding(fact_warehouse, {"e1": "fine", "e2": "SSN 569-60-3012 on file"}, "v2")
    with lake.atomic_write(*clean_marker("warehouse.enrollment_fact", "v1", default_detector())) as marker:
        Path(marker).touch()
    leaks, scanned = scan_warehouse_batch(lake, fact_warehouse, "enrollment_fact", "b2")
    assert "the rows of the batch's new and changed keys" in scanned
    assert leaks == [Leak("enrollment_fact", "notes", "USA_SSN", 1)]
    assert not lake.exists(*clean_marker("warehouse.enrollment_fact", "v2", default_detector()))
