"""The PostgreSQL warehouse (psycopg 3) on a real server, in a schema of its own per test run.

The whole pipeline runs with a postgresql:// warehouse; the same logical load (the run's curated files) then runs
on DuckDB and gives identical tables; loading the same data again changes nothing. The upsert semantics (keys kept,
new keys numbered, changed rows updated, missing keys deleted, new columns added, one transaction) are checked on
small files against both connectors.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrollment_platform.assets.deduped import curated_parts
from enrollment_platform.assets.redacted import restricted_path
from enrollment_platform.config import DimensionSpec, load_catalog, load_pii_policy
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.warehouse import DuckDBWarehouse, PostgresWarehouse, Warehouse, duckdb_path
from enrollment_platform.resources.warehouse.base import BatchChanges
from enrollment_platform.runner import run_pipeline
from enrollment_platform.settings import Settings
from enrollment_platform.transforms.sql import quote_ident

STAR_TABLES = ("student_dim", "course_dim", "instructor_dim", "enrollment_fact", "student_pii")
ALL_TABLES = {*STAR_TABLES, "dq_results"}


# --- helpers ----------------------------------------------------------------------------------------------------


@contextmanager
def fresh_schema(base_url: str) -> Iterator[str]:
    """A uniquely named schema (parallel workers and reruns never collide), dropped at the end: its URL."""
    schema = f"ep_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    try:
        yield base_url + ("&" if "?" in base_url else "?") + f"options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base_url, autocommit=True) as con:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def normalise(value):
    """One Python value per logical value, whichever driver returned it."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def snapshot(warehouse: Warehouse, tables) -> dict[str, tuple[list[str], list[tuple]]]:
    """Per table: column names in order, and the rows sorted."""
    result = {}
    for table in tables:
        rows = warehouse.query(f"SELECT * FROM {quote_ident(table)}")
        normalised = sorted((tuple(normalise(v) for v in row) for row in rows), key=repr)
        result[table] = ([name for name, _ in warehouse.columns(table)], normalised)
    return result


def replay(settings: Settings, run_id: str, warehouse: Warehouse) -> dict:
    """The warehouse loads of one run, from its lake, in the assets' order (dimensions before the fact)."""
    lake = LocalLake(root=settings.lake_uri)
    results = {}
    for spec in sorted(load_catalog().warehouse.values(), key=lambda s: bool(s.references)):
        load = warehouse.load_fact if spec.references else warehouse.load_dimension
        results[spec.table] = load(spec, lake.path(*curated_parts(spec.dataset)))
    for table, raw in load_pii_policy()["restricted"].items():
        spec = DimensionSpec(table, raw["dataset"], raw["key"], f"{table}_key")
        results[table] = warehouse.load_table(spec, lake.path(*restricted_path(table)))
    staged = lake.path("staging", "dq_results", f"{run_id}.parquet")
    results["dq_results"] = warehouse.append_results("dq_results", staged, run_id)
    return results


# --- the whole pipeline on PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["generated", "original"])
def pg_run(request, postgres_url, tmp_path_factory):
    """One pipeline run with a postgresql:// warehouse: (settings, summary, warehouse, the DuckDB run's settings)."""
    if request.param == "generated":
        raw, duckdb_run = request.getfixturevalue("generated_raw")[0], request.getfixturevalue("generated_run")
    else:
        raw, duckdb_run = request.getfixturevalue("original_raw"), request.getfixturevalue("original_run")
    with fresh_schema(postgres_url) as url:
        home = tmp_path_factory.mktemp(f"postgres_{request.param}")
        settings = Settings.from_env(environ={}, home=str(home), raw_uri=str(raw), warehouse_url=url)
        summary = run_pipeline(settings)
        assert summary.success, summary.failures
        yield settings, summary, PostgresWarehouse(url=url), duckdb_run[0]


@pytest.mark.postgres
@pytest.mark.slow
def test_the_pipeline_loads_every_table_into_postgres(pg_run):
    settings, summary, warehouse, _ = pg_run
    assert set(warehouse.tables()) == ALL_TABLES
    assert not Path(settings.home, "warehouse.duckdb").exists()
    fact_rows = summary.datasets["enrollments"]["rows_out"]
    assert summary.warehouse["enrollment_fact"]["rows"] == fact_rows
    joined = warehouse.query(
        "SELECT count(*) FROM enrollment_fact f JOIN student_dim s USING (student_key) "
        "JOIN course_dim c USING (course_key)"
    )
    assert joined == [(fact_rows,)]
    assert warehouse.query("SELECT count(*) FROM dq_results WHERE run_id = %s", [summary.run_id])[0][0] > 0


@pytest.mark.postgres
@pytest.mark.slow
def test_the_same_load_on_duckdb_gives_identical_tables(pg_run, tmp_path):
    settings, summary, warehouse, _ = pg_run
    duck = DuckDBWarehouse(path=str(tmp_path / "replay.duckdb"))
    replay(settings, summary.run_id, duck)
    assert set(duck.tables()) == ALL_TABLES
    assert snapshot(duck, sorted(ALL_TABLES)) == snapshot(warehouse, sorted(ALL_TABLES))


@pytest.mark.postgres
@pytest.mark.slow
def test_the_pipeline_on_duckdb_and_on_postgres_builds_the_same_star(pg_run):
    """Two whole runs over the same raw layer, one per warehouse: the same star tables (dq_results differ by run)."""
    _, _, warehouse, duckdb_settings = pg_run
    duck = DuckDBWarehouse(path=duckdb_path(duckdb_settings.warehouse_url))
    assert snapshot(duck, STAR_TABLES) == snapshot(warehouse, STAR_TABLES)


@pytest.mark.postgres
@pytest.mark.slow
def test_loading_the_same_curated_data_again_changes_nothing(pg_run):
    settings, summary, warehouse, _ = pg_run
    before = snapshot(warehouse, sorted(ALL_TABLES))
    results = replay(settings, summary.run_id, warehouse)
    for table in STAR_TABLES:
        assert (results[table].inserted, results[table].updated, results[table].deleted) == (0, 0, 0), table
    assert results["dq_results"] == len(before["dq_results"][1])  # this run's rows, replaced by the same rows
    assert snapshot(warehouse, sorted(ALL_TABLES)) == before


# --- upsert semantics, on both connectors -----------------------------------------------------------------------

STUDENTS = DimensionSpec("student_dim", "students", "student_id", "student_key")
ENROLLMENTS = DimensionSpec(
    "enrollment_fact", "enrollments", "enrollment_id", "enrollment_key", {"student_key": ("student_dim", "student_id")}
)
FLAGS = pa.list_(pa.string())


def write(path: Path, columns: dict[str, pa.Array]) -> str:
    pq.write_table(pa.table(columns), path, compression="snappy")
    return str(path)


def students_v1(folder: Path) -> str:
    return write(
        folder / "students_v1.parquet",
        {
            "student_id": pa.array(["s3", "s1", "s2"]),
            "name": pa.array(["Cy", "Al", "Bo"]),
            "birth_year": pa.array([2001, 2000, None], pa.int32()),
            "_source_file": pa.array(["a.csv"] * 3),
            "_source_row": pa.array([3, 1, 2], pa.int64()),
            "_flags": pa.array([["x"], ["a", "b"], []], FLAGS),
        },
    )


def students_v2(folder: Path) -> str:
    """s1 unchanged, s2 renamed, s3 gone, s4 new, and a new column `major`."""
    return write(
        folder / "students_v2.parquet",
        {
            "student_id": pa.array(["s1", "s2", "s4"]),
            "name": pa.array(["Al", "Bea", "Di"]),
            "birth_year": pa.array([2000, None, 1999], pa.int32()),
            "_source_file": pa.array(["a.csv", "a.csv", "b.csv"]),
            "_source_row": pa.array([1, 2, 1], pa.int64()),
            "_flags": pa.array([["a", "b"], [], None], FLAGS),
            "major": pa.array([None, "Math", "Art"]),
        },
    )


def enrollments(folder: Path) -> str:
    return write(
        folder / "enrollments.parquet",
        {
            "enrollment_id": pa.array(["e1", "e2"]),
            "student_id": pa.array(["s2", "s9"]),
            "marks": pa.array([81.5, 0.1 + 0.2]),
            "enrolled_on": pa.array([dt.date(2024, 9, 1), dt.date(2024, 2, 29)]),
            "_source_file": pa.array(["e.csv", "e.csv"]),
            "_source_row": pa.array([1, 2], pa.int64()),
            "_flags": pa.array([None, ["late"]], FLAGS),
        },
    )


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        yield DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
        return
    with fresh_schema(request.getfixturevalue("postgres_url")) as url:
        yield PostgresWarehouse(url=url)


def counts(result) -> tuple[int, int, int, int]:
    return result.rows, result.inserted, result.updated, result.deleted


def test_an_upsert_keeps_keys_numbers_new_ones_and_deletes_missing_ones(warehouse, tmp_path):
    assert counts(warehouse.load_dimension(STUDENTS, students_v1(tmp_path))) == (3, 3, 0, 0)
    assert warehouse.query("SELECT student_id, student_key, dq_flags FROM student_dim ORDER BY 1") == [
        ("s1", 1, "a; b"),
        ("s2", 2, ""),
        ("s3", 3, "x"),
    ]
    v2 = students_v2(tmp_path)
    assert counts(warehouse.load_dimension(STUDENTS, v2)) == (3, 1, 1, 1)
    assert warehouse.query("SELECT student_id, student_key, name, major, dq_flags FROM student_dim ORDER BY 1") == [
        ("s1", 1, "Al", None, "a; b"),
        ("s2", 2, "Bea", "Math", ""),
        ("s4", 4, "Di", "Art", None),
    ]
    assert [name for name, _ in warehouse.columns("student_dim")] == [
        "student_key",
        "student_id",
        "name",
        "birth_year",
        "source_file",
        "source_row",
        "dq_flags",
        "major",
    ]
    assert counts(warehouse.load_dimension(STUDENTS, v2)) == (3, 0, 0, 0)


def test_new_keys_are_numbered_in_bytewise_key_order(warehouse, tmp_path):
    """The same numbers whatever the server's collation (PostgreSQL sorts with COLLATE "C", like DuckDB)."""
    keys = ["b", "B", "a", "A", "_x", "é"]
    n = len(keys)
    path = write(
        tmp_path / "keys.parquet",
        {
            "student_id": pa.array(keys),
            "_source_file": pa.array(["k.csv"] * n),
            "_source_row": pa.array(range(n), pa.int64()),
            "_flags": pa.array([[]] * n, FLAGS),
        },
    )
    warehouse.load_dimension(STUDENTS, path)
    numbered = warehouse.query("SELECT student_key, student_id FROM student_dim")
    assert sorted(numbered) == [(1, "A"), (2, "B"), (3, "_x"), (4, "a"), (5, "b"), (6, "é")]


def test_a_fact_gets_the_dimension_keys(warehouse, tmp_path):
    warehouse.load_dimension(STUDENTS, students_v1(tmp_path))
    assert counts(warehouse.load_fact(ENROLLMENTS, enrollments(tmp_path))) == (2, 2, 0, 0)
    rows = warehouse.query(
        "SELECT enrollment_key, student_key, enrollment_id, marks, enrolled_on, source_row, dq_flags "
        "FROM enrollment_fact ORDER BY 1"
    )
    assert rows == [
        (1, 2, "e1", 81.5, dt.date(2024, 9, 1), 1, None),
        (2, None, "e2", 0.1 + 0.2, dt.date(2024, 2, 29), 2, "late"),
    ]
    assert "student_id" not in {name for name, _ in warehouse.columns("enrollment_fact")}


def test_a_failed_load_leaves_nothing_behind(warehouse, tmp_path):
    """The fact's dimension does not exist: the load fails and its CREATE TABLE is rolled back with it."""
    with pytest.raises(Exception, match="student_dim"):
        warehouse.load_fact(ENROLLMENTS, enrollments(tmp_path))
    assert "enrollment_fact" not in warehouse.tables()


def test_dq_results_replace_the_rows_of_their_run(warehouse, tmp_path):
    def results(name: str, run_id: str, rules: int) -> str:
        return write(
            tmp_path / name,
            {
                "run_id": pa.array([run_id] * rules),
                "rule": pa.array([f"rule {i}" for i in range(rules)]),
                "score": pa.array([1.0] * rules),
            },
        )

    assert warehouse.append_results("dq_results", results("a.parquet", "run-a", 3), "run-a") == 3
    assert warehouse.append_results("dq_results", results("b.parquet", "run-b", 2), "run-b") == 2
    assert warehouse.append_results("dq_results", results("a2.parquet", "run-a", 1), "run-a") == 1
    assert warehouse.query("SELECT run_id, count(*) FROM dq_results GROUP BY 1 ORDER BY 1") == [
        ("run-a", 1),
        ("run-b", 2),
    ]


# --- batch changes: a table in step with the state a batch started from takes only the batch ----------------------


def versioned(path: Path, columns: dict[str, pa.Array], version: str) -> str:
    """A curated state file whose footer names its version, as the curated step writes it."""
    pq.write_table(pa.table(columns).replace_schema_metadata({"state_version": version}), path)
    return str(path)


def with_lineage(values: dict[str, list], source_file: str) -> dict[str, pa.Array]:
    """Curated columns and the lineage every curated file carries."""
    n = len(next(iter(values.values())))
    return {name: pa.array(column) for name, column in values.items()} | {
        "_source_file": pa.array([source_file] * n),
        "_source_row": pa.array(range(n), pa.int64()),
        "_flags": pa.array([[]] * n, FLAGS),
    }


def student_columns(ids: list[str], names: list[str]) -> dict[str, pa.Array]:
    return with_lineage({"student_id": ids, "name": names}, "a.csv")


def batch_v1_to_v2(folder: Path, base: str = "v1", state_rows: int = 3) -> tuple[str, BatchChanges]:
    """v1 = s1 s2 s3; the batch renames s2, adds s4 and removes s3 (its newest version was quarantined)."""
    v2 = versioned(folder / "v2.parquet", student_columns(["s1", "s2", "s4"], ["Al", "Bea", "Di"]), "v2")
    rows = write(folder / "rows.parquet", student_columns(["s2", "s4"], ["Bea", "Di"]))
    removed = write(folder / "removed.parquet", {"student_id": pa.array(["s3"])})
    return v2, BatchChanges(rows, removed, base, "v2", state_rows)


def load_v1(warehouse: Warehouse, folder: Path) -> None:
    v1 = versioned(folder / "v1.parquet", student_columns(["s1", "s2", "s3"], ["Al", "Bo", "Cy"]), "v1")
    assert counts(warehouse.load_dimension(STUDENTS, v1)) == (3, 3, 0, 0)


def students_now(warehouse: Warehouse) -> list[tuple]:
    return warehouse.query("SELECT student_key, student_id, name FROM student_dim ORDER BY 1")


V2_ROWS = [(1, "s1", "Al"), (2, "s2", "Bea"), (4, "s4", "Di")]


def test_a_table_in_step_takes_only_the_batchs_rows_and_removed_keys(warehouse, tmp_path, monkeypatch):
    load_v1(warehouse, tmp_path)
    v2, changes = batch_v1_to_v2(tmp_path)
    whole_state = []
    original = type(warehouse)._upsert_state
    monkeypatch.setattr(type(warehouse), "_upsert_state", lambda *a: whole_state.append(a) or original(*a))
    assert counts(warehouse.load_dimension(STUDENTS, v2, changes)) == (3, 1, 1, 1)
    assert whole_state == []
    assert students_now(warehouse) == V2_ROWS
    assert warehouse.query("SELECT state_version FROM \"_load_state\" WHERE table_name = 'student_dim'") == [("v2",)]
    assert "_load_state" not in warehouse.tables()


@pytest.mark.parametrize("in_step", [True, False])
def test_a_column_added_by_hand_keeps_its_values_when_rows_change(warehouse, tmp_path, in_step):
    """Where the table has a column the loads do not know, changed rows are updated, not replaced: it keeps its
    values (DuckDB otherwise deletes and inserts changed rows again)."""
    load_v1(warehouse, tmp_path)
    with warehouse.session() as session:
        session.execute("ALTER TABLE student_dim ADD COLUMN advisor VARCHAR")
        session.execute("UPDATE student_dim SET advisor = 'Dr ' || student_id")
    v2, changes = batch_v1_to_v2(tmp_path)
    assert counts(warehouse.load_dimension(STUDENTS, v2, changes if in_step else None)) == (3, 1, 1, 1)
    assert warehouse.query("SELECT student_key, student_id, name, advisor FROM student_dim ORDER BY 1") == [
        (1, "s1", "Al", "Dr s1"),
        (2, "s2", "Bea", "Dr s2"),
        (4, "s4", "Di", None),
    ]


@pytest.mark.parametrize(
    "out_of_step",
    ["other base version", "rows deleted behind the pipeline's back", "never loaded"],
)
def test_a_table_out_of_step_is_loaded_from_the_whole_state(warehouse, tmp_path, out_of_step):
    """The batch's changes would leave the table wrong: the load rolls them back and takes the whole state."""
    if out_of_step != "never loaded":
        load_v1(warehouse, tmp_path)
    if out_of_step == "rows deleted behind the pipeline's back":
        with warehouse.session() as session:
            session.execute("DELETE FROM student_dim WHERE student_id = 's1'")
    v2, changes = batch_v1_to_v2(tmp_path, base="v0" if out_of_step == "other base version" else "v1")
    warehouse.load_dimension(STUDENTS, v2, changes)
    assert sorted((sid, name) for _, sid, name in students_now(warehouse)) == [(s, n) for _, s, n in V2_ROWS]
    assert warehouse.query("SELECT state_version FROM \"_load_state\" WHERE table_name = 'student_dim'") == [("v2",)]


@pytest.mark.parametrize("rows_agree", [True, False], ids=["as loaded", "rows deleted behind the pipeline's back"])
def test_a_table_already_holding_the_batchs_version_loads_nothing(warehouse, tmp_path, monkeypatch, rows_agree):
    """A re-run of a batch whose run stopped after this load finds the table holding the version the batch leads
    to: nothing is loaded, unless its rows no longer agree with the state, which then reloads it whole."""
    load_v1(warehouse, tmp_path)
    v2, changes = batch_v1_to_v2(tmp_path)
    assert warehouse.load_dimension(STUDENTS, v2, changes).loaded_from == "batch"
    if not rows_agree:
        with warehouse.session() as session:
            session.execute("DELETE FROM student_dim WHERE student_id = 's1'")
    whole_state = []
    original = type(warehouse)._upsert_state
    monkeypatch.setattr(type(warehouse), "_upsert_state", lambda *a: whole_state.append(a) or original(*a))
    again = warehouse.load_dimension(STUDENTS, v2, changes)
    if rows_agree:
        assert (again.loaded_from, counts(again), whole_state) == ("held", (3, 0, 0, 0), [])
    else:
        assert (again.loaded_from, len(whole_state)) == ("state", 1)
    assert sorted((sid, name) for _, sid, name in students_now(warehouse)) == [(s, n) for _, s, n in V2_ROWS]


def enrollment_columns(ids: list[str], students: list[str]) -> dict[str, pa.Array]:
    return with_lineage({"enrollment_id": ids, "student_id": students}, "e.csv")


def test_a_fact_in_step_clears_the_keys_its_dimension_lost(warehouse, tmp_path):
    """student_dim loses s3 in the batch; the fact takes its batch (e3 of s4) and e2, of s3, loses its key."""
    load_v1(warehouse, tmp_path)
    fact_v1 = versioned(tmp_path / "e1.parquet", enrollment_columns(["e1", "e2"], ["s2", "s3"]), "e-v1")
    assert counts(warehouse.load_fact(ENROLLMENTS, fact_v1)) == (2, 2, 0, 0)
    v2, students = batch_v1_to_v2(tmp_path)
    warehouse.load_dimension(STUDENTS, v2, students)
    fact_v2 = versioned(tmp_path / "e2.parquet", enrollment_columns(["e1", "e2", "e3"], ["s2", "s3", "s4"]), "e-v2")
    rows = write(tmp_path / "e_rows.parquet", enrollment_columns(["e3"], ["s4"]))
    removed = write(tmp_path / "e_removed.parquet", {"enrollment_id": pa.array([], pa.string())})
    changes = BatchChanges(rows, removed, "e-v1", "e-v2", 3, dangling_references=("student_key",))
    result = warehouse.load_fact(ENROLLMENTS, fact_v2, changes)
    assert (result.loaded_from, counts(result)) == ("batch", (3, 1, 1, 0))
    assert warehouse.query("SELECT enrollment_id, student_key FROM enrollment_fact ORDER BY 1") == [
        ("e1", 2),
        ("e2", None),
        ("e3", 4),
    ]


STUDENT_ROWS = st.dictionaries(
    st.sampled_from(["s1", "s2", "s3", "s4"]),
    st.tuples(
        st.sampled_from([None, "", "Al", "al"]),
        st.sampled_from([None, 0, 2000]),
        st.sampled_from([None, [], ["a"], ["a", "b"], ["b", "a"]]),
    ),
)


def student_rows(folder: Path, name: str, rows: dict[str, tuple]) -> str:
    ids = sorted(rows)
    return write(
        folder / name,
        {
            "student_id": pa.array(ids, pa.string()),
            "name": pa.array([rows[i][0] for i in ids], pa.string()),
            "birth_year": pa.array([rows[i][1] for i in ids], pa.int32()),
            "_source_file": pa.array(["a.csv"] * len(ids), pa.string()),
            "_source_row": pa.array([1] * len(ids), pa.int64()),
            "_flags": pa.array([rows[i][2] for i in ids], FLAGS),
        },
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=STUDENT_ROWS, after=STUDENT_ROWS)
def test_the_embedded_warehouse_finds_exactly_the_changed_rows(tmp_path_factory, before, after):
    """DuckDB compares a hash of each row's values with the table's: the counts and the rows are those of a
    comparison value by value (NULL is not '', [] is not NULL, the order of flags matters)."""
    folder = tmp_path_factory.mktemp("rows")
    warehouse = DuckDBWarehouse(path=str(folder / "warehouse.duckdb"))
    warehouse.load_dimension(STUDENTS, student_rows(folder, "before.parquet", before))
    result = warehouse.load_dimension(STUDENTS, student_rows(folder, "after.parquet", after))
    changed = [k for k in after.keys() & before.keys() if _as_loaded(before[k]) != _as_loaded(after[k])]
    assert (result.inserted, result.updated, result.deleted) == (
        len(after.keys() - before.keys()),
        len(changed),
        len(before.keys() - after.keys()),
    )
    table = warehouse.query("SELECT student_id, name, birth_year, dq_flags FROM student_dim ORDER BY 1")
    assert table == [(k, *_as_loaded(after[k])) for k in sorted(after)]


def _as_loaded(row: tuple) -> tuple:
    """A row as the table holds it: the flags list joined into text."""
    name, birth_year, flags = row
    return name, birth_year, None if flags is None else "; ".join(flags)
