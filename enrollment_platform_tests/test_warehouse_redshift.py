"""The Redshift warehouse (redshift_connector) cannot run here: a recording connection is injected into the resource
and the exact statements of each load are asserted (COPY from S3, upsert with MERGE, one transaction, ROLLBACK on
failure), with the Redshift type mapping and the URL -> warehouse choice."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enrollment_platform.config import DimensionSpec
from enrollment_platform.definitions import local_resources
from enrollment_platform.resources.warehouse import (
    DuckDBWarehouse,
    PostgresWarehouse,
    RedshiftWarehouse,
    warehouse_for,
)
from enrollment_platform.resources.warehouse.dialects import DuckDBDialect, PostgresDialect, RedshiftDialect
from enrollment_platform.resources.warehouse.model import star_table
from enrollment_platform.settings import Settings, SettingsError

ROLE = "arn:aws:iam::123456789012:role/enrollment-redshift-copy"
LAKE_S3 = "s3://enrollment-lake/prod"
STUDENTS = DimensionSpec("student_dim", "students", "student_id", "student_key")
ENROLLMENTS = DimensionSpec(
    "enrollment_fact", "enrollments", "enrollment_id", "enrollment_key", {"student_key": ("student_dim", "student_id")}
)
FLAGS = pa.list_(pa.string())
COLUMNS_QUERY = (
    "SELECT column_name FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position"
)


class RecordingCursor:
    def __init__(self, connection: RecordingConnection) -> None:
        self.connection = connection
        self.rows: list[tuple] = []
        self.description = None

    def execute(self, sql: str, args=None) -> None:
        self.connection.log.append(sql if args is None else (sql, list(args)))
        if self.connection.fail_on and sql.startswith(self.connection.fail_on):
            raise RuntimeError(f"simulated Redshift error in {self.connection.fail_on}")
        self.rows = next((rows for prefix, rows in self.connection.canned.items() if sql.startswith(prefix)), [])
        self.description = [("column",)] if self.rows else None

    def fetchall(self) -> list[tuple]:
        return self.rows

    def fetchone(self) -> tuple | None:
        return self.rows[0] if self.rows else None


class RecordingConnection:
    """A stand-in for a redshift_connector connection: records statements, commits and rollbacks; answers the
    statements starting with a canned prefix with its rows."""

    def __init__(self, canned: dict[str, list[tuple]] | None = None, fail_on: str | None = None) -> None:
        self.canned = canned or {}
        self.fail_on = fail_on
        self.log: list = []
        self.autocommit = True
        self.closed = False

    def cursor(self) -> RecordingCursor:
        return RecordingCursor(self)

    def commit(self) -> None:
        self.log.append("COMMIT")

    def rollback(self) -> None:
        self.log.append("ROLLBACK")

    def close(self) -> None:
        self.closed = True


def redshift(tmp_path: Path, connection: RecordingConnection) -> RedshiftWarehouse:
    return RedshiftWarehouse(
        host="cluster.abc123.eu-west-1.redshift.amazonaws.com",
        database="enrollment",
        user="loader",
        iam_role=ROLE,
        lake_root=str(tmp_path / "lake"),
        lake_s3_uri=LAKE_S3,
    ).with_connection(lambda: connection)


def curated(tmp_path: Path, dataset: str, columns: dict[str, pa.Array]) -> str:
    path = tmp_path / "lake" / "curated" / dataset / f"{dataset}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return str(path)


def students(tmp_path: Path) -> str:
    return curated(
        tmp_path,
        "students",
        {
            "student_id": pa.array(["s1", "s2"]),
            "birth_year": pa.array([2000, None], pa.int32()),
            "_source_file": pa.array(["a.csv", "a.csv"]),
            "_source_row": pa.array([1, 2], pa.int64()),
            "_flags": pa.array([["a"], []], FLAGS),
        },
    )


def enrollments(tmp_path: Path) -> str:
    return curated(
        tmp_path,
        "enrollments",
        {
            "enrollment_id": pa.array(["e1"]),
            "student_id": pa.array(["s1"]),
            "marks": pa.array([81.5]),
            "_source_file": pa.array(["e.csv"]),
            "_source_row": pa.array([1], pa.int64()),
            "_flags": pa.array([None], FLAGS),
        },
    )


def ne(column: str) -> str:
    """Redshift's NULL-safe `k.column` differs from `t.column` (it has no IS DISTINCT FROM)."""
    k, t = f'k."{column}"', f't."{column}"'
    return f"({k} <> {t} OR ({k} IS NULL AND {t} IS NOT NULL) OR ({k} IS NOT NULL AND {t} IS NULL))"


def flags_join(table: str, natural: str) -> str:
    """The join that turns the staged SUPER array `_flags` into '; '-joined text, items in order."""
    return (
        f'LEFT JOIN (SELECT x."{natural}" AS list_key, '
        f"LISTAGG(e::VARCHAR, '; ') WITHIN GROUP (ORDER BY i) AS items "
        f'FROM "{table}__staged" x, x."_flags" AS e AT i GROUP BY x."{natural}") l_flags '
        f'ON l_flags.list_key = s."{natural}"'
    )


def new_keys(table: str, natural: str, surrogate: str) -> str:
    """The narrow numbering of the staged keys the table lacks."""
    return (
        f'CREATE TEMP TABLE "{table}__new_keys" AS SELECT s."{natural}" AS "{natural}", '
        f'm.top + row_number() OVER (ORDER BY s."{natural}") AS "{surrogate}" FROM "{table}__staged" s '
        f'CROSS JOIN (SELECT coalesce(max("{surrogate}"), 0) AS top FROM "{table}") m '
        f'WHERE NOT EXISTS (SELECT 1 FROM "{table}" t WHERE t."{natural}" = s."{natural}")'
    )


def keyed_sources(table: str, natural: str) -> str:
    return (
        f'FROM "{table}__staged" s LEFT JOIN "{table}" t ON t."{natural}" = s."{natural}" '
        f'LEFT JOIN "{table}__new_keys" n ON n."{natural}" = s."{natural}"'
    )


def record_version(table: str, version: str = "") -> list:
    """The load records which curated state version the table now holds."""
    create = 'CREATE TABLE IF NOT EXISTS "_load_state" (table_name VARCHAR(65535), state_version VARCHAR(65535))'
    return [
        create,
        ('DELETE FROM "_load_state" WHERE table_name = %s', [table]),
        ('INSERT INTO "_load_state" (table_name, state_version) VALUES (%s, %s)', [table, version]),
    ]


FLAGS_TEXT = """CASE WHEN s."_flags" IS NULL THEN NULL ELSE coalesce(l_flags.items, '') END AS "dq_flags\""""

STUDENT_DIM_LOAD = [
    'CREATE TEMP TABLE "student_dim__staged" ("student_id" VARCHAR(65535), "birth_year" INTEGER, '
    '"_source_file" VARCHAR(65535), "_source_row" BIGINT, "_flags" SUPER)',
    f"COPY \"student_dim__staged\" FROM '{LAKE_S3}/curated/students/students.parquet' IAM_ROLE '{ROLE}' "
    "FORMAT AS PARQUET",
    'CREATE TABLE IF NOT EXISTS "student_dim" ("student_key" BIGINT, "student_id" VARCHAR(65535), '
    '"birth_year" INTEGER, "source_file" VARCHAR(65535), "source_row" BIGINT, "dq_flags" VARCHAR(65535))',
    (COLUMNS_QUERY, ["student_dim"]),
    'SELECT count(*) FROM "student_dim"',
    new_keys("student_dim", "student_id", "student_key"),
    'CREATE TEMP TABLE "student_dim__keyed" AS SELECT coalesce(t."student_key", n."student_key") AS "student_key", '
    's."student_id" AS "student_id", s."birth_year" AS "birth_year", s."_source_file" AS "source_file", '
    f's."_source_row" AS "source_row", {FLAGS_TEXT} '
    f"{keyed_sources('student_dim', 'student_id')} "
    f"{flags_join('student_dim', 'student_id')}",
    'CREATE TEMP TABLE "student_dim__changes" AS SELECT k.*, CASE WHEN t."student_key" IS NULL THEN 1 ELSE 0 END '
    'AS is_new FROM "student_dim__keyed" k LEFT JOIN "student_dim" t ON t."student_id" = k."student_id" '
    f'WHERE t."student_id" IS NULL OR {ne("birth_year")} OR {ne("source_file")} OR {ne("source_row")} '
    f"OR {ne('dq_flags')}",
    'SELECT (SELECT count(*) FROM "student_dim__changes" WHERE is_new = 1) AS inserted, '
    '(SELECT count(*) FROM "student_dim__changes" WHERE is_new = 0) AS updated, '
    '(SELECT count(*) FROM "student_dim" t LEFT JOIN "student_dim__keyed" k ON k."student_id" = t."student_id" '
    'WHERE k."student_id" IS NULL) AS deleted',
    'DELETE FROM "student_dim" WHERE NOT EXISTS '
    '(SELECT 1 FROM "student_dim__keyed" k WHERE k."student_id" = "student_dim"."student_id")',
    'MERGE INTO "student_dim" USING "student_dim__changes" c ON "student_dim"."student_id" = c."student_id" '
    'WHEN MATCHED THEN UPDATE SET "birth_year" = c."birth_year", "source_file" = c."source_file", '
    '"source_row" = c."source_row", "dq_flags" = c."dq_flags" '
    'WHEN NOT MATCHED THEN INSERT ("student_key", "student_id", "birth_year", "source_file", "source_row", '
    '"dq_flags") VALUES (c."student_key", c."student_id", c."birth_year", c."source_file", c."source_row", '
    'c."dq_flags")',
    'SELECT count(*) FROM "student_dim"',
    "COMMIT",
    *record_version("student_dim"),
    "COMMIT",
]


def test_a_dimension_load_copies_from_s3_and_merges_in_one_transaction(tmp_path):
    existing = [("student_key",), ("student_id",), ("birth_year",), ("source_file",), ("source_row",), ("dq_flags",)]
    connection = RecordingConnection(
        {COLUMNS_QUERY: existing, "SELECT (SELECT count(*)": [(1, 1, 1)], "SELECT count(*) FROM": [(2,)]}
    )
    result = redshift(tmp_path, connection).load_dimension(STUDENTS, students(tmp_path))
    assert connection.log == STUDENT_DIM_LOAD
    assert (result.table, result.rows, result.inserted, result.updated, result.deleted) == ("student_dim", 2, 1, 1, 1)
    assert connection.autocommit is False and connection.closed


def test_a_fact_load_looks_up_the_dimension_keys_and_adds_new_columns(tmp_path):
    """The table lacks `dq_flags` (an older load): it is added; nothing changed, so no DELETE and no MERGE."""
    existing = [("enrollment_key",), ("student_key",), ("enrollment_id",), ("marks",), ("source_file",)]
    existing.append(("source_row",))
    connection = RecordingConnection(
        {COLUMNS_QUERY: existing, "SELECT (SELECT count(*)": [(0, 0, 0)], "SELECT count(*) FROM": [(1,)]}
    )
    result = redshift(tmp_path, connection).load_fact(ENROLLMENTS, enrollments(tmp_path))
    assert connection.log == [
        'CREATE TEMP TABLE "enrollment_fact__staged" ("enrollment_id" VARCHAR(65535), "student_id" VARCHAR(65535), '
        '"marks" DOUBLE PRECISION, "_source_file" VARCHAR(65535), "_source_row" BIGINT, "_flags" SUPER)',
        f"COPY \"enrollment_fact__staged\" FROM '{LAKE_S3}/curated/enrollments/enrollments.parquet' "
        f"IAM_ROLE '{ROLE}' FORMAT AS PARQUET",
        'CREATE TABLE IF NOT EXISTS "enrollment_fact" ("enrollment_key" BIGINT, "student_key" BIGINT, '
        '"enrollment_id" VARCHAR(65535), "marks" DOUBLE PRECISION, "source_file" VARCHAR(65535), '
        '"source_row" BIGINT, "dq_flags" VARCHAR(65535))',
        (COLUMNS_QUERY, ["enrollment_fact"]),
        'ALTER TABLE "enrollment_fact" ADD COLUMN "dq_flags" VARCHAR(65535)',
        'SELECT count(*) FROM "enrollment_fact"',
        new_keys("enrollment_fact", "enrollment_id", "enrollment_key"),
        'CREATE TEMP TABLE "enrollment_fact__keyed" AS SELECT coalesce(t."enrollment_key", n."enrollment_key") '
        'AS "enrollment_key", d0."student_key" AS "student_key", s."enrollment_id" AS "enrollment_id", '
        's."marks" AS "marks", s."_source_file" AS "source_file", s."_source_row" AS "source_row", '
        f"{FLAGS_TEXT} "
        f"{keyed_sources('enrollment_fact', 'enrollment_id')} "
        'LEFT JOIN "student_dim" d0 ON d0."student_id" = s."student_id" '
        f"{flags_join('enrollment_fact', 'enrollment_id')}",
        'CREATE TEMP TABLE "enrollment_fact__changes" AS SELECT k.*, '
        'CASE WHEN t."enrollment_key" IS NULL THEN 1 ELSE 0 END AS is_new FROM "enrollment_fact__keyed" k '
        'LEFT JOIN "enrollment_fact" t ON t."enrollment_id" = k."enrollment_id" '
        f'WHERE t."enrollment_id" IS NULL OR {ne("student_key")} OR {ne("marks")} OR {ne("source_file")} '
        f"OR {ne('source_row')} OR {ne('dq_flags')}",
        'SELECT (SELECT count(*) FROM "enrollment_fact__changes" WHERE is_new = 1) AS inserted, '
        '(SELECT count(*) FROM "enrollment_fact__changes" WHERE is_new = 0) AS updated, '
        '(SELECT count(*) FROM "enrollment_fact" t LEFT JOIN "enrollment_fact__keyed" k '
        'ON k."enrollment_id" = t."enrollment_id" WHERE k."enrollment_id" IS NULL) AS deleted',
        'SELECT count(*) FROM "enrollment_fact"',
        "COMMIT",
        *record_version("enrollment_fact"),
        "COMMIT",
    ]
    assert (result.rows, result.inserted, result.updated, result.deleted) == (1, 0, 0, 0)


def test_a_failure_mid_load_rolls_back(tmp_path):
    canned = {"SELECT (SELECT count(*)": [(1, 1, 1)], "SELECT count(*) FROM": [(2,)]}
    connection = RecordingConnection(canned, fail_on="MERGE INTO")
    with pytest.raises(RuntimeError, match="simulated Redshift error"):
        redshift(tmp_path, connection).load_dimension(STUDENTS, students(tmp_path))
    assert connection.log[-2].startswith('MERGE INTO "student_dim"')
    assert connection.log[-1] == "ROLLBACK"
    assert "COMMIT" not in connection.log and connection.closed


def test_dq_results_replace_the_rows_of_their_run(tmp_path):
    path = tmp_path / "lake" / "staging" / "dq_results" / "run-1.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"run_id": ["run-1"], "rule": ['IsComplete "x"'], "score": [1.0]}), path)
    connection = RecordingConnection({COLUMNS_QUERY: [("run_id",), ("rule",), ("score",)], "SELECT count(*)": [(1,)]})
    assert redshift(tmp_path, connection).append_results("dq_results", str(path), "run-1") == 1
    assert connection.log == [
        'CREATE TEMP TABLE "dq_results__staged" ("run_id" VARCHAR(65535), "rule" VARCHAR(65535), '
        '"score" DOUBLE PRECISION)',
        f"COPY \"dq_results__staged\" FROM '{LAKE_S3}/staging/dq_results/run-1.parquet' IAM_ROLE '{ROLE}' "
        "FORMAT AS PARQUET",
        'CREATE TABLE IF NOT EXISTS "dq_results" ("run_id" VARCHAR(65535), "rule" VARCHAR(65535), '
        '"score" DOUBLE PRECISION)',
        (COLUMNS_QUERY, ["dq_results"]),
        ('DELETE FROM "dq_results" WHERE run_id = %s', ["run-1"]),
        'INSERT INTO "dq_results" ("run_id", "rule", "score") '
        'SELECT s."run_id" AS "run_id", s."rule" AS "rule", s."score" AS "score" FROM "dq_results__staged" s',
        ('SELECT count(*) FROM "dq_results" WHERE run_id = %s', ["run-1"]),
        "COMMIT",
    ]


@pytest.mark.parametrize(
    ("arrow", "redshift_type"),
    [
        (pa.string(), "VARCHAR(65535)"),
        (pa.large_string(), "VARCHAR(65535)"),
        (pa.int16(), "SMALLINT"),
        (pa.int32(), "INTEGER"),
        (pa.int64(), "BIGINT"),
        (pa.float32(), "REAL"),
        (pa.float64(), "DOUBLE PRECISION"),
        (pa.bool_(), "BOOLEAN"),
        (pa.date32(), "DATE"),
        (pa.timestamp("us"), "TIMESTAMP"),
        (pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ"),
        (pa.decimal128(12, 2), "DECIMAL(12, 2)"),
        (pa.null(), "VARCHAR(65535)"),
    ],
)
def test_redshift_type_mapping(arrow, redshift_type):
    assert RedshiftDialect().column_type(arrow) == redshift_type


def test_lists_are_super_while_staged_and_text_in_the_table():
    schema = pa.schema([("student_id", pa.string()), ("_flags", FLAGS)])
    table = star_table(STUDENTS, schema)
    assert [(c.name, c.type) for c in table.table_columns] == [
        ("student_key", pa.int64()),
        ("student_id", pa.string()),
        ("dq_flags", pa.string()),
    ]
    staged = {
        dialect.name: [dialect.staging_type(c.type) for c in table.staged]
        for dialect in (RedshiftDialect(), PostgresDialect(), DuckDBDialect())
    }
    assert staged == {
        "redshift": ["VARCHAR(65535)", "SUPER"],
        "postgresql": ["TEXT", "TEXT"],
        "duckdb": ["VARCHAR", "VARCHAR[]"],
    }
    with pytest.raises(TypeError, match="no redshift column type"):
        RedshiftDialect().column_type(pa.struct([("a", pa.int32())]))


def test_s3_uri_of_a_lake_object(tmp_path):
    warehouse = redshift(tmp_path, RecordingConnection())
    local = str(tmp_path / "lake" / "curated" / "students" / "students.parquet")
    assert warehouse.s3_uri_for(local) == f"{LAKE_S3}/curated/students/students.parquet"
    assert warehouse.s3_uri_for("s3://other/key.parquet") == "s3://other/key.parquet"
    with pytest.raises(ValueError, match="not under the lake root"):
        warehouse.s3_uri_for("/elsewhere/students.parquet")


# --- ENROLLMENT_WAREHOUSE_URL -> warehouse ------------------------------------------------------------------------


def test_the_url_chooses_the_warehouse():
    assert warehouse_for("duckdb:////tmp/w.duckdb", "/tmp/lake") == DuckDBWarehouse(path="/tmp/w.duckdb")
    assert isinstance(warehouse_for("postgresql://u@h:5432/db", "/tmp/lake"), PostgresWarehouse)
    environ = {"ENROLLMENT_REDSHIFT_IAM_ROLE": ROLE, "ENROLLMENT_REDSHIFT_PASSWORD": "secret"}
    chosen = warehouse_for("redshift://loader@cluster.example:5439/enrollment", LAKE_S3, environ)
    assert isinstance(chosen, RedshiftWarehouse)
    assert (chosen.host, chosen.port, chosen.database, chosen.user, chosen.password) == (
        "cluster.example",
        5439,
        "enrollment",
        "loader",
        "secret",
    )
    assert (chosen.iam_role, chosen.lake_root, chosen.lake_s3_uri) == (ROLE, LAKE_S3, LAKE_S3)
    in_url = warehouse_for(f"redshift://loader:pw@cluster.example/enrollment?iam_role={ROLE}", LAKE_S3, {})
    assert (in_url.iam_role, in_url.password, in_url.port) == (ROLE, "pw", 5439)


@pytest.mark.parametrize(
    ("url", "lake", "environ", "names"),
    [
        ("mysql://u@h/db", "/tmp/lake", {}, "ENROLLMENT_WAREHOUSE_URL"),
        ("warehouse.duckdb", "/tmp/lake", {}, "ENROLLMENT_WAREHOUSE_URL"),
        ("redshift://loader@cluster.example/enrollment", LAKE_S3, {}, "ENROLLMENT_REDSHIFT_IAM_ROLE"),
        ("redshift://cluster.example/enrollment", LAKE_S3, {"ENROLLMENT_REDSHIFT_IAM_ROLE": ROLE}, "WAREHOUSE_URL"),
        ("redshift://loader@h/db", "/tmp/lake", {"ENROLLMENT_REDSHIFT_IAM_ROLE": ROLE}, "ENROLLMENT_LAKE_URI"),
    ],
)
def test_a_url_that_cannot_work_names_what_to_set(url, lake, environ, names):
    with pytest.raises(SettingsError, match=names):
        warehouse_for(url, lake, environ)


def test_local_resources_refuse_an_unknown_warehouse_url(tmp_path):
    settings = Settings.from_env(environ={}, home=str(tmp_path), warehouse_url="sqlite:///w.db")
    with pytest.raises(SettingsError, match=re.escape("ENROLLMENT_WAREHOUSE_URL='sqlite:///w.db'")):
        local_resources(settings)
