"""Merging a batch into a curated state file: a re-run of a batch the state took already keeps the state's
version (so warehouse tables that took the batch stay in step); a batch whose rows differ is merged again."""

from pathlib import Path

import duckdb

from enrollment_platform.assets.common import write_query
from enrollment_platform.assets.curated import merge_into_state, state_version
from enrollment_platform.assets.redacted import rows_version
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.lake import LocalLake

STATE = ["curated", "students", "students.parquet"]


def batch_file(lake: LocalLake, rows: list[tuple[str, str]]) -> str:
    """A redacted batch file, written anew (a new rows version) as every run of the redact step writes it."""
    values = ", ".join(f"('{key}', '{name}')" for key, name in rows)
    parts = ["staging", "redacted", "students", "batch.parquet"]
    write_query(DuckDBEngine(), lake, f"SELECT * FROM (VALUES {values}) t(student_id, name)", *parts, kv=rows_version())
    return lake.path(*parts)


def merge(
    lake: LocalLake, rows: list[tuple[str, str]], batch: str, quarantined: tuple[str, ...] = ()
) -> tuple[int, int]:
    """Merge the batch's kept `rows`; the keys whose newest version was `quarantined` are winners too."""
    path = batch_file(lake, rows)
    keys = " UNION ALL ".join(f"SELECT '{key}'" for key in quarantined)
    winners = f"(SELECT student_id AS k FROM read_parquet('{path}'){' UNION ALL ' + keys if keys else ''})"
    return merge_into_state(DuckDBEngine(), lake, STATE, path, winners, "student_id", "students", batch)


def state_rows(lake: LocalLake) -> list[tuple]:
    return duckdb.execute("SELECT * FROM read_parquet(?) ORDER BY 1", [lake.path(*STATE)]).fetchall()


def test_a_batch_the_state_took_already_leaves_it_as_it_was(tmp_path: Path):
    lake = LocalLake(root=str(tmp_path))
    assert merge(lake, [("s1", "Al"), ("s2", "Bo")], "b1") == (2, 0)
    assert merge(lake, [("s2", "Bea"), ("s3", "Cy")], "b2") == (3, 1)
    version = state_version(lake.path(*STATE))
    assert merge(lake, [("s3", "Cy"), ("s2", "Bea")], "b2") == (3, 1)  # the re-run: the same rows, written anew
    assert state_version(lake.path(*STATE)) == version
    assert state_rows(lake) == [("s1", "Al"), ("s2", "Bea"), ("s3", "Cy")]


def test_a_rerun_whose_rows_differ_is_merged_again(tmp_path: Path):
    lake = LocalLake(root=str(tmp_path))
    merge(lake, [("s1", "Al"), ("s2", "Bo")], "b1")
    merge(lake, [("s2", "Bea"), ("s3", "Cy")], "b2")
    version = state_version(lake.path(*STATE))
    merge(lake, [("s2", "Bea"), ("s3", "Cyd")], "b2")  # e.g. a rule changed between the runs
    assert state_version(lake.path(*STATE)) != version
    assert state_rows(lake) == [("s1", "Al"), ("s2", "Bea"), ("s3", "Cyd")]
    merge(lake, [("s2", "Bea")], "b2", quarantined=("s3",))  # s3's newest version now fails a rule: removed
    assert state_rows(lake) == [("s1", "Al"), ("s2", "Bea")]


def test_a_rerun_that_removes_other_keys_is_merged_again(tmp_path: Path):
    lake = LocalLake(root=str(tmp_path))
    merge(lake, [("s1", "Al"), ("s2", "Bo")], "b1")
    merge(lake, [("s2", "Bea")], "b2", quarantined=("s1",))
    version = state_version(lake.path(*STATE))
    merge(lake, [("s2", "Bea")], "b2")  # the same kept rows, but no key removed this time
    assert state_version(lake.path(*STATE)) != version
