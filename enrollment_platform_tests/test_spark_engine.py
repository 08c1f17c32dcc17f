"""The Spark backend equals the DuckDB backend row for row (DESIGN.md "Engines"), and its Glue entry points run
under Dagster Pipes (subprocess) and through PipesGlueClient (moto).

One SparkSession serves the whole file. Both engines read the same staged raw Parquet (`stage_raw_file`) of the
original system's files and of a small generated raw layer; every layer's output is compared as a sorted row set
(with its column names and types), the validated step's quarantine and rule results included.
"""

import datetime as dt
import math
import os
import sys
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enrollment_platform.config import load_catalog, load_pii_policy
from enrollment_platform.pii.duckdb_functions import register_pii_functions
from enrollment_platform.quality.rules import dataset_rules, references_of
from enrollment_platform.transforms.dedup import ranked_sql
from enrollment_platform.transforms.read_raw import SUPPORTED_SUFFIXES, stage_raw_file
from enrollment_platform.transforms.redact import redact_sql
from enrollment_platform.transforms.sql import quote_literal
from enrollment_platform.transforms.standardize import standardize_sql
from enrollment_platform.transforms.validate import validate_dataset

pytest.importorskip("pyspark")

REPO = Path(__file__).resolve().parents[1]
ORDER = ("students", "courses", "instructors", "enrollments")  # referenced datasets first
KEY = os.environ["ENROLLMENT_PII_KEY"].encode()  # set by conftest
RUN_ID = "equivalence-run"


@pytest.fixture(scope="session")
def spark():
    from enrollment_platform.transforms.spark import spark_session

    session = spark_session("enrollment-platform-tests")
    yield session
    session.stop()


def _parquet(paths: str | list[str]) -> str:
    paths = [paths] if isinstance(paths, str) else paths
    return "read_parquet([" + ", ".join(quote_literal(p) for p in paths) + "], union_by_name=true)"


def _copy(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    con.execute(f"COPY ({query}) TO {quote_literal(str(path))} (FORMAT parquet, COMPRESSION snappy)")


def stage_layer(raw: Path, out: Path) -> dict[str, list[str]]:
    """Every raw file staged as the raw assets do it: dataset -> staged Parquet files."""
    catalog = load_catalog()
    con = duckdb.connect()
    staged: dict[str, list[str]] = {name: [] for name in catalog.datasets}
    for folder in sorted(p for p in raw.iterdir() if p.is_dir()):
        dataset = catalog.dataset_for_folder(folder.name)
        if dataset is None:
            continue
        for i, path in enumerate(sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES)):
            target = out / "staged" / dataset / f"{i:03d}.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            stage_raw_file(con, path, str(path.relative_to(raw)), catalog.datasets[dataset], target)
            staged[dataset].append(str(target))
    con.close()
    return staged


def run_duckdb(staged: dict[str, list[str]], out: Path) -> dict[str, dict]:
    """The DuckDB steps (the functions the assets call), dataset by dataset."""
    catalog, policy = load_catalog(), load_pii_policy()
    con = duckdb.connect()
    register_pii_functions(con)
    outputs: dict[str, dict] = {}
    for dataset in ORDER:
        spec, files = catalog.datasets[dataset], staged[dataset]
        paths = {layer: out / layer / f"{dataset}.parquet" for layer in ("std", "dedup", "kept", "quar", "red", "st")}
        for path in paths.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        _copy(con, standardize_sql(spec, catalog, _parquet(files)), paths["std"])
        _copy(con, ranked_sql(spec, catalog.last_modified_column, _parquet(str(paths["std"]))), paths["dedup"])
        rules = dataset_rules(dataset)
        references = {r: _parquet(str(outputs[r]["red"])) for r in references_of(dataset, rules)}
        results = validate_dataset(
            con, spec, catalog, rules, str(paths["dedup"]), references, _parquet(files), RUN_ID,
            str(paths["kept"]), str(paths["quar"]),
        )  # fmt: skip
        _copy(con, redact_sql(spec, policy, KEY, _parquet(str(paths["kept"]))), paths["red"])
        # a second batch deduplicated against the curated state (the redacted rows stand for it)
        state = _parquet(str(paths["red"]))
        _copy(con, ranked_sql(spec, catalog.last_modified_column, _parquet(str(paths["std"])), state), paths["st"])
        outputs[dataset] = {**paths, "results": [r.to_dict() for r in results]}
    con.close()
    return outputs


def run_spark(spark, staged: dict[str, list[str]], out: Path, duck: dict[str, dict]) -> dict[str, dict]:
    """The Spark steps on the same staged input (references: the same curated stand-in as the DuckDB run)."""
    from enrollment_platform.transforms.spark import dedup, redact, standardize, validate

    catalog, policy = load_catalog(), load_pii_policy()
    outputs: dict[str, dict] = {}
    for dataset in ORDER:
        spec, files = catalog.datasets[dataset], staged[dataset]
        paths = {
            layer: str(out / layer / f"{dataset}.parquet") for layer in ("std", "dedup", "kept", "quar", "red", "st")
        }
        standardize(spark, spec, catalog, files, paths["std"])
        dedup(spark, spec, catalog.last_modified_column, paths["std"], paths["dedup"])
        rules = dataset_rules(dataset)
        references = {r: str(duck[r]["red"]) for r in references_of(dataset, rules)}
        results = validate(
            spark, spec, catalog, rules, paths["dedup"], references, files, RUN_ID, paths["kept"], paths["quar"]
        )
        redact(spark, spec, policy, KEY, paths["kept"], paths["red"])
        dedup(spark, spec, catalog.last_modified_column, paths["std"], paths["st"], state=str(duck[dataset]["red"]))
        outputs[dataset] = {**paths, "results": [r.to_dict() for r in results]}
    return outputs


def _value(value):
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else round(value, 9)
    if isinstance(value, Decimal):
        return round(float(value), 9)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return tuple(_value(v) for v in value)
    return value


def _type(field: pa.Field) -> str:
    t = field.type
    if pa.types.is_large_string(t) or pa.types.is_string(t):
        return "string"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{_type(pa.field('x', t.value_type))}>"
    if pa.types.is_timestamp(t):
        return "timestamp"
    return str(t)


def table_rows(path) -> tuple[list[tuple[str, str]], list[tuple]]:
    table = pq.read_table(path)
    schema = [(f.name, _type(f)) for f in table.schema]
    rows = [tuple(_value(v) for v in row.values()) for row in table.to_pylist()]
    return schema, sorted(rows, key=repr)


def assert_same(duck_path, spark_path) -> int:
    duck_schema, duck_rows = table_rows(duck_path)
    spark_schema, spark_rows = table_rows(spark_path)
    assert spark_schema == duck_schema
    only_duck = [r for r in duck_rows if r not in spark_rows]
    only_spark = [r for r in spark_rows if r not in duck_rows]
    assert not only_duck and not only_spark, f"only DuckDB: {only_duck[:3]}\nonly Spark: {only_spark[:3]}"
    assert len(duck_rows) == len(spark_rows)
    return len(duck_rows)


def _both(spark, raw: Path, out: Path):
    staged = stage_layer(raw, out)
    duck = run_duckdb(staged, out / "duckdb")
    return duck, run_spark(spark, staged, out / "spark", duck)


EDGE_CASES = {
    # values where DuckDB and Spark parse differently unless the Spark backend says otherwise
    "courses": [
        ["course_id", "course_name", "department", "credits", "start_date", "end_date", "last_modified"],
        [
            "C-EDGE-1",
            " Intro\tto   Stuff ",
            "computer  SCIENCE",
            "3.0",
            "5/3/2021",
            "2021-5-3 10:00:00",
            "2021-05-03T1:2:3",
        ],
        ["C-EDGE-2", "x", "\tHISTORY of  art", "3.5", "31/12/2021", "21-05-03", "2021-13-01 00:00:00"],
        ["1001.00", "y", "", "abc", "2021/05/03", "2021-05-03 10:00", "5/3/2021 10:00:00"],
        ["C-EDGE-4", "z", "o'neil-smith dept", "1_000", "2021-02-30", "2021-05-03x", "2021-05-03"],
    ],
    "instructors": [
        ["instructor_id", "first_name", "last_name", "rating", "email"],
        ["I-EDGE-1", "  mARY  ann ", "o'BRIEN", "4.5%", " Mary@Example.COM "],
        ["I-EDGE-2", "josé", "ÉLODIE", "nan", ""],
        ["I-EDGE-3", "x", "y", "1.5d", "a@b.co"],
        ["I-EDGE-4", "x", "y", "inf", None],
    ],
    "enrollments": [
        ["enrollment_id", "student_id", "course_id", "enrollment_date", "marks", "attendance_percentage", "notes"],
        ["E-EDGE-1", "S-NONE", "C-EDGE-1", "2021-02-30", "1_000", "50%", "call 415-555-0132 or mail a@b.com"],
        ["E-EDGE-2", "S-NONE", "C-EDGE-1", "5/3/2021", "1.5d", "abc", "ssn 219-09-9999, card 4111 1111 1111 1111"],
        ["E-EDGE-3", "S-NONE", "C-EDGE-1", "2021-05-03 10:00:00", "-0", "100.0", None],
        ["E-EDGE-4", "S-NONE", "C-EDGE-1", "2021-05-03", "101", "0", "too", "many", "columns"],
    ],
}


def write_edge_cases(raw: Path) -> None:
    """Hand-written rows with type errors, malformed lines and formatting edge cases, beside generated ones."""
    import csv

    for dataset, rows in EDGE_CASES.items():
        with (raw / dataset / "edge_cases.csv").open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([["" if v is None else v for v in row] for row in rows])


@pytest.fixture(scope="module")
def original_both(spark, original_raw, tmp_path_factory):
    return _both(spark, original_raw, tmp_path_factory.mktemp("spark_original"))


@pytest.fixture(scope="module")
def generated_both(spark, tmp_path_factory):
    from enrollment_platform.generator import generate_raw_layer

    raw = tmp_path_factory.mktemp("spark_generated_raw")
    generate_raw_layer(raw, 300, seed=5)
    write_edge_cases(raw)
    return _both(spark, raw, tmp_path_factory.mktemp("spark_generated"))


LAYERS = {
    "std": "standardized",
    "dedup": "deduped",
    "kept": "validated (kept)",
    "quar": "validated (quarantine)",
    "red": "redacted",
    "st": "deduped against curated state",
}


def test_glue_script_reports_through_dagster_pipes(original_raw, tmp_path):
    """glue_scripts/standardize.py launched by Dagster (subprocess Pipes) reports its row counts."""
    lake = tmp_path / "lake"
    staged = stage_layer(original_raw, tmp_path / "stage")["courses"]
    for path in staged:  # the lake layout the raw assets leave: staging/raw/<dataset>/<file id>.parquet
        target = lake / "staging" / "raw" / "courses" / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(path).read_bytes())
    command = [
        sys.executable, str(REPO / "glue_scripts" / "standardize.py"),
        "--JOB_NAME", "enrollment-standardize", "--lake_uri", str(lake), "--raw_uri", str(original_raw),
        "--dataset", "courses", "--batch", "2024-05-01",
        "--job-bookmark-option", "job-bookmark-disable", "--TempDir", str(tmp_path / "glue-temp"),  # Glue's own
    ]  # fmt: skip

    @dg.asset(name="spark_standardized_courses")
    def spark_standardized_courses(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient):
        return pipes.run(command=command, context=context, env={**os.environ}).get_materialize_result()

    result = dg.materialize([spark_standardized_courses], resources={"pipes": dg.PipesSubprocessClient(cwd=str(REPO))})
    assert result.success
    (event,) = result.asset_materializations_for_node("spark_standardized_courses")
    metadata = {name: value.value for name, value in event.metadata.items()}
    output = lake / "staging" / "standardized" / "courses" / "2024-05-01.parquet"
    assert metadata["rows"] == pq.read_metadata(output).num_rows == 25
    assert metadata["engine"] == "spark" and metadata["dataset"] == "courses"
    assert {"rows_with_type_errors", "rows_with_nulled_values", "exact_duplicates_marked"} <= set(metadata)


def test_pipes_glue_client_starts_the_job_with_its_arguments(monkeypatch):
    """PipesGlueClient against moto: the Glue job run is started with our arguments plus the Pipes bootstrap
    (moto never runs the script, it only cycles the run's states)."""
    import boto3
    import dagster._core.pipes.utils as pipes_utils
    import dagster_aws.pipes.clients.glue as glue_module
    from dagster_aws.pipes import PipesGlueClient, PipesS3ContextInjector, PipesS3MessageReader
    from moto import mock_aws

    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(glue_module.time, "sleep", lambda seconds: None)  # moto's states advance per call
    # moto runs no script, so no Pipes "closed" message comes: do not wait 10 s for one after the run
    monkeypatch.setattr(pipes_utils, "WAIT_FOR_LOGS_AFTER_EXECUTION_INTERVAL", 0)
    arguments = {
        "--lake_uri": "s3://enrollment-lake/lake",
        "--raw_uri": "s3://enrollment-raw/raw",
        "--dataset": "enrollments",
        "--batch": "2024-05-01",
        "--additional-python-modules": "enrollment-platform",
    }
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="enrollment-pipes")
        glue = boto3.client("glue")
        glue.create_job(
            Name="enrollment-validate",
            Role="arn:aws:iam::123456789012:role/enrollment-glue",
            Command={"Name": "glueetl", "ScriptLocation": "s3://enrollment-scripts/glue_scripts/validate.py"},
            GlueVersion="5.0",
        )
        client = PipesGlueClient(
            client=glue,
            context_injector=PipesS3ContextInjector(bucket="enrollment-pipes", client=s3),
            message_reader=PipesS3MessageReader(bucket="enrollment-pipes", client=s3, interval=0.1),
        )

        @dg.asset(name="spark_validated_enrollments")
        def spark_validated_enrollments(context: dg.AssetExecutionContext):
            invocation = client.run(
                context=context,
                start_job_run_params={"JobName": "enrollment-validate", "Arguments": dict(arguments)},
            )
            return dg.MaterializeResult(metadata=dict(invocation.metadata))

        result = dg.materialize([spark_validated_enrollments])
        assert result.success
        (run,) = glue.get_job_runs(JobName="enrollment-validate")["JobRuns"]
    assert run["JobRunState"] == "SUCCEEDED"
    assert arguments.items() <= run["Arguments"].items()
    assert {"--dagster-pipes-context", "--dagster-pipes-messages"} <= set(run["Arguments"])
    (event,) = result.asset_materializations_for_node("spark_validated_enrollments")
    assert event.metadata["AWS Glue Job Name"].value == "enrollment-validate"


# last: the Glue and Pipes tests above run before this file's SparkSession exists (moto is slow beside it)
@pytest.mark.parametrize("source", ["original", "generated"])
def test_spark_steps_equal_duckdb_steps(source, request):
    duck, spark_out = request.getfixturevalue(f"{source}_both")
    compared = {}
    for dataset in ORDER:
        for layer, name in LAYERS.items():
            try:
                compared[(dataset, layer)] = assert_same(duck[dataset][layer], spark_out[dataset][layer])
            except AssertionError as error:
                raise AssertionError(f"{source} {dataset} {name}: {error}") from None
        assert spark_out[dataset]["results"] == duck[dataset]["results"], dataset
    # the comparison is not vacuous: rows flow through every layer, and quarantine and duplicates are exercised
    assert all(compared[(d, "red")] > 0 for d in ORDER)
    assert compared[("enrollments", "quar")] > 0
