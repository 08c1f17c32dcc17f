"""`ENROLLMENT_ENV=aws`: the whole asset graph against a moto server for S3, Glue Data Catalog, SNS, Secrets
Manager and Lake Formation (the job steps on the local engine: moto runs no Glue script), with the warehouse on
the real PostgreSQL server. And the settings: `aws` names every missing setting; `local` needs no AWS at all."""

import io
import json
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from enrollment_platform.settings import AWS_REQUIRED, Settings, SettingsError
from enrollment_platform_tests.test_warehouse_postgres import fresh_schema

REGION = "us-east-1"
RAW_BUCKET, LAKE_BUCKET = "enrollment-test-raw", "enrollment-test-curated"
SECRET_ID = "enrollment/test/pii-hash-key"
DATABASE = "enrollment_test"


class DataCellsFilters:
    """Lake Formation data-cells filters, which moto lacks: the calls are answered here (and recorded); every
    other Lake Formation call goes to the moto server."""

    OPERATIONS = ("CreateDataCellsFilter", "DeleteDataCellsFilter", "UpdateDataCellsFilter", "ListDataCellsFilter")

    def __init__(self) -> None:
        import boto3

        self.requests: list[tuple[str, dict]] = []
        self.filters: dict[str, dict] = {}
        self._client = boto3.client

    def client(self, *args, **kwargs):
        client = self._client(*args, **kwargs)
        if args[:1] == ("lakeformation",):
            for operation in self.OPERATIONS:
                client.meta.events.register(f"before-parameter-build.lakeformation.{operation}", self._record)
                client.meta.events.register(f"before-call.lakeformation.{operation}", self._answer)
        return client

    def _record(self, params, model, **kwargs):
        self.requests.append((model.name, dict(params)))

    def _answer(self, model, **kwargs):
        params = self.requests[-1][1]
        if model.name in ("CreateDataCellsFilter", "UpdateDataCellsFilter"):
            self.filters[params["TableData"]["Name"]] = params["TableData"]
        elif model.name == "DeleteDataCellsFilter":
            self.filters.pop(params.get("Name", ""), None)
        listed = {"DataCellsFilters": list(self.filters.values())} if model.name == "ListDataCellsFilter" else {}
        from botocore.awsrequest import AWSResponse

        return AWSResponse("", 200, {}, None), listed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def aws_environment(endpoint: str, home: Path, warehouse_url: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,  # what boto3 reads (AWS_REGION is the deployment setting)
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "ENROLLMENT_ENV": "aws",
        "ENROLLMENT_HOME": str(home),
        "ENROLLMENT_RAW_URI": f"s3://{RAW_BUCKET}/raw",
        "ENROLLMENT_LAKE_URI": f"s3://{LAKE_BUCKET}/lake",
        "ENROLLMENT_WAREHOUSE_URL": warehouse_url,
        "ENROLLMENT_PII_SECRET_ID": SECRET_ID,
        "ENROLLMENT_GLUE_DATABASE": DATABASE,
    }


def provision(original_raw: Path) -> dict:
    """What the infra/ stacks would have created, and the original system's raw files in the raw bucket."""
    import boto3

    s3 = boto3.client("s3")
    for bucket in (RAW_BUCKET, LAKE_BUCKET):
        s3.create_bucket(Bucket=bucket)
    for path in sorted(p for p in original_raw.rglob("*") if p.is_file()):
        s3.upload_file(str(path), RAW_BUCKET, f"raw/{path.relative_to(original_raw).as_posix()}")
    boto3.client("secretsmanager").create_secret(Name=SECRET_ID, SecretString="moto-test-pii-key-0123456789abcdef")
    topic = boto3.client("sns").create_topic(Name="enrollment-test-events")["TopicArn"]
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="enrollment-test-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return {"topic": topic, "queue": queue}


@pytest.fixture(scope="module")
def aws_run(moto_endpoint, original_raw, postgres_url, tmp_path_factory):
    """One `enrollment-platform run` with ENROLLMENT_ENV=aws: (settings, summary, provisioned)."""
    from enrollment_platform.runner import run_pipeline

    home = tmp_path_factory.mktemp("aws_home")
    with fresh_schema(postgres_url) as warehouse_url, pytest.MonkeyPatch.context() as patch:
        for name, value in aws_environment(moto_endpoint, home, warehouse_url).items():
            patch.setenv(name, value)
        patch.delenv("ENROLLMENT_PII_KEY", raising=False)  # in aws the key comes from Secrets Manager only
        provisioned = provision(original_raw)
        patch.setenv("ENROLLMENT_SNS_TOPIC_ARN", provisioned["topic"])
        cells = DataCellsFilters()
        patch.setattr("boto3.client", cells.client)
        settings = Settings.from_env()
        summary = run_pipeline(settings)
        yield settings, summary, provisioned | {"data_cells_filters": cells}, _warehouse_counts(warehouse_url)


def _warehouse_counts(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as con:
        tables = [r[0] for r in con.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def test_the_graph_runs_on_aws_and_lands_curated_parquet_in_the_lake_bucket(aws_run):
    import boto3

    _, summary, _, _ = aws_run
    assert summary.success, summary.failures
    s3 = boto3.client("s3")
    for dataset, counts in summary.datasets.items():
        body = s3.get_object(Bucket=LAKE_BUCKET, Key=f"lake/curated/{dataset}/{dataset}.parquet")["Body"].read()
        table = pq.read_table(io.BytesIO(body))
        assert counts["reconciled"] and counts["rows_out"] > 0
        assert table.num_rows >= counts["rows_out"], dataset  # the state: this batch's rows (and none dropped)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=LAKE_BUCKET, Prefix="lake/")["Contents"]]
    assert any(k.startswith("lake/quarantine/enrollments/") for k in keys)
    assert any(k.startswith("lake/dq_results/") for k in keys)
    assert any(k == "lake/_state/processed_raw_files.parquet" for k in keys)  # the bookmark ledger, in S3 too


def test_the_glue_catalog_has_the_curated_tables_with_their_columns(aws_run):
    import boto3

    _, summary, _, _ = aws_run
    glue, s3 = boto3.client("glue"), boto3.client("s3")
    for dataset in summary.datasets:
        table = glue.get_table(DatabaseName=DATABASE, Name=f"curated_{dataset}")["Table"]
        body = s3.get_object(Bucket=LAKE_BUCKET, Key=f"lake/curated/{dataset}/{dataset}.parquet")["Body"].read()
        columns = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
        assert columns == pq.read_schema(io.BytesIO(body)).names, dataset
        assert table["StorageDescriptor"]["Location"].startswith(f"s3://{LAKE_BUCKET}/lake/curated/{dataset}")
    raw_tables = [
        t["Name"] for t in glue.get_tables(DatabaseName=DATABASE)["TableList"] if t["Name"].startswith("raw_")
    ]
    assert any(name.startswith("raw_enrollments") for name in raw_tables)


def test_the_warehouse_on_postgresql_holds_the_star_schema(aws_run):
    _, summary, _, counts = aws_run
    for table in ("student_dim", "course_dim", "instructor_dim", "enrollment_fact", "student_pii"):
        assert counts[table] == summary.warehouse[table]["rows"] > 0, table


def test_sns_carries_the_run_notification(aws_run):
    import boto3

    _, summary, provisioned, _ = aws_run
    messages = boto3.client("sqs").receive_message(QueueUrl=provisioned["queue"], MaxNumberOfMessages=10)
    bodies = [json.loads(json.loads(m["Body"])["Message"]) for m in messages.get("Messages", [])]
    assert any(summary.run_id in json.dumps(body) for body in bodies)


def test_aws_names_every_missing_setting(monkeypatch, tmp_path):
    from enrollment_platform.definitions import resources_for

    for name in [*AWS_REQUIRED, "AWS_REGION", "AWS_DEFAULT_REGION"]:
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env(environ={"ENROLLMENT_ENV": "aws", "ENROLLMENT_HOME": str(tmp_path)})
    with pytest.raises(SettingsError) as error:
        resources_for(settings)
    for name in ["AWS_REGION", "ENROLLMENT_SNS_TOPIC_ARN", "ENROLLMENT_PII_SECRET_ID", "ENROLLMENT_GLUE_DATABASE"]:
        assert name in str(error.value)


def test_aws_with_the_spark_engine_needs_the_pipes_bucket_and_runs_glue_jobs(monkeypatch, moto_endpoint, tmp_path):
    from enrollment_platform.definitions import resources_for
    from enrollment_platform.resources.job_runner import GlueJobRunner

    environment = aws_environment(moto_endpoint, tmp_path, "postgresql://postgres@127.0.0.1:5432/test")
    environment |= {"ENROLLMENT_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t", "ENROLLMENT_ENGINE": "spark"}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match="ENROLLMENT_PIPES_BUCKET"):
        resources_for(Settings.from_env())
    monkeypatch.setenv("ENROLLMENT_PIPES_BUCKET", "enrollment-test-artifacts")
    runner = resources_for(Settings.from_env())["job_runner"]
    assert isinstance(runner, GlueJobRunner) and runner.job_prefix == "enrollment"


def test_local_definitions_load_without_any_aws_setting(monkeypatch, tmp_path):
    """`ENROLLMENT_ENV=local` builds every resource with no region, credentials or endpoint."""
    from enrollment_platform.definitions import build_definitions

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    settings = Settings.from_env(environ={"ENROLLMENT_HOME": str(tmp_path)})
    definitions = build_definitions(settings)
    assert definitions.resolve_job_def("enrollment_pipeline") is not None


def test_lake_formation_gets_the_access_policy_grants(aws_run):
    """Grants land in (moto's) Lake Formation; the department row filter is sent as a data-cells filter."""
    import boto3

    _, _, provisioned, _ = aws_run
    granted = boto3.client("lakeformation").list_permissions()["PrincipalResourcePermissions"]
    tables = {p["Resource"].get("TableWithColumns", p["Resource"].get("Table", {})).get("Name") for p in granted}
    assert {"curated_enrollments", "curated_students"} <= tables
    created = [params for name, params in provisioned["data_cells_filters"].requests if name == "CreateDataCellsFilter"]
    assert any(p["TableData"]["TableName"] == "curated_enrollments" and p["TableData"]["RowFilter"] for p in created)
