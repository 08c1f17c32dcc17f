"""When the enrollment fact may take only its batch's changes: only when no other fact row can change."""

from __future__ import annotations

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enrollment_platform.assets.curated import changes_parts, removed_parts
from enrollment_platform.assets.deduped import curated_parts
from enrollment_platform.assets.warehouse import BATCH_LOAD, HELD, DimensionLoad, fact_changes
from enrollment_platform.config import load_catalog
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.warehouse.embedded import DuckDBWarehouse

BATCH = "2024-09-02"
FACT = load_catalog().warehouse["enrollment_fact"]
KEYS = ("student_key", "course_key", "instructor_key")
UNCHANGED = DimensionLoad(from_batch=True, inserted=0, deleted=0)


def _write(lake: LocalLake, parts: list[str], rows: dict[str, list], footer: dict[str, str]) -> None:
    table = pa.table({name: pa.array(values, pa.string()) for name, values in rows.items()})
    pq.write_table(table.replace_schema_metadata(footer), lake.path(*parts))


def loads(**changed: DimensionLoad) -> dict[str, DimensionLoad]:
    return {key: changed.get(key, UNCHANGED) for key in KEYS}


@pytest.fixture
def lake(tmp_path) -> LocalLake:
    """The enrollments' state v2 (e1's instructor i9 is unknown) and the batch v1 -> v2 that brought e0."""
    lake = LocalLake(root=str(tmp_path / "lake"))
    footer = {"base_version": "v1", "state_version": "v2", "state_rows": "3"}
    state = {"enrollment_id": ["e0", "e1", "e2"], "instructor_id": ["i1", "i9", "i1"]}
    _write(lake, curated_parts("enrollments"), state, {"state_version": "v2"})
    _write(lake, changes_parts("enrollments", BATCH), {"enrollment_id": ["e0"], "instructor_id": ["i1"]}, footer)
    _write(lake, removed_parts("enrollments", BATCH), {"enrollment_id": []}, footer)
    return lake


@pytest.fixture
def warehouse(tmp_path) -> DuckDBWarehouse:
    """A fact whose rows all resolve their student and course; e1 has no instructor (NULL key). The instructor
    dimension just gained i3 (key 3, the largest)."""
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE enrollment_fact (student_key BIGINT, course_key BIGINT, instructor_key BIGINT)")
        con.execute("INSERT INTO enrollment_fact VALUES (1, 1, 1), (2, 1, NULL), (3, 1, 1)")
        con.execute("CREATE TABLE instructor_dim (instructor_key BIGINT, instructor_id VARCHAR)")
        con.execute("INSERT INTO instructor_dim VALUES (1, 'i1'), (3, 'i3')")
    return DuckDBWarehouse(path=str(path))


def test_unchanged_dimensions_leave_the_fact_incremental(lake, warehouse):
    changes = fact_changes(lake, warehouse, FACT, BATCH, loads())
    assert changes is not None and (changes.base_version, changes.state_version) == ("v1", "v2")
    assert changes.dangling_references == ()


def test_new_or_updated_students_and_courses_leave_the_fact_incremental(lake, warehouse):
    grown = DimensionLoad(from_batch=True, inserted=5, deleted=0)
    assert fact_changes(lake, warehouse, FACT, BATCH, loads(student_key=grown, course_key=grown)) is not None


def test_a_new_instructor_reloads_the_fact_only_if_an_earlier_enrollment_names_it(lake, warehouse):
    new = loads(instructor_key=DimensionLoad(from_batch=True, inserted=1, deleted=0))
    assert fact_changes(lake, warehouse, FACT, BATCH, new) is not None  # i3: no enrollment outside the batch names it
    with warehouse.connect() as con:
        con.execute("UPDATE instructor_dim SET instructor_id = 'i9' WHERE instructor_key = 3")
    assert fact_changes(lake, warehouse, FACT, BATCH, new) is None  # i9 resolves e1's NULL key
    assert fact_changes(lake, warehouse, FACT, BATCH, loads()) is not None  # no new instructor: nothing resolves
    with warehouse.connect() as con:
        con.execute("UPDATE enrollment_fact SET instructor_key = 3 WHERE instructor_key IS NULL")
    assert fact_changes(lake, warehouse, FACT, BATCH, new) is not None  # no NULL key left to resolve


@pytest.mark.parametrize("key_column", KEYS)
def test_a_deleted_dimension_key_is_cleared_from_the_fact_rows_that_hold_it(lake, warehouse, key_column):
    deleted = DimensionLoad(from_batch=True, inserted=0, deleted=1)
    changes = fact_changes(lake, warehouse, FACT, BATCH, loads(**{key_column: deleted}))
    assert changes is not None and changes.dangling_references == (key_column,)


def test_a_dimension_loaded_from_its_whole_state_or_not_in_this_run_reloads_the_fact(lake, warehouse):
    whole = DimensionLoad(from_batch=False, inserted=0, deleted=0)  # its keys may have changed beyond the batch
    assert fact_changes(lake, warehouse, FACT, BATCH, loads(course_key=whole)) is None
    assert fact_changes(lake, warehouse, FACT, BATCH, None) is None


def test_a_missing_fact_table_reloads_the_fact(lake, tmp_path):
    empty = DuckDBWarehouse(path=str(tmp_path / "empty.duckdb"))
    grown = loads(student_key=DimensionLoad(from_batch=True, inserted=1, deleted=0))
    assert fact_changes(lake, empty, FACT, BATCH, grown) is None


def test_a_dimension_load_reads_its_metadata():
    metadata = {
        "loaded_from": dg.MetadataValue.text(BATCH_LOAD),
        "inserted": dg.MetadataValue.int(2),
        "deleted": dg.MetadataValue.int(1),
    }
    assert DimensionLoad.of(metadata) == DimensionLoad(from_batch=True, inserted=2, deleted=1)
    assert DimensionLoad.of({"rows": dg.MetadataValue.int(0), "note": "no curated data yet"}).from_batch is False


def test_a_dimension_that_already_held_its_batch_reads_as_the_load_that_brought_it():
    """A re-run finds the dimension holding the batch's version: the fact goes by the earlier batch load's figures
    when they were found, else takes the whole state."""
    held = {"loaded_from": dg.MetadataValue.text(HELD), "inserted": dg.MetadataValue.int(0)}
    found = held | {"batch_inserted": dg.MetadataValue.int(2), "batch_deleted": dg.MetadataValue.int(1)}
    assert DimensionLoad.of(found) == DimensionLoad(from_batch=True, inserted=2, deleted=1)
    assert DimensionLoad.of(held).from_batch is False
