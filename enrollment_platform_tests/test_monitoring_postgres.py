"""Warehouse metrics on the real PostgreSQL server: row counts and sizes of the tables of a schema of its own, and
pg_stat_statements reported as missing (not installed, or installed but not preloaded) without failing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enrollment_platform.config import DimensionSpec
from enrollment_platform.monitoring import history
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.warehouse import PostgresWarehouse
from enrollment_platform.resources.warehouse.postgres import NOT_INSTALLED
from enrollment_platform_tests.test_monitoring_warehouse import observe
from enrollment_platform_tests.test_warehouse_postgres import fresh_schema

pytestmark = pytest.mark.postgres
STUDENTS = DimensionSpec("student_dim", "students", "student_id", "student_key")
COURSES = DimensionSpec("course_dim", "courses", "course_id", "course_key")


@contextmanager
def fresh_database(base_url: str) -> Iterator[str]:
    """A database of its own (so an extension created in it touches nobody else), dropped at the end."""
    name = f"ep_mon_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    try:
        yield base_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(base_url, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def parquet(tmp_path, name: str, rows: int, key: str) -> str:
    path = tmp_path / f"{name}.parquet"
    pq.write_table(pa.table({key: [f"{name[0]}{i}" for i in range(rows)], "note": ["x" * 40] * rows}), path)
    return str(path)


@pytest.fixture
def loaded(postgres_url, tmp_path) -> Iterator[tuple[PostgresWarehouse, dict[str, int]]]:
    """Two tables loaded through the warehouse's own upsert; their input row counts."""
    inputs = {"student_dim": 1200, "course_dim": 30}
    with fresh_schema(postgres_url) as url:
        warehouse = PostgresWarehouse(url=url)
        warehouse.load_table(STUDENTS, parquet(tmp_path, "students", inputs["student_dim"], "student_id"))
        warehouse.load_table(COURSES, parquet(tmp_path, "courses", inputs["course_dim"], "course_id"))
        yield warehouse, inputs


def extension_installed(url: str) -> bool:
    with psycopg.connect(url) as con:
        return con.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone() is not None


def test_table_stats_on_postgres(loaded):
    warehouse, inputs = loaded
    stats = {t.table: t for t in warehouse.table_stats()}
    assert {table: t.rows for table, t in stats.items()} == inputs
    for table, t in stats.items():
        heap = warehouse.query("SELECT pg_relation_size(%s::regclass)", [table])[0][0]
        assert t.size_bytes >= heap > 0  # the total counts indexes and TOAST besides the heap
    assert stats["student_dim"].size_bytes > stats["course_dim"].size_bytes


def test_slow_queries_say_what_is_missing_without_failing(loaded, postgres_url):
    warehouse, _ = loaded
    log = warehouse.slow_queries()
    assert log.source == "pg_stat_statements"
    if not extension_installed(postgres_url):
        assert (log.available, log.note, log.queries) == (False, NOT_INSTALLED, ())
    elif log.available:  # someone installed and preloaded it on this server
        assert log.cumulative and all(q.calls > 0 for q in log.queries)
    else:
        assert "cannot be read" in log.note


def test_an_extension_created_but_not_preloaded_is_reported(postgres_url):
    with psycopg.connect(postgres_url) as con:
        preloaded = con.execute("SHOW shared_preload_libraries").fetchone()[0]
        available = con.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'").fetchone()
    if "pg_stat_statements" in preloaded or available is None:
        pytest.skip(f"pg_stat_statements preloaded ({preloaded!r}) or not shipped with this server")
    with fresh_database(postgres_url) as url:
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("CREATE EXTENSION pg_stat_statements")
        log = PostgresWarehouse(url=url).slow_queries()
    assert not log.available
    assert log.note.startswith("pg_stat_statements cannot be read") and "shared_preload_libraries" in log.note


def test_the_metrics_asset_observes_postgres(loaded, postgres_url, tmp_path):
    warehouse, inputs = loaded
    lake = LocalLake(root=str(tmp_path / "lake"))
    metadata, warnings = observe(lake, warehouse, dg.DagsterInstance.ephemeral())
    assert metadata["warehouse"] == "postgresql"
    assert {table: metadata[f"rows.{table}"] for table in inputs} == inputs
    assert metadata["total_rows"] == sum(inputs.values())
    assert metadata["query_source"] == "pg_stat_statements"
    if not metadata["query_source_available"]:
        assert metadata["query_source_note"] in metadata["slow_queries"] and metadata["query_source_note"] in warnings
    rows = history.read_rows(lake, history.TABLES)
    assert {r["table"]: r["rows"] for r in rows} == inputs and {r["warehouse"] for r in rows} == {"postgresql"}
