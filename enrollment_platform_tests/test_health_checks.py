"""Curated health figures are computed once per state version: an unchanged state is not read again."""

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from enrollment_platform.quality.asset_checks import by_state_version, near_duplicate_groups
from enrollment_platform.quality.rule_outcomes import SAMPLE_KEYS
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


NAMES = st.sampled_from(["Ann", "ann ", " ANN", "Bo", "bo", "Cy"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), NAMES), st.one_of(st.none(), NAMES)), max_size=12))
def test_near_duplicate_groups_are_the_ids_sharing_normalized_attributes(tmp_path_factory, people):
    """Against a plain Python grouping: attributes lower-cased and trimmed, rows with a missing one left out,
    groups of two or more ids, each group's ids sorted, groups ordered by their first id."""
    root = tmp_path_factory.mktemp("state")
    lake = LocalLake(root=str(root))
    (root / "curated" / "instructors").mkdir(parents=True)
    ids = [f"i{n:02d}" for n in range(len(people))]
    table = pa.table(
        {"instructor_id": ids, "first_name": [p[0] for p in people], "last_name": [p[1] for p in people]},
        schema=pa.schema([("instructor_id", pa.string()), ("first_name", pa.string()), ("last_name", pa.string())]),
    )
    pq.write_table(table, lake.path("curated", "instructors", "instructors.parquet"))
    expected: dict[tuple, list[str]] = {}
    for id_, (first, last) in zip(ids, people, strict=True):
        if first is not None and last is not None:
            expected.setdefault((first.lower().strip(), last.lower().strip()), []).append(id_)
    shared = sorted(sorted(group) for group in expected.values() if len(group) > 1)
    found = near_duplicate_groups(lake, "instructors", ["first_name", "last_name"])
    assert found["groups"] == len(shared)
    assert found["sample_id_groups"] == shared[: len(found["sample_id_groups"])]
    assert len(found["sample_id_groups"]) == min(len(shared), SAMPLE_KEYS)
