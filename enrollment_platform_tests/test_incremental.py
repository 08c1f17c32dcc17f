"""Incremental, partitioned and crash-safe runs converge to the result of one clean run."""

import csv
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from enrollment_platform.assets import warehouse as warehouse_assets
from enrollment_platform.assets.common import metadata_values
from enrollment_platform.assets.warehouse import BATCH_LOAD, HELD
from enrollment_platform.generator import generate_raw_layer
from enrollment_platform.resources.warehouse import DuckDBWarehouse, duckdb_path
from enrollment_platform.runner import execute_batch, run_pipeline, summarize
from enrollment_platform_tests.conftest import REPO, local_settings

pytestmark = pytest.mark.slow

DAY_ONE, DAY_TWO, DAY_THREE = "2024-09-01", "2024-09-02", "2024-09-03"
STAR = ("student_dim", "course_dim", "instructor_dim", "enrollment_fact", "student_pii")
# what an enrollment row means, with dimension keys replaced by the natural ids they stand for
FACT_BY_NATURAL_KEYS = """
    SELECT f.* EXCLUDE (enrollment_key, student_key, course_key, instructor_key, source_file),
        s.student_id, c.course_id, i.instructor_id
    FROM enrollment_fact f JOIN student_dim s USING (student_key) JOIN course_dim c USING (course_key)
    LEFT JOIN instructor_dim i USING (instructor_key)
"""


@pytest.fixture(scope="module")
def raw_flat(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("flat") / "raw"
    generate_raw_layer(raw, 1200, seed=21)
    return raw


def by_day(raw_flat: Path, target: Path) -> Path:
    """The same files under ingest_date= folders: dimensions and the first enrollment file on day one."""
    day_two = {"enrollments_0001.csv", "enrollments_late.parquet"}
    for file in raw_flat.glob("*/*.*"):
        day = DAY_TWO if file.name in day_two else DAY_ONE
        destination = target / file.parent.name / f"ingest_date={day}" / file.name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, destination)
    return target


def contents(settings, exact: bool = False) -> dict[str, list]:
    """Warehouse tables as sorted rows; unless exact, without surrogate keys and file lineage."""
    with duckdb.connect(duckdb_path(settings.warehouse_url), read_only=True) as con:
        if exact:
            return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in STAR}
        tables = {}
        for table in ("student_dim", "course_dim", "instructor_dim"):
            key = table.replace("_dim", "_key")
            query = f"SELECT * EXCLUDE ({key}, source_file) FROM {table}"
            tables[table] = sorted(con.execute(query).fetchall(), key=repr)
        tables["enrollment_fact"] = sorted(con.execute(FACT_BY_NATURAL_KEYS).fetchall(), key=repr)
        return tables


def test_two_day_partitions_equal_one_unpartitioned_run(raw_flat, tmp_path):
    flat = local_settings(tmp_path / "flat", raw_flat)
    assert run_pipeline(flat).success
    days = local_settings(tmp_path / "days", by_day(raw_flat, tmp_path / "raw_days"))
    for day in (DAY_ONE, DAY_TWO):
        result = execute_batch(days, day, day)
        assert result.success
        summary = summarize(result, days, days.raw_uri)
        assert all(counts["reconciled"] for counts in summary.datasets.values())
    assert contents(days) == contents(flat)
    # day two brought enrollments only: every table took just the batch's changes, not the whole state
    loads = {
        m.asset_key.path[-1]: m.metadata
        for m in result.asset_materializations_for_node("warehouse__enrollment_fact")
        + result.asset_materializations_for_node("warehouse__student_dim")
    }
    assert {t: m["loaded_from"].value for t, m in loads.items()} == dict.fromkeys(loads, "the batch's changes")
    day_two = summary.datasets["enrollments"]
    assert loads["enrollment_fact"]["inserted"].value + loads["enrollment_fact"]["updated"].value <= day_two["rows_out"]
    assert loads["enrollment_fact"]["inserted"].value > 0 and loads["student_dim"]["inserted"].value == 0
    # and the leak scans covered the batch's rows: day one's versions were scanned clean, in the lake and in the
    # star tables loaded from them (dq_results is not loaded from a curated state: scanned whole)
    scans = {
        e.asset_key.to_user_string(): e.metadata["scanned"].value
        for e in result.get_asset_check_evaluations()
        if e.check_name == "no_pii_leak"
    }
    batch_scans = {name for name, scanned in scans.items() if "the batch's new and changed" in scanned}
    curated = {f"curated/{d}" for d in ("students", "courses", "instructors", "enrollments")}
    star = {f"warehouse/{t}" for t in ("student_dim", "course_dim", "instructor_dim", "enrollment_fact")}
    assert batch_scans == curated | star, scans


def test_a_two_day_backfill_in_one_run_equals_one_unpartitioned_run(raw_flat, tmp_path):
    flat = local_settings(tmp_path / "flat", raw_flat)
    assert run_pipeline(flat).success
    days = local_settings(tmp_path / "days", by_day(raw_flat, tmp_path / "raw_days"))
    assert execute_batch(days, DAY_ONE, DAY_TWO).success
    assert contents(days) == contents(flat)


def test_unchanged_files_are_not_read_again_and_a_new_file_is_the_only_one_processed(raw_flat, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(raw_flat, raw)
    settings = local_settings(tmp_path / "home", raw)
    assert run_pipeline(settings).success
    assert run_pipeline(settings).nothing_new
    (raw / "enrollments" / "enrollments_0000.csv").touch()  # touched, same bytes: still processed
    assert run_pipeline(settings).nothing_new
    header = (raw / "enrollments" / "enrollments_0000.csv").read_text().splitlines()[0]
    students = duckdb.execute(
        f"SELECT student_id FROM read_csv('{raw}/students/*.csv', all_varchar=true) LIMIT 2"
    ).fetchall()
    enrollments = [(f"9{number:06d}", student) for number, (student,) in enumerate(students)]
    write_enrollments(raw / "enrollments" / "enrollments_new.csv", header, enrollments, "2024-10-01", "80", "90")
    summary = run_pipeline(settings)
    assert summary.success and not summary.nothing_new
    assert {d: c["files"] for d, c in summary.datasets.items()} == {
        "students": 0,
        "courses": 0,
        "instructors": 0,
        "enrollments": 1,
    }
    assert summary.datasets["enrollments"]["rows_in"] == 2 and summary.datasets["enrollments"]["rows_out"] == 2
    with duckdb.connect(duckdb_path(settings.warehouse_url), read_only=True) as con:
        found = con.execute(
            "SELECT count(*) FROM enrollment_fact WHERE enrollment_id LIKE '9%' AND length(enrollment_id) = 7"
        ).fetchone()[0]
    assert found == 2


@pytest.fixture(scope="module")
def clean_result(raw_flat, tmp_path_factory):
    settings = local_settings(tmp_path_factory.mktemp("clean"), raw_flat)
    assert run_pipeline(settings).success
    return contents(settings, exact=True)


@pytest.mark.parametrize(
    "point", ["during_curated_write", "before_warehouse_load", "during_warehouse_load", "after_warehouse_load"]
)
def test_a_killed_run_converges_on_rerun(raw_flat, clean_result, tmp_path, point):
    home = tmp_path / "home"
    killed = subprocess.run(
        [sys.executable, "-m", "enrollment_platform_tests.support.crash_run", str(home), str(raw_flat), point],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    settings = local_settings(home, raw_flat)
    summary = run_pipeline(settings)
    assert summary.success and not summary.nothing_new, summary.failures
    assert contents(settings, exact=True) == clean_result
    assert run_pipeline(settings).nothing_new
    assert list(Path(settings.lake_uri, "curated").rglob("*.tmp")) == []


def test_files_dated_far_apart_run_as_separate_batches(original_raw, tmp_path):
    """A stray old file is its own batch (one run per run of consecutive dates), oldest first."""
    import os

    raw = tmp_path / "raw"
    shutil.copytree(original_raw, raw)
    old = (raw / "courses" / "courses.csv").stat().st_mtime - 60 * 86400
    os.utime(raw / "courses" / "courses.csv", (old, old))
    summary = run_pipeline(local_settings(tmp_path / "home", raw))
    assert summary.success and len(summary.run_ids) == 2
    counts = {d: (c["rows_in"], c["rows_out"]) for d, c in summary.datasets.items()}
    assert counts == {"courses": (25, 25), "students": (55, 55), "instructors": (25, 25), "enrollments": (140, 125)}


NEW_STUDENTS = [
    "990001,Ada,Lovelace,1990-01-01,F,ada.lovelace@student.example.edu,+1 312 555 0199,536-22-8726,1 Main St,"
    "Chicago,IL,60601,Mathematics,,2024-12-01T10:00:00",
    "990002,Alan,Turing,1991-06-23,M,alan.turing@student.example.edu,+1 312 555 0142,536-22-8727,2 Main St,"
    "Chicago,IL,60601,Computer Science,,2024-12-01T10:00:00",
]


def add_new_students_who_enroll(raw_flat: Path, students: Path, enrollments: Path) -> None:
    """Two students who were not there before, and one enrollment of each."""
    students.parent.mkdir(parents=True, exist_ok=True)
    header = next((raw_flat / "students").glob("*.csv")).read_text().splitlines()[0]
    students.write_text("\n".join([header, *NEW_STUDENTS]) + "\n")
    header = (raw_flat / "enrollments" / "enrollments_0000.csv").read_text().splitlines()[0]
    new = [(f"8{number:06d}", line.split(",")[0]) for number, line in enumerate(NEW_STUDENTS)]
    write_enrollments(enrollments, header, new, "2024-12-02", "75", "95")


def write_enrollments(target: Path, header: str, enrollments: list[tuple[str, str]], day: str, *scores: str) -> None:
    """A CSV of enrollments (id, student) in course 101 on `day`, with marks and attendance; other columns empty."""
    columns, (marks, attendance), rows = header.split(","), scores, []
    for enrollment, student in enrollments:
        values = dict.fromkeys(columns, "") | {
            "enrollment_id": enrollment,
            "student_id": student,
            "course_id": "101",
            "enrollment_date": day,
            "marks": marks,
            "attendance_percentage": attendance,
        }
        rows.append(",".join(values[c] for c in columns))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join([header, *rows]) + "\n")


def test_new_students_enrolling_on_day_two_leave_the_fact_incremental(raw_flat, tmp_path):
    flat_raw = tmp_path / "raw_flat"
    shutil.copytree(raw_flat, flat_raw)
    add_new_students_who_enroll(raw_flat, flat_raw / "students" / "new.csv", flat_raw / "enrollments" / "new.csv")
    flat = local_settings(tmp_path / "flat", flat_raw)
    assert run_pipeline(flat).success
    days_raw = by_day(raw_flat, tmp_path / "raw_days")
    day_two = [days_raw / dataset / f"ingest_date={DAY_TWO}" / "new.csv" for dataset in ("students", "enrollments")]
    add_new_students_who_enroll(raw_flat, *day_two)
    days = local_settings(tmp_path / "days", days_raw)
    for day in (DAY_ONE, DAY_TWO):
        result = execute_batch(days, day, day)
        assert result.success
    summary = summarize(result, days, days.raw_uri)
    assert summary.datasets["students"]["rows_out"] == 2
    assert contents(days) == contents(flat)
    fact = result.asset_materializations_for_node("warehouse__enrollment_fact")[0].metadata
    student_dim = result.asset_materializations_for_node("warehouse__student_dim")[0].metadata
    assert student_dim["inserted"].value == 2  # the dimension changed ...
    assert fact["loaded_from"].value == "the batch's changes"  # ... and the fact still took only the batch
    assert fact["inserted"].value > 2


def test_a_rerun_after_the_fact_failed_loads_nothing_again_and_only_the_batch_into_the_fact(
    raw_flat, tmp_path, monkeypatch
):
    """Day two's fact load fails after the dimensions took the batch. The re-run finds them holding the batch's
    version and loads nothing into them, the fact takes only the batch, and the tables end as a clean run's."""
    raw = by_day(raw_flat, tmp_path / "raw_days")
    day_two = [raw / dataset / f"ingest_date={DAY_TWO}" / "new.csv" for dataset in ("students", "enrollments")]
    add_new_students_who_enroll(raw_flat, *day_two)
    days, clean = local_settings(tmp_path / "days", raw), local_settings(tmp_path / "clean", raw)
    assert execute_batch(days, DAY_ONE, DAY_ONE).success
    with monkeypatch.context() as patched:
        patched.setattr(DuckDBWarehouse, "load_fact", fail_to_load)
        failed = execute_batch(days, DAY_TWO, DAY_TWO)
    assert not failed.success
    assert failed.asset_materializations_for_node("warehouse__student_dim")[0].metadata["inserted"].value == 2
    rerun = execute_batch(days, DAY_TWO, DAY_TWO)
    assert rerun.success
    loads = {
        node: metadata_values(rerun.asset_materializations_for_node(f"warehouse__{node}")[0].metadata)
        for node in ("student_dim", "course_dim", "student_pii", "enrollment_fact")
    }
    for table in ("student_dim", "student_pii"):  # day two changed these ...
        assert (loads[table]["loaded_from"], loads[table]["inserted"]) == (HELD, 0), table
    assert (loads["course_dim"]["loaded_from"], loads["course_dim"]["inserted"]) == (BATCH_LOAD, 0)  # ... not this
    assert loads["student_dim"]["batch_inserted"] == 2
    assert loads["student_dim"]["batch_loaded_by_run"] == failed.run_id
    assert loads["enrollment_fact"]["loaded_from"] == BATCH_LOAD
    for day in (DAY_ONE, DAY_TWO):
        assert execute_batch(clean, day, day).success
    assert contents(days, exact=True) == contents(clean, exact=True)


def fail_to_load(*args, **kwargs):
    raise RuntimeError("the warehouse went away during the fact load")


def remove_a_student_who_enrolled_on_day_one(raw: Path) -> str:
    """Day two sends a newer version of a day-one student that fails validation (a date of birth that is not a
    date): the newest version is in quarantine, so the student leaves the curated state and student_dim."""
    enrollments = raw / "enrollments" / f"ingest_date={DAY_ONE}"
    students = raw / "students" / f"ingest_date={DAY_ONE}"
    student, row = duckdb.execute(
        f"""SELECT e.student_id, to_json(s) FROM read_csv('{enrollments}/*.csv', all_varchar=true) e
            JOIN read_csv('{students}/*.csv', all_varchar=true, hive_partitioning=false) s USING (student_id)
            WHERE regexp_full_match(e.student_id, '[0-9]+') ORDER BY e.student_id LIMIT 1"""
    ).fetchone()
    values = json.loads(row) | {"student_id": student, "date_of_birth": "not a date", "last_modified": "2030-01-01"}
    write_row(raw / "students" / f"ingest_date={DAY_TWO}" / "removal.csv", values)
    return student


def write_row(target: Path, values: dict[str, str | None]) -> None:
    """A CSV file of one row (a header and its values, quoted where they need it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(values)
        writer.writerow(value or "" for value in values.values())


def update_a_student_on_day_three(raw: Path, removed: str) -> None:
    """Day three updates one other student (a new major): the dimension changes, no key is added or removed."""
    students = raw / "students" / f"ingest_date={DAY_ONE}"
    row = duckdb.execute(
        f"""SELECT to_json(s) FROM read_csv('{students}/*.csv', all_varchar=true, hive_partitioning=false) s
            WHERE regexp_full_match(student_id, '[0-9]+') AND student_id <> '{removed}' ORDER BY student_id LIMIT 1"""
    ).fetchone()[0]
    values = json.loads(row) | {"major": "Astronomy", "last_modified": "2030-01-02"}
    write_row(raw / "students" / f"ingest_date={DAY_THREE}" / "update.csv", values)


def test_a_student_removed_then_others_updated_and_added_leave_the_fact_as_a_whole_reload_would(
    raw_flat, tmp_path, monkeypatch
):
    raw = by_day(raw_flat, tmp_path / "raw_days")
    update_a_student_on_day_three(raw, remove_a_student_who_enrolled_on_day_one(raw))
    day_three = [raw / dataset / f"ingest_date={DAY_THREE}" / "new.csv" for dataset in ("students", "enrollments")]
    add_new_students_who_enroll(raw_flat, *day_three)
    incremental, whole = local_settings(tmp_path / "incremental", raw), local_settings(tmp_path / "whole", raw)
    loads = {}
    for day in (DAY_ONE, DAY_TWO, DAY_THREE):
        result = execute_batch(incremental, day, day)
        assert result.success
        loads[day] = {
            node: result.asset_materializations_for_node(node)[0].metadata
            for node in ("warehouse__enrollment_fact", "warehouse__student_dim")
        }
    assert loads[DAY_TWO]["warehouse__student_dim"]["deleted"].value == 1
    three = loads[DAY_THREE]["warehouse__student_dim"]
    assert (three["inserted"].value, three["updated"].value) == (2, 1)
    # the removal left NULL keys; neither the update nor the new students (no earlier enrollment names them)
    # can resolve one, so the fact stays incremental
    for day in (DAY_TWO, DAY_THREE):
        assert loads[day]["warehouse__enrollment_fact"]["loaded_from"].value == "the batch's changes", day
    with monkeypatch.context() as patched:
        patched.setattr(warehouse_assets, "fact_changes", lambda *args: None)  # the whole state, every time
        for day in (DAY_ONE, DAY_TWO, DAY_THREE):
            assert execute_batch(whole, day, day).success
    assert contents(incremental, exact=True) == contents(whole, exact=True)
    with duckdb.connect(duckdb_path(incremental.warehouse_url), read_only=True) as con:
        cleared = con.execute("SELECT count(*) FROM enrollment_fact WHERE student_key IS NULL").fetchone()[0]
    assert cleared > 0 and loads[DAY_TWO]["warehouse__enrollment_fact"]["updated"].value >= cleared
