"""The data catalog's twins (a JSON catalog in the lake, the Glue Data Catalog in moto) registering tables like a
Glue crawler: schemas from Parquet footers and raw headers, schema drift per policy, partitions, idempotence; and
the `catalog/<dataset>` assets in pipeline runs (local twins, then S3 lake + Glue)."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import boto3
import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster_aws.s3 import S3Resource
from moto import mock_aws

from enrollment_platform.assets.catalog import catalog_assets, raw_tables
from enrollment_platform.config import SCHEMA_DRIFT_ENV, ConfigError, load_catalog, schema_drift_policy
from enrollment_platform.definitions import all_assets_job, build_assets_and_checks, resources_for
from enrollment_platform.partitions import ingest_date, range_tags
from enrollment_platform.resources.catalog import (
    Catalog,
    Column,
    GlueCatalog,
    LocalCatalog,
    Partition,
    SchemaDriftError,
    TableDefinition,
    detect_drift,
    parquet_columns,
)
from enrollment_platform.resources.lake_s3 import S3Lake
from enrollment_platform.resources.raw import LocalRawLayer
from enrollment_platform_tests.conftest import fake_aws_account, local_settings

REGION = "eu-west-1"
STUDENTS = load_catalog().datasets["students"]
STUDENT_HEADER = "student_id,fname,lname,dob,gender,phoneno,city"


@pytest.fixture
def aws(monkeypatch):
    """A moto account (S3 and Glue)."""
    fake_aws_account(monkeypatch, REGION)
    monkeypatch.delenv(SCHEMA_DRIFT_ENV, raising=False)
    with mock_aws():
        yield


@pytest.fixture(params=["local", "glue"])
def catalog(request, tmp_path, monkeypatch) -> Catalog:
    """Each twin in turn."""
    monkeypatch.delenv(SCHEMA_DRIFT_ENV, raising=False)
    if request.param == "local":
        return LocalCatalog(root=str(tmp_path / "lake" / "_catalog"))
    request.getfixturevalue("aws")
    return GlueCatalog(region_name=REGION)


def versions(catalog: Catalog, name: str) -> int:
    """How many definitions the table has had."""
    if isinstance(catalog, LocalCatalog):
        return len(catalog.history(name))
    return len(
        boto3.client("glue", region_name=REGION).get_table_versions(DatabaseName="enrollment", TableName=name)[
            "TableVersions"
        ]
    )


def write_raw(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def raw_students_table(tmp_path: Path, header: str, day: str = "2024-06-01") -> tuple[TableDefinition, list[Partition]]:
    """The raw CSV table of one students file with this header, in `ingest_date=<day>`."""
    root = tmp_path / f"raw-{abs(hash((header, day)))}"
    write_raw(
        root, f"students/ingest_date={day}/students.csv", f"{header}\n" + ",".join("x" for _ in header.split(","))
    )
    files = LocalRawLayer(root=str(root)).inventory(load_catalog()).files["students"]
    ((table, partitions),) = raw_tables(LocalRawLayer(root=str(root)), "students", files)
    return TableDefinition.from_dict(table.to_dict() | {"location": "s3://raw/students/"}), partitions


def names(table: TableDefinition | None) -> list[str]:
    return [c.name for c in table.columns]


# -- schemas ---------------------------------------------------------------------------------------------------


TYPED = pa.table(
    {
        "student_id": pa.array(["S1"]),
        "credits": pa.array([3], pa.int32()),
        "rows": pa.array([10], pa.int64()),
        "rating": pa.array([4.5], pa.float64()),
        "active": pa.array([True]),
        "date_of_birth": pa.array([date(2001, 2, 3)], pa.date32()),
        "last_modified": pa.array([1_700_000_000_000_000], pa.timestamp("us")),
        "dq_flags": pa.array([["rating_out_of_range"]], pa.list_(pa.string())),
        "tuition_amount": pa.array([Decimal("1234.50")], pa.decimal128(10, 2)),
        "_source_row": pa.array([1], pa.int64()),
    }
)
HIVE_TYPES = [
    ("student_id", "string"),
    ("credits", "int"),
    ("rows", "bigint"),
    ("rating", "double"),
    ("active", "boolean"),
    ("date_of_birth", "date"),
    ("last_modified", "timestamp"),
    ("dq_flags", "array<string>"),
    ("tuition_amount", "decimal(10,2)"),
    ("_source_row", "bigint"),
]


def curated_table(tmp_path: Path, table: pa.Table = TYPED) -> TableDefinition:
    path = tmp_path / "curated" / "students" / "students.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="snappy")
    return TableDefinition("curated_students", "s3://lake/curated/students/", "parquet", parquet_columns(path))


def test_curated_table_gets_hive_types_from_the_parquet_footer(catalog, tmp_path):
    registration = catalog.register_table(curated_table(tmp_path), note="2024-06-01")
    assert registration.action == "created"
    stored = catalog.get_table("curated_students")
    assert [(c.name, c.type) for c in stored.columns] == HIVE_TYPES
    assert (stored.location, stored.data_format, stored.partition_keys) == (
        "s3://lake/curated/students/",
        "parquet",
        (),
    )


def test_glue_table_is_an_external_parquet_table_with_its_serde(aws, tmp_path):
    GlueCatalog(database="lake_zones").register_table(curated_table(tmp_path))
    table = boto3.client("glue", region_name=REGION).get_table(DatabaseName="lake_zones", Name="curated_students")[
        "Table"
    ]
    descriptor = table["StorageDescriptor"]
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert table["Parameters"]["classification"] == "parquet"
    assert (
        descriptor["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    assert descriptor["InputFormat"].endswith("MapredParquetInputFormat")
    assert descriptor["Location"] == "s3://lake/curated/students/"
    assert [(c["Name"], c["Type"]) for c in descriptor["Columns"]] == HIVE_TYPES


def test_raw_tables_take_string_columns_from_csv_headers_and_json_keys(catalog, tmp_path):
    root = tmp_path / "raw"
    write_raw(root, "student/ingest_date=2024-06-01/a.csv", "\ufeffStudent ID,First Name,,city\n1,Ann,x,Oslo\n")
    write_raw(root, "student/ingest_date=2024-06-02/b.csv", "student id,first name,,city,email\n2,Bob,y,Rome,b@x\n")
    write_raw(
        root, "student/ingest_date=2024-06-02/c.jsonl", '{"s_id": 3, "fname": "Cy"}\nnot json\n{"dob": "2001-01-01"}\n'
    )
    layer = LocalRawLayer(root=str(root))
    tables = raw_tables(layer, "students", layer.inventory(load_catalog()).files["students"])
    registered = {t.name: catalog.register_table(t, p, spec=STUDENTS) for t, p in tables}

    csv_table, json_table = catalog.get_table("raw_students_csv"), catalog.get_table("raw_students_json")
    assert [(c.name, c.type) for c in csv_table.columns] == [
        ("student_id", "string"),
        ("first_name", "string"),
        ("col2", "string"),
        ("city", "string"),
        ("email", "string"),
    ]
    assert names(json_table) == ["s_id", "fname", "dob"]
    assert csv_table.partition_keys == (Column("ingest_date", "string"),)
    assert csv_table.location == f"{root / 'student'}/"
    assert registered["raw_students_csv"].partitions_added == (("2024-06-01",), ("2024-06-02",))
    assert catalog.partition_values("raw_students_json") == {("2024-06-02",)}


# -- drift -----------------------------------------------------------------------------------------------------


def test_drift_pairs_renames_by_alias_then_position_then_type():
    current = [Column("id", "string"), Column("fname", "string"), Column("city", "string"), Column("n", "int")]
    new = [Column("id", "string"), Column("first_name", "string"), Column("town2", "string"), Column("m", "int")]
    drift = detect_drift(current, new, STUDENTS)
    assert [(r.old, r.new, r.reason) for r in drift.alias_renames] == [("fname", "first_name", "alias of first_name")]
    assert [(r.old, r.new, r.reason) for r in drift.renames] == [
        ("city", "town2", "same position"),
        ("n", "m", "same position"),
    ]
    assert (drift.added, drift.removed) == ((), ())

    moved = detect_drift([Column("a", "int"), Column("b", "date")], [Column("c", "date"), Column("a", "bigint")])
    assert [(r.old, r.new, r.reason) for r in moved.renames] == [("b", "c", "same type")]
    assert [(c.name, c.old, c.new) for c in moved.type_changes] == [("a", "int", "bigint")]


BASE = STUDENT_HEADER
EXTRA = STUDENT_HEADER + ",email"
RENAMED = STUDENT_HEADER.replace("city", "hometown")


@pytest.mark.parametrize("header", [EXTRA, RENAMED], ids=["extra_column", "renamed_column"])
def test_evolve_adds_the_new_columns_and_never_drops_one(catalog, tmp_path, header):
    catalog.register_table(*raw_students_table(tmp_path, BASE), spec=STUDENTS, policy="evolve", note="2024-06-01")
    table, partitions = raw_students_table(tmp_path, header, "2024-06-02")
    registration = catalog.register_table(table, partitions, spec=STUDENTS, policy="evolve", note="2024-06-02")

    assert registration.action == "evolved" and registration.drift.found
    stored = catalog.get_table("raw_students_csv")
    if header == EXTRA:
        assert registration.drift.added == ("email",)
        assert names(stored) == [*BASE.split(","), "email"]
    else:
        assert [(r.old, r.new) for r in registration.drift.renames] == [("city", "hometown")]
        assert names(stored) == [*BASE.split(","), "hometown"]
        assert {c.name: c.absent_since for c in stored.columns}["city"] == "2024-06-02"  # kept, marked
    assert stored.parameters["enrollment.schema_version"] == "2"
    assert json.loads(stored.parameters["enrollment.last_schema_change"])["at"] == "2024-06-02"
    assert versions(catalog, "raw_students_csv") == 2
    assert catalog.partition_values("raw_students_csv") == {("2024-06-01",), ("2024-06-02",)}


@pytest.mark.parametrize("header", [EXTRA, RENAMED], ids=["extra_column", "renamed_column"])
def test_warn_keeps_the_table_and_reports_the_drift(catalog, tmp_path, header, caplog):
    catalog.register_table(*raw_students_table(tmp_path, BASE), spec=STUDENTS, policy="warn")
    with caplog.at_level(logging.WARNING):
        registration = catalog.register_table(
            *raw_students_table(tmp_path, header, "2024-06-02"), spec=STUDENTS, policy="warn"
        )
    assert registration.action == "warned"
    assert set(registration.drift.columns) >= {header.split(",")[-1]}
    assert names(catalog.get_table("raw_students_csv")) == BASE.split(",")
    assert versions(catalog, "raw_students_csv") == 1
    assert "raw_students_csv" in caplog.text and "policy 'warn'" in caplog.text
    assert ("2024-06-02",) in catalog.partition_values("raw_students_csv")  # the files are still found


@pytest.mark.parametrize(
    ("header", "named"), [(EXTRA, ["email"]), (RENAMED, ["city", "hometown"])], ids=["extra_column", "renamed_column"]
)
def test_fail_raises_naming_the_table_and_the_columns(catalog, tmp_path, header, named):
    catalog.register_table(*raw_students_table(tmp_path, BASE), spec=STUDENTS, policy="fail")
    with pytest.raises(SchemaDriftError, match=r"table enrollment\.raw_students_csv: schema drift") as raised:
        catalog.register_table(*raw_students_table(tmp_path, header, "2024-06-02"), spec=STUDENTS, policy="fail")
    assert all(name in str(raised.value) for name in named)
    assert names(catalog.get_table("raw_students_csv")) == BASE.split(",")
    assert catalog.partition_values("raw_students_csv") == {("2024-06-01",)}


def test_a_rename_between_aliases_of_one_column_is_not_drift(catalog, tmp_path):
    catalog.register_table(*raw_students_table(tmp_path, BASE), spec=STUDENTS, policy="fail")
    renamed = BASE.replace("fname", "first_name")
    registration = catalog.register_table(
        *raw_students_table(tmp_path, renamed, "2024-06-02"), spec=STUDENTS, policy="fail"
    )
    assert not registration.drift.found
    assert [(r.old, r.new) for r in registration.drift.alias_renames] == [("fname", "first_name")]
    assert registration.action == "evolved"
    assert "first_name" in names(catalog.get_table("raw_students_csv"))


def test_a_type_change_is_drift_and_evolve_takes_the_new_type(catalog, tmp_path):
    catalog.register_table(curated_table(tmp_path))
    widened = TYPED.set_column(1, "credits", pa.array([3.5], pa.float64()))
    with pytest.raises(SchemaDriftError, match="type of credits: int -> double"):
        catalog.register_table(curated_table(tmp_path, widened), policy="fail")
    registration = catalog.register_table(curated_table(tmp_path, widened), policy="evolve")
    assert registration.action == "evolved"
    assert {c.name: c.type for c in catalog.get_table("curated_students").columns}["credits"] == "double"


def test_registering_again_changes_nothing(catalog, tmp_path):
    table, partitions = raw_students_table(tmp_path, BASE)
    first = catalog.register_table(table, partitions, spec=STUDENTS)
    second = catalog.register_table(table, partitions, spec=STUDENTS)
    assert (first.action, second.action) == ("created", "unchanged")
    assert (first.partitions_added, second.partitions_added) == ((("2024-06-01",),), ())
    assert versions(catalog, "raw_students_csv") == 1

    evolved, more = raw_students_table(tmp_path, RENAMED, "2024-06-02")
    assert catalog.register_table(evolved, more, spec=STUDENTS).action == "evolved"
    again = catalog.register_table(evolved, [*partitions, *more], spec=STUDENTS, policy="fail")
    assert (again.action, again.partitions_added) == ("unchanged", ())  # the absent column is not drift again
    assert catalog.partition_values("raw_students_csv") == {("2024-06-01",), ("2024-06-02",)}


def test_policy_comes_from_config_and_the_environment_overrides_it(catalog, tmp_path, monkeypatch):
    assert schema_drift_policy({}) == "evolve"
    assert schema_drift_policy({SCHEMA_DRIFT_ENV: "WARN"}) == "warn"
    with pytest.raises(ConfigError, match=f"{SCHEMA_DRIFT_ENV}='drop'"):
        schema_drift_policy({SCHEMA_DRIFT_ENV: "drop"})
    catalog.register_table(*raw_students_table(tmp_path, BASE), spec=STUDENTS)
    monkeypatch.setenv(SCHEMA_DRIFT_ENV, "fail")
    with pytest.raises(SchemaDriftError, match="email"):
        catalog.register_table(*raw_students_table(tmp_path, EXTRA, "2024-06-02"), spec=STUDENTS)


# -- the catalog assets in pipeline runs -----------------------------------------------------------------------


def run(settings, catalog: Catalog, first: str, last: str, selection=None, **overrides) -> dg.ExecuteInProcessResult:
    """The whole graph plus the catalog assets, for the ingestion dates first..last."""
    assets, checks = build_assets_and_checks()
    assets += [a for a in catalog_assets if a not in assets]  # whether or not definitions wires them in
    resources = resources_for(settings) | {"catalog": catalog, **overrides}
    defs = dg.Definitions(assets=assets, asset_checks=checks, jobs=[all_assets_job], resources=resources)
    return defs.resolve_job_def(all_assets_job.name).execute_in_process(
        raise_on_error=False, tags=range_tags(first, last), asset_selection=selection
    )


def catalog_metadata(result: dg.ExecuteInProcessResult, dataset: str) -> dict:
    (materialization,) = result.asset_materializations_for_node(f"catalog__{dataset}")
    return {name: value.value for name, value in materialization.metadata.items()}


@pytest.mark.slow
def test_catalog_assets_register_each_batch_and_apply_the_policy(original_raw, tmp_path, monkeypatch):
    monkeypatch.delenv(SCHEMA_DRIFT_ENV, raising=False)
    raw = tmp_path / "raw"
    for name in ("student.csv", "student1.json"):
        target = raw / "students" / "ingest_date=2024-06-01" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(original_raw / "student" / name, target)
    settings = local_settings(tmp_path / "home", raw)
    catalog = LocalCatalog(root=str(Path(settings.lake_uri) / "_catalog"))

    first = run(settings, catalog, "2024-06-01", "2024-06-01")
    assert first.success
    metadata = catalog_metadata(first, "students")
    assert metadata["actions"] == {
        "raw_students_csv": "created",
        "raw_students_json": "created",
        "curated_students": "created",
    }
    assert metadata["partitions_added"] == 2
    assert catalog.get_table("curated_students").location == f"{Path(settings.lake_uri, 'curated', 'students')}/"

    lines = (original_raw / "student" / "student.csv").read_text().splitlines()
    changed = [lines[0].replace("city", "hometown") + ",email"] + [
        f"{line},x{i}@example.org" for i, line in enumerate(lines[1:4])
    ]
    write_raw(raw, "students/ingest_date=2024-06-02/student.csv", "\n".join(changed) + "\n")
    monkeypatch.setenv(SCHEMA_DRIFT_ENV, "fail")
    second = run(settings, catalog, "2024-06-02", "2024-06-02")
    assert not second.success
    (failure,) = [e for e in second.all_events if e.is_step_failure]
    assert failure.step_key == "catalog__students"
    assert all(word in failure.event_specific_data.error.message for word in ("raw_students_csv", "email", "hometown"))

    monkeypatch.setenv(SCHEMA_DRIFT_ENV, "evolve")  # accept the change: register the same batch again
    third = run(settings, catalog, "2024-06-02", "2024-06-02", selection=[dg.AssetKey(["catalog", "students"])])
    assert third.success
    metadata = catalog_metadata(third, "students")
    assert metadata["drift_found"] is True
    assert metadata["actions"]["raw_students_csv"] == "evolved"
    assert names(catalog.get_table("raw_students_csv"))[-2:] == ["hometown", "email"]
    assert catalog.partition_values("raw_students_csv") == {("2024-06-01",), ("2024-06-02",)}


@pytest.mark.slow
def test_the_pipeline_runs_on_an_s3_lake_and_registers_its_tables_in_glue(aws, original_raw, tmp_path):
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket="enrollment-lake", CreateBucketConfiguration={"LocationConstraint": REGION}
    )

    def s3_lake(cache: Path) -> S3Lake:
        return S3Lake(s3=S3Resource(region_name=REGION), bucket="enrollment-lake", prefix="lake", cache_dir=str(cache))

    files = [
        f for found in LocalRawLayer(root=str(original_raw)).inventory(load_catalog()).files.values() for f in found
    ]
    days = sorted(ingest_date(f.relative, f.modified_ns) for f in files)
    settings = local_settings(tmp_path / "home", original_raw)
    result = run(settings, GlueCatalog(region_name=REGION), days[0], days[-1], lake=s3_lake(tmp_path / "cache"))
    assert result.success

    glue = boto3.client("glue", region_name=REGION)
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName="enrollment")["TableList"]}
    assert {"raw_students_csv", "raw_students_json", "raw_enrollments_csv", "curated_enrollments"} <= set(tables)
    curated = tables["curated_enrollments"]["StorageDescriptor"]
    assert curated["Location"] == "s3://enrollment-lake/lake/curated/enrollments/"
    assert {c["Name"]: c["Type"] for c in curated["Columns"]}["enrollment_date"] == "date"
    assert tables["raw_enrollments_csv"]["StorageDescriptor"]["Columns"][0] == {"Name": "e_id", "Type": "string"}

    fresh = s3_lake(tmp_path / "another_machine")  # the bucket is the truth: a new cache reads the same state
    state = fresh.path("curated", "enrollments", "enrollments.parquet")
    assert duckdb.execute("SELECT count(*) FROM read_parquet(?)", [state]).fetchone()[0] == 125
