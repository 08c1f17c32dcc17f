"""Curated health figures are computed once per state version: an unchanged state is not read again."""

import duckdb

from enrollment_platform.quality.asset_checks import by_state_version, near_duplicate_groups
from enrollment_platform.resources.lake import LocalLake


def write_state(lake: LocalLake, rows: list[tuple[str, str, str]], version: str | None) -> None:
    path = lake.path("curated", "instructors", "instructors.parquet")
    footer = f", KV_METADATA {{state_version: '{version}'}}" if version else ""
    values = ", ".join(f"('{i}', '{f}', '{last}')" for i, f, last in rows)
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT * FROM (VALUES {values}) v(instructor_id, first_name, last_name)) TO '{path}' "
            f"(FORMAT parquet{footer})"
        )


def test_a_figure_is_computed_once_per_state_version_and_again_for_a_new_one(tmp_path):
    lake = LocalLake(root=str(tmp_path))
    (tmp_path / "curated" / "instructors").mkdir(parents=True)
    columns = ["first_name", "last_name"]
    calls = []

    def compute() -> dict:
        calls.append(1)
        return near_duplicate_groups(lake, "instructors", columns)

    write_state(lake, [("1", "Ann", "Lee"), ("2", "ann ", "LEE"), ("3", "Bo", "Li")], "v1")
    first = by_state_version(lake, "instructors", "near", compute)
    assert first == ({"groups": 1, "sample_id_groups": [["1", "2"]]}, "v1")
    assert by_state_version(lake, "instructors", "near", compute) == first
    assert len(calls) == 1  # the same version: the kept figure

    write_state(lake, [("1", "Ann", "Lee"), ("3", "Bo", "Li")], "v2")
    assert by_state_version(lake, "instructors", "near", compute) == ({"groups": 0, "sample_id_groups": []}, "v2")
    assert len(calls) == 2

    write_state(lake, [("1", "Ann", "Lee"), ("2", "Ann", "Lee")], None)  # e.g. written by a launched step
    for _ in range(2):
        assert by_state_version(lake, "instructors", "near", compute)[0]["groups"] == 1
    assert len(calls) == 4  # no version: read every time
