"""Dedup (DuckDB): the winners found among contested keys only equal a ranking window over every candidate."""

from datetime import datetime

import duckdb
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrollment_platform.config import load_catalog
from enrollment_platform.transforms.dedup import ranked_sql, set_aside_sql

MODIFIED = st.one_of(st.none(), st.sampled_from([datetime(2025, 1, 1), datetime(2025, 6, 1)]))
BATCH_ROW = st.tuples(
    st.one_of(st.none(), st.sampled_from(["1", "2", "3"])),  # key
    MODIFIED,
    st.sampled_from(["b.csv", "a.csv"]),  # file
    st.booleans(),  # marked an exact duplicate by standardize
    st.booleans(),  # the row has load errors
)
STATE_ROW = st.tuples(
    st.sampled_from(["1", "2", "4"]), MODIFIED, st.sampled_from(["a.csv", "old.csv"]), st.integers(0, 5)
)


def batch_table(rows: list[tuple]) -> pa.Table:
    return pa.table(
        {
            "enrollment_id": pa.array([r[0] for r in rows], pa.string()),
            "last_modified": pa.array([r[1] for r in rows], pa.timestamp("us")),
            "_source_file": pa.array([r[2] for r in rows], pa.string()),
            "_source_row": pa.array(range(len(rows)), pa.int64()),
            "_exact_duplicate": pa.array([r[3] for r in rows], pa.bool_()),
            "_load_errors": pa.array([["bad line"] if r[4] else [] for r in rows], pa.list_(pa.string())),
        }
    )


def state_table(rows: list[tuple]) -> pa.Table:
    return pa.table(
        {
            "enrollment_id": pa.array([r[0] for r in rows], pa.string()),
            "last_modified": pa.array([r[1] for r in rows], pa.timestamp("us")),
            "_source_file": pa.array([r[2] for r in rows], pa.string()),
            "_source_row": pa.array([r[3] for r in rows], pa.int64()),
        }
    )


def window_reference(state: bool) -> str:
    """Every candidate of a key ranked by one window: newest first (missing last), then file, row, batch."""
    keyed = "enrollment_id IS NOT NULL AND NOT _exact_duplicate AND len(_load_errors) = 0"
    candidates = (
        "SELECT enrollment_id AS k, last_modified AS m, _source_file AS f, _source_row AS l, 1 AS b "
        f"FROM batch WHERE {keyed}"
    )
    if state:
        candidates += " UNION ALL SELECT enrollment_id, last_modified, _source_file, _source_row, 0 FROM state"
    ranked = (
        f"SELECT *, row_number() OVER (PARTITION BY k ORDER BY m DESC NULLS LAST, f DESC, l DESC, b DESC) AS rn "
        f"FROM ({candidates})"
    )
    return f"""
        SELECT batch._source_file, batch._source_row, CASE
            WHEN _exact_duplicate THEN 'exact duplicate row'
            WHEN NOT ({keyed}) THEN NULL
            WHEN w.f = batch._source_file AND w.l = batch._source_row AND w.b = 1 THEN NULL
            ELSE 'superseded: same enrollment_id as ' || w.f || ' row ' || w.l END
        FROM batch LEFT JOIN ({ranked}) w ON w.k = batch.enrollment_id AND w.rn = 1
    """


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(BATCH_ROW, max_size=30), state_rows=st.one_of(st.none(), st.lists(STATE_ROW, max_size=10)))
def test_winners_of_contested_keys_equal_the_ranking_window_over_every_candidate(rows, state_rows):
    catalog = load_catalog()
    con = duckdb.connect()
    con.register("batch", batch_table(rows))
    if state_rows is not None:
        con.register("state", state_table(state_rows))
    query = ranked_sql(
        catalog.datasets["enrollments"],
        catalog.last_modified_column,
        "batch",
        "state" if state_rows is not None else None,
    )
    got = set(con.execute(f"SELECT _source_file, _source_row, _duplicate_reason FROM ({query})").fetchall())
    expected = set(con.execute(window_reference(state_rows is not None)).fetchall())
    assert got == expected
    assert len(got) == len(rows)  # every batch row once
    set_aside = set_aside_sql(
        catalog.datasets["enrollments"],
        catalog.last_modified_column,
        "batch",
        "state" if state_rows is not None else None,
    )
    aside = con.execute(f"SELECT _source_file, _source_row, _duplicate_reason FROM ({set_aside})").fetchall()
    assert sorted(aside) == sorted(row for row in expected if row[2] is not None)
