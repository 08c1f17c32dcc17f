"""Retry policy: steps touching external systems retry transient errors; data errors fail at once."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from enrollment_platform.assets.deduped import curated_parts
from enrollment_platform.assets.raw import raw_assets
from enrollment_platform.assets.warehouse import warehouse_assets
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.warehouse import DuckDBWarehouse
from enrollment_platform.retries import EXTERNAL_IO_RETRY

PARTITION = "2024-06-01"
COURSE_DIM = dg.AssetKey(["warehouse", "course_dim"])


class FlakyWarehouse(DuckDBWarehouse):
    """Fails the first `failures` loads with `error` ("connection" or "data"), then loads for real."""

    attempts_file: str
    failures: int = 1
    error: str = "connection"

    def load_dimension(self, spec, parquet, changes=None):
        log = Path(self.attempts_file)
        attempt = len(log.read_text().splitlines()) + 1 if log.exists() else 1
        log.write_text("attempt\n" * attempt)
        if attempt <= self.failures:
            if self.error == "data":
                raise dg.Failure("course_dim: the curated file has rows the warehouse rejects", allow_retries=False)
            raise ConnectionError("connection reset by peer")
        return super().load_dimension(spec, parquet, changes)


@pytest.fixture
def lake(tmp_path) -> LocalLake:
    """A lake holding a two-row curated courses file."""
    lake = LocalLake(root=str(tmp_path / "lake"))
    duckdb.execute(
        "COPY (SELECT * FROM (VALUES ('C1', 'Algebra'), ('C2', 'Biology')) t(course_id, course_name), "
        "(SELECT 'courses.csv' AS _source_file, 1::BIGINT AS _source_row, []::VARCHAR[] AS _flags)) "
        f"TO '{lake.path(*curated_parts('courses'))}' (FORMAT parquet)"
    )
    return lake


def materialize_course_dim(lake: LocalLake, warehouse: FlakyWarehouse) -> dg.ExecuteInProcessResult:
    course_dim = next(a for a in warehouse_assets if a.key == COURSE_DIM)
    return dg.materialize(
        [course_dim], resources={"lake": lake, "warehouse": warehouse}, partition_key=PARTITION, raise_on_error=False
    )


def retries(result: dg.ExecuteInProcessResult) -> int:
    return sum(1 for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY)


def attempts(warehouse: FlakyWarehouse) -> int:
    return len(Path(warehouse.attempts_file).read_text().splitlines())


def test_external_steps_carry_the_policy():
    for asset in [*raw_assets, *(a for a in warehouse_assets if a.key.path[0] == "warehouse")]:
        assert asset.op.retry_policy == EXTERNAL_IO_RETRY, asset.key
    assert EXTERNAL_IO_RETRY.max_retries == 3
    assert EXTERNAL_IO_RETRY.backoff == dg.Backoff.EXPONENTIAL


def test_a_dropped_connection_is_retried_and_the_load_succeeds(tmp_path, lake):
    warehouse = FlakyWarehouse(path=str(tmp_path / "w.duckdb"), attempts_file=str(tmp_path / "attempts"))
    result = materialize_course_dim(lake, warehouse)
    assert result.success
    assert attempts(warehouse) == 2
    assert retries(result) == 1
    assert warehouse.query("SELECT course_id FROM course_dim ORDER BY 1") == [("C1",), ("C2",)]


def test_a_connection_that_stays_down_fails_after_three_retries(tmp_path, lake):
    warehouse = FlakyWarehouse(path=str(tmp_path / "w.duckdb"), attempts_file=str(tmp_path / "attempts"), failures=9)
    result = materialize_course_dim(lake, warehouse)
    assert not result.success
    assert attempts(warehouse) == 1 + EXTERNAL_IO_RETRY.max_retries
    assert retries(result) == EXTERNAL_IO_RETRY.max_retries


def test_a_data_error_is_not_retried(tmp_path, lake):
    warehouse = FlakyWarehouse(
        path=str(tmp_path / "w.duckdb"), attempts_file=str(tmp_path / "attempts"), failures=9, error="data"
    )
    result = materialize_course_dim(lake, warehouse)
    assert not result.success
    assert attempts(warehouse) == 1
    assert retries(result) == 0
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "rows the warehouse rejects" in failure.step_failure_data.error.message
