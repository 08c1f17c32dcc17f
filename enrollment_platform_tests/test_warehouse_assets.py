"""When the enrollment fact may take only its batch's changes: only when no other fact row can change."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enrollment_platform.assets.curated import changes_parts, removed_parts
from enrollment_platform.assets.deduped import curated_parts
from enrollment_platform.assets.warehouse import fact_changes
from enrollment_platform.config import load_catalog
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.warehouse.embedded import DuckDBWarehouse

BATCH = "2024-09-02"
FACT = load_catalog().warehouse["enrollment_fact"]
DIMENSIONS = {"students": "student_key", "courses": "course_key", "instructors": "instructor_key"}


def _write(lake: LocalLake, parts: list[str], rows: int, footer: dict[str, str] | None = None) -> None:
    table = pa.table({"id": pa.array([str(i) for i in range(rows)], pa.string())})
    pq.write_table(table.replace_schema_metadata(footer or {}), lake.path(*parts))


def _batch(lake: LocalLake, changed: dict[str, int] | None = None, removed: dict[str, int] | None = None) -> None:
    """The batch's change files: the enrollments' (v1 -> v2, the state at v2), and each dimension's."""
    footer = {"base_version": "v1", "state_version": "v2", "state_rows": "3"}
    _write(lake, curated_parts("enrollments"), 3, {"state_version": "v2"})
    _write(lake, changes_parts("enrollments", BATCH), 1, footer)
    _write(lake, removed_parts("enrollments", BATCH), 0, footer)
    for dataset in DIMENSIONS:
        _write(lake, changes_parts(dataset, BATCH), (changed or {}).get(dataset, 0))
        _write(lake, removed_parts(dataset, BATCH), (removed or {}).get(dataset, 0))


@pytest.fixture
def lake(tmp_path) -> LocalLake:
    return LocalLake(root=str(tmp_path / "lake"))


@pytest.fixture
def warehouse(tmp_path) -> DuckDBWarehouse:
    """A fact whose rows all resolve their student and course, one row with no instructor found."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE enrollment_fact (student_key BIGINT, course_key BIGINT, instructor_key BIGINT)")
        con.execute("INSERT INTO enrollment_fact VALUES (1, 1, 1), (2, 1, NULL)")
    return DuckDBWarehouse(path=str(path))


def test_unchanged_dimensions_leave_the_fact_incremental(lake, warehouse):
    _batch(lake)
    changes = fact_changes(lake, warehouse, FACT, BATCH)
    assert changes is not None and (changes.base_version, changes.state_version) == ("v1", "v2")


def test_new_or_updated_students_and_courses_leave_the_fact_incremental(lake, warehouse):
    _batch(lake, changed={"students": 5, "courses": 2})
    assert fact_changes(lake, warehouse, FACT, BATCH) is not None


def test_new_instructors_reload_the_fact_when_a_fact_row_has_no_instructor_yet(lake, warehouse):
    _batch(lake, changed={"instructors": 1})
    assert fact_changes(lake, warehouse, FACT, BATCH) is None  # the new instructor may be the missing one
    with warehouse.connect() as con:
        con.execute("UPDATE enrollment_fact SET instructor_key = 3 WHERE instructor_key IS NULL")
    assert fact_changes(lake, warehouse, FACT, BATCH) is not None


@pytest.mark.parametrize("dataset", sorted(DIMENSIONS))
def test_a_removed_dimension_key_is_cleared_from_the_fact_rows_that_hold_it(lake, warehouse, dataset):
    _batch(lake, removed={dataset: 1})
    changes = fact_changes(lake, warehouse, FACT, BATCH)
    assert changes is not None and changes.dangling_references == (DIMENSIONS[dataset],)


def test_a_dimension_without_change_files_or_a_missing_fact_table_reloads_the_fact(lake, warehouse, tmp_path):
    _batch(lake, changed={"students": 1})
    assert fact_changes(lake, DuckDBWarehouse(path=str(tmp_path / "empty.duckdb")), FACT, BATCH) is None
    lake.remove(*removed_parts("courses", BATCH))  # e.g. a launched curate step that wrote none
    assert fact_changes(lake, warehouse, FACT, BATCH) is None
