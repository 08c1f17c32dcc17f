"""The Spark engine equals the local engine (DESIGN.md "Engines"), and its Glue entry points run under Dagster
Pipes (subprocess) and through PipesGlueClient (moto).

The whole pipeline runs twice per input, `ENROLLMENT_ENGINE=local` and `ENROLLMENT_ENGINE=spark` (one SparkSession,
shared by every step and test of this file): over the original system's files, and over generated data with every
defect kind and hand-written edge cases, delivered in two batches so the second is deduplicated against the
curated state. Every lake zone (staging layers, curated, quarantine, restricted, dq_results) and every warehouse
table is compared as a sorted row set with its column names and types, and the run summaries' counts must match.
"""

import datetime as dt
import math
import shutil
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enrollment_platform.settings import Settings

pytest.importorskip("pyspark")

ORDER = ("students", "courses", "instructors", "enrollments")
RUN_COLUMNS = {"run_id", "evaluated_at", "DataQualityRunId"}  # differ between any two runs
DAY_ONE, DAY_TWO = "2024-05-01", "2024-05-10"  # far apart: two batches, the second against the curated state


@pytest.fixture(scope="session")
def spark():
    from enrollment_platform.transforms.spark import spark_session

    session = spark_session("enrollment-platform-tests")
    yield session
    session.stop()


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


def test_glue_job_runner_starts_the_job_with_its_arguments(monkeypatch):
    """The Glue job runner (PipesGlueClient) against moto: the step's Glue job run is started with our arguments
    plus the Pipes bootstrap (moto never runs the script, it only cycles the run's states)."""
    import boto3
    import dagster._core.pipes.utils as pipes_utils
    import dagster_aws.pipes.clients.glue as glue_module
    from dagster_pipes import decode_param
    from moto import mock_aws

    from enrollment_platform.resources.job_runner import GlueJobRunner
    from enrollment_platform.resources.pii import SecretsManagerPiiKey

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
        runner = GlueJobRunner(pipes_bucket="enrollment-pipes", region_name="us-east-1", poll_interval_seconds=0.1)
        pii_key = SecretsManagerPiiKey(secret_id="enrollment/pii-hmac-key")

        @dg.asset(name="spark_validated_enrollments")
        def spark_validated_enrollments(context: dg.AssetExecutionContext):
            launched = runner.run(context, "validate", dict(arguments) | pii_key.job_arguments(), env=pii_key.job_env())
            return dg.MaterializeResult(metadata=dict(launched.metadata or {}))

        result = dg.materialize([spark_validated_enrollments])
        assert result.success
        (run,) = glue.get_job_runs(JobName="enrollment-validate")["JobRuns"]
    assert run["JobRunState"] == "SUCCEEDED"
    assert arguments.items() <= run["Arguments"].items()
    assert run["Arguments"]["--pii_key_secret"] == "enrollment/pii-hmac-key"  # the key itself never travels
    assert {"--dagster-pipes-context", "--dagster-pipes-messages"} <= set(run["Arguments"])
    # the Pipes exchange stays where infra's IAM roles allow it
    assert decode_param(run["Arguments"]["--dagster-pipes-context"])["key"].startswith("dagster-pipes/")
    assert decode_param(run["Arguments"]["--dagster-pipes-messages"])["key_prefix"].startswith("dagster-pipes/")
    (event,) = result.asset_materializations_for_node("spark_validated_enrollments")
    assert event.metadata["AWS Glue Job Name"].value == "enrollment-validate"


# --- the whole pipeline: ENROLLMENT_ENGINE=spark against the local engine --------------------------------------


def _run(raw: Path, home: Path, engine: str):
    from enrollment_platform.runner import run_pipeline

    settings = Settings.from_env(environ={}, home=str(home), raw_uri=str(raw), engine=engine)
    summary = run_pipeline(settings)
    assert summary.success, summary.failures
    return settings, summary


def lake_rows(lake: Path, *parts: str) -> tuple[set, list[tuple]]:
    """The schemas and every row of the Parquet files below a lake folder (run-specific columns left out)."""
    schemas, rows = set(), []
    for path in sorted(lake.joinpath(*parts).rglob("*.parquet")):
        table = pq.read_table(path)
        table = table.drop_columns([c for c in table.column_names if c in RUN_COLUMNS])
        schemas.add(tuple((f.name, _type(f)) for f in table.schema))
        rows += [tuple(sorted((k, _value(v)) for k, v in row.items())) for row in table.to_pylist()]
    return schemas, sorted(rows, key=repr)


def warehouse_rows(settings) -> dict[str, list[tuple]]:
    with duckdb.connect(settings.warehouse_url.removeprefix("duckdb:///"), read_only=True) as con:
        tables = [
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
            ).fetchall()
        ]
        return {
            table: sorted(
                (tuple(map(_value, row)) for row in con.execute(f'SELECT * FROM "{table}"').fetchall()), key=repr
            )
            for table in tables
            # dq_results rows carry run ids (compared from the lake's dq_results instead); _load_state holds the
            # random ids of the curated state versions each table was loaded from
            if table not in ("dq_results", "_load_state")
        }


def two_batches(raw: Path, target: Path) -> Path:
    """The raw files under ingest_date= folders: each dataset's first file on day one, the others on day two."""
    for folder in sorted(p for p in raw.iterdir() if p.is_dir()):
        for i, file in enumerate(sorted(p for p in folder.iterdir() if p.is_file())):
            day = DAY_ONE if i == 0 else DAY_TWO
            destination = target / folder.name / f"ingest_date={day}" / file.name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, destination)
    return target


@pytest.fixture(scope="module")
def pipeline_pairs(spark, original_raw, tmp_path_factory):
    """(local, spark) runs over the original files and over generated data with every defect, in two batches."""
    from enrollment_platform.generator import generate_raw_layer

    generated = tmp_path_factory.mktemp("pipeline_generated_flat")
    generate_raw_layer(generated, 400, seed=8)
    write_edge_cases(generated)
    sources = {"original": original_raw, "generated": two_batches(generated, tmp_path_factory.mktemp("by_day"))}
    pairs = {}
    for source, raw in sources.items():
        home = tmp_path_factory.mktemp(f"pipeline_{source}")
        pairs[source] = (_run(raw, home / "local", "local"), _run(raw, home / "spark", "spark"))
    return pairs


ZONES = ("staging/standardized", "staging/deduped", "staging/validated", "staging/redacted", "curated", "quarantine")


@pytest.mark.parametrize("source", ["original", "generated"])
def test_spark_pipeline_equals_local_pipeline(source, pipeline_pairs):
    """Every layer, quarantine (rows and reasons), rule results, dimensions and fact, and every count."""
    (local, local_summary), (spark, spark_summary) = pipeline_pairs[source]
    assert spark_summary.datasets == local_summary.datasets
    assert spark_summary.warehouse == local_summary.warehouse
    assert len(spark_summary.run_ids) == len(local_summary.run_ids)
    assert source == "original" or len(local_summary.run_ids) == 2  # the second batch met the curated state
    local_lake, spark_lake = Path(local.lake_uri), Path(spark.lake_uri)
    for dataset in ORDER:
        for zone in (*ZONES, "dq_results"):
            parts = (*zone.split("/"), f"dataset={dataset}" if zone == "dq_results" else dataset)
            local_schemas, local_rows = lake_rows(local_lake, *parts)
            assert lake_rows(spark_lake, *parts) == (local_schemas, local_rows), f"{source} {zone}/{dataset}"
            # no row failed, none was a duplicate, or no row was rejected, nulled or flagged (the validated zone holds
            # those decisions only; the validated rows themselves are compared as the redacted zone)
            empty_allowed = ("quarantine", "staging/deduped", "staging/validated")
            assert local_rows or zone in empty_allowed, f"{source} {zone}/{dataset} is empty: nothing compared"
    assert lake_rows(spark_lake, "restricted") == lake_rows(local_lake, "restricted")
    local_tables, spark_tables = warehouse_rows(local), warehouse_rows(spark)
    assert set(local_tables) >= {"student_dim", "course_dim", "instructor_dim", "enrollment_fact", "student_pii"}
    for table, rows in local_tables.items():
        assert spark_tables[table] == rows, f"{source} warehouse {table}"
    counts = local_summary.datasets.values()
    assert sum(d["rows_quarantined"] for d in counts) > 0
    if source == "generated":  # the original files hold no duplicates
        assert sum(d["rows_duplicate"] for d in counts) > 0


def test_glue_script_reports_its_materialization_and_checks_through_pipes(tmp_path):
    """glue_scripts/curate.py launched by the Spark job runner through PipesSubprocessClient: the curated asset's
    materialization and its reconciliation check come back from the script into the run's events."""
    from enrollment_platform.assets.curated import build_curated_asset
    from enrollment_platform.generator import generate_raw_layer
    from enrollment_platform.partitions import range_tags
    from enrollment_platform.resources.engine import DuckDBEngine
    from enrollment_platform.resources.job_runner import LocalSparkJobRunner
    from enrollment_platform.resources.lake import LocalLake

    flat = tmp_path / "flat"
    generate_raw_layer(flat, 100, seed=4)
    settings, _ = _run(two_batches(flat, tmp_path / "raw"), tmp_path / "home", "local")
    lake = Path(settings.lake_uri)
    shutil.rmtree(lake / "curated" / "courses")  # the step rebuilds the state from the first batch
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [build_curated_asset("courses")],
        instance=instance,
        resources={
            "lake": LocalLake(root=str(lake)),
            "engine": DuckDBEngine(),
            "job_runner": LocalSparkJobRunner(launch="subprocess"),
        },
        tags=range_tags(DAY_ONE, DAY_ONE),
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("curated__courses")
    metadata = {name: value.value for name, value in materialization.metadata.items()}
    assert metadata["engine"] == "spark"
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any("spark curate courses batch" in message for message in logged)  # the script's own Pipes log
    batch_rows = pq.read_metadata(lake / "staging" / "redacted" / "courses" / f"{DAY_ONE}.parquet").num_rows
    assert metadata["rows_out"] == batch_rows > 0
    assert metadata["state_rows"] == pq.read_metadata(lake / "curated" / "courses" / "courses.parquet").num_rows
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "reconciliation" and check.passed
    counted = {
        name: check.metadata[name].value for name in ("rows_in", "rows_out", "rows_quarantined", "rows_duplicate")
    }
    assert counted["rows_in"] == counted["rows_out"] + counted["rows_quarantined"] + counted["rows_duplicate"]
    assert counted["rows_out"] == batch_rows


# --- dataset-level rules: both engines judge the same metric ---------------------------------------------------

DATASET_LEVEL_RULES = """Rules = [
    RowCount > 10,
    RowCount between 1 and 5,
    Completeness "marks" > 0.5,
    Completeness "notes" >= 0.99,
    Uniqueness "enrollment_id" = 1.0,
    Uniqueness "course_id" > 0.9,
    Mean "marks" between 0 and 100,
    Sum "marks" > 0,
    StandardDeviation "marks" < 1,
    DistinctValuesCount "course_id" >= 2,
    CustomSql "select count(*) from primary where marks > 50" > 0,
    ColumnValues "marks" between 0 and 100 with threshold > 0.5,
    ColumnLength "notes" <= 40 with threshold > 0.9,
    ReferentialIntegrity "course_id" "courses.course_id" >= 0.9,
    DataFreshness "enrollment_date" <= 100000 days,
    Mean "marks" > 50 where "attendance_percentage > 90",
    ColumnCorrelation "marks" "attendance_percentage" > 0.5
]"""


def test_dataset_level_rules_give_the_same_results_on_both_engines(spark, tmp_path):
    """Metrics, conditions, `where`, CustomSql on `primary`, reference lookups and unsupported rule types."""
    from enrollment_platform.config import load_catalog
    from enrollment_platform.generator import generate_raw_layer
    from enrollment_platform.quality.rules import build_rules
    from enrollment_platform.transforms.dedup import kept_candidates_sql, set_aside_sql
    from enrollment_platform.transforms.read_raw import stage_raw_file
    from enrollment_platform.transforms.spark import validate as spark_validate
    from enrollment_platform.transforms.sql import quote_literal
    from enrollment_platform.transforms.standardize import standardize_sql
    from enrollment_platform.transforms.validate import validate_dataset

    catalog = load_catalog()
    raw = tmp_path / "raw"
    generate_raw_layer(raw, 200, seed=3)
    con = duckdb.connect()
    staged = {}
    for dataset in ("courses", "enrollments"):
        files = sorted(p for p in (raw / dataset).iterdir() if p.suffix in (".csv", ".json", ".jsonl", ".parquet"))
        staged[dataset] = []
        for i, path in enumerate(files):
            target = tmp_path / "staged" / dataset / f"{i}.parquet"
            target.parent.mkdir(parents=True, exist_ok=True)
            stage_raw_file(con, path, path.name, catalog.datasets[dataset], target)
            staged[dataset].append(str(target))
        source = "read_parquet([" + ", ".join(quote_literal(p) for p in staged[dataset]) + "], union_by_name=true)"
        standardized = str(tmp_path / f"{dataset}_standardized.parquet")
        query = standardize_sql(catalog.datasets[dataset], catalog, source)
        con.execute(f"COPY ({query}) TO {quote_literal(standardized)} (FORMAT parquet)")
        set_aside = set_aside_sql(catalog.datasets[dataset], catalog.last_modified_column, f"'{standardized}'")
        con.execute(f"COPY ({set_aside}) TO {quote_literal(str(tmp_path / f'{dataset}_set_aside.parquet'))}")
        kept = kept_candidates_sql(f"'{standardized}'", f"'{tmp_path / f'{dataset}_set_aside.parquet'}'")
        con.execute(f"COPY {kept} TO {quote_literal(str(tmp_path / f'{dataset}.parquet'))} (FORMAT parquet)")
    rules = tuple(build_rules("enrollments", DATASET_LEVEL_RULES))
    courses = str(tmp_path / "courses.parquet")  # the courses dedup kept
    standardized, set_aside = (str(tmp_path / f"enrollments_{zone}.parquet") for zone in ("standardized", "set_aside"))
    outputs = {name: tmp_path / name for name in ("duck_kept", "duck_quar", "spark_kept", "spark_quar")}
    raw_source = "read_parquet([" + ", ".join(quote_literal(p) for p in staged["enrollments"]) + "])"
    spec = catalog.datasets["enrollments"]
    candidates = kept_candidates_sql(f"'{standardized}'", f"'{set_aside}'")
    duck = validate_dataset(
        con, spec, rules, candidates, {"courses": f"read_parquet({quote_literal(courses)})"}, raw_source,
        "run", str(outputs["duck_kept"]), str(outputs["duck_quar"]),
    )  # fmt: skip
    sparked = spark_validate(
        spark, spec, catalog, rules, standardized, set_aside, {"courses": courses}, staged["enrollments"], "run",
        str(outputs["spark_kept"]), str(outputs["spark_quar"]),
    )  # fmt: skip
    con.close()

    def comparable(result) -> tuple:
        metric = result.message.removeprefix("metric value ")
        try:
            metric = round(float(metric), 6)
        except ValueError:
            metric = "" if result.outcome == "Unsupported" else metric
        if result.rule.startswith("DataFreshness"):
            metric = None  # an age in seconds: the two runs are seconds apart
        return result.rule_id, result.outcome, result.evaluated, result.failed, result.score, metric

    assert [comparable(r) for r in sparked] == [comparable(r) for r in duck]
    outcomes = {r.outcome for r in duck if r.rule_id.startswith("enrollments.R")}
    assert {"Passed", "Failed", "Unsupported"} <= outcomes  # not vacuous: rules of every outcome
    assert [r.outcome for r in duck if r.rule.startswith("ColumnCorrelation")] == ["Unsupported"]


def test_a_glue_step_leaves_one_object_at_the_lake_key(monkeypatch):
    """On S3 a step's output is promoted from Spark's part file to the one key the lake layout names."""
    import boto3
    from moto import mock_aws

    from enrollment_platform.transforms.spark.io import promote_single_part
    from enrollment_platform_tests.conftest import fake_aws_account

    fake_aws_account(monkeypatch, "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="lake")
        scratch = "lake/staging/deduped/courses/2024-05-01.parquet.abc.spark"
        for name, body in {"_SUCCESS": b"", "part-00000-x.snappy.parquet": b"PAR1 rows PAR1"}.items():
            s3.put_object(Bucket="lake", Key=f"{scratch}/{name}", Body=body)
        promote_single_part(s3, f"s3://lake/{scratch}", "s3://lake/lake/staging/deduped/courses/2024-05-01.parquet")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake")["Contents"]]
        body = s3.get_object(Bucket="lake", Key="lake/staging/deduped/courses/2024-05-01.parquet")["Body"].read()
        assert keys == ["lake/staging/deduped/courses/2024-05-01.parquet"] and body == b"PAR1 rows PAR1"
        s3.put_object(Bucket="lake", Key=f"{scratch}/_SUCCESS", Body=b"")
        with pytest.raises(RuntimeError, match="expected one part file"):
            promote_single_part(s3, f"s3://lake/{scratch}", "s3://lake/other.parquet")
