"""Standardize (DuckDB): exact duplicates are marked by hash candidates (of every column or of some), as the plain
window defines them; text is cleaned as the plain regex cleans it."""

import duckdb
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrollment_platform.transforms.standardize import _clean, exact_duplicates_sql

VALUES = st.one_of(st.none(), st.sampled_from(["", "a", "A", " a", "1", "1.0"]))
ROWS = st.lists(st.tuples(VALUES, VALUES, VALUES), min_size=0, max_size=40)


def marked(rows: list[tuple], query: str) -> set[tuple[str, int]]:
    files = ["f1.csv" if i % 3 else "f2.csv" for i in range(len(rows))]
    table = pa.table(
        {
            "a": pa.array([r[0] for r in rows], pa.string()),
            "b": pa.array([r[1] for r in rows], pa.string()),
            "_raw_line": pa.array([r[2] for r in rows], pa.string()),
            "_source_file": pa.array(files, pa.string()),
            "_source_row": pa.array(range(len(rows)), pa.int64()),
        }
    )
    con = duckdb.connect()
    con.register("source", table)
    return {(f, r) for f, r, dup in con.execute(query.format(source="source")).fetchall() if dup}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS)
def test_exact_duplicates_by_hash_candidates_equal_the_window_over_every_row(rows):
    columns = '"a", "b", "_raw_line"'
    window = (
        f"SELECT _source_file, _source_row, row_number() OVER (PARTITION BY {columns} "
        "ORDER BY _source_file DESC, _source_row DESC) > 1 FROM {source}"
    )
    expected = marked(rows, window)
    assert marked(rows, exact_duplicates_sql(columns, "{source}")) == expected
    assert marked(rows, exact_duplicates_sql(columns, "{source}", '"a", "_raw_line"')) == expected
    # every group of equal rows keeps exactly one row: the last by file and row
    assert len(expected) == len(rows) - len(set(rows))


TEXT = st.one_of(st.none(), st.text(alphabet=" \t\n\x0b\x0c\r\xa0aé", max_size=12))


@settings(max_examples=300, deadline=None)
@given(values=st.lists(TEXT, min_size=1, max_size=20))
def test_clean_equals_the_regex_on_every_value(values):
    con = duckdb.connect()
    con.register("source", pa.table({"v": pa.array(values, pa.string())}))
    plain = "nullif(regexp_replace(trim(v), '\\s+', ' ', 'g'), '')"
    rows = con.execute(f"SELECT {_clean('v')}, {plain} FROM source").fetchall()
    assert [cleaned for cleaned, _ in rows] == [expected for _, expected in rows]


NUMERIC_TEXT = st.one_of(st.none(), st.text(alphabet=" \t\n\x0b\x0c\r\xa01.05%e-+infa", max_size=10))


@settings(max_examples=300, deadline=None)
@given(values=st.lists(NUMERIC_TEXT, min_size=1, max_size=20))
def test_typed_ids_and_numbers_equal_the_plain_regex_reading(values):
    """Ids run their regex only on values with a point, numbers skip the whitespace fold and trim '%' only where
    there is one: the same values as folding, the regex and rtrim on every value."""
    from enrollment_platform.config import ColumnSpec, load_catalog
    from enrollment_platform.transforms.standardize import typed_expression

    folded = "nullif(regexp_replace(trim(v), '\\s+', ' ', 'g'), '')"
    number = f"TRY_CAST(rtrim({folded}, '%') AS DOUBLE)"
    plain = {
        "id": f"regexp_replace({folded}, '^(\\d+)\\.0+$', '\\1')",
        "double": f"CASE WHEN isfinite({number}) THEN {number} END",
        "int": f"CASE WHEN TRY_CAST({folded} AS DOUBLE) = floor(TRY_CAST({folded} AS DOUBLE)) "
        f"THEN TRY_CAST(TRY_CAST({folded} AS DOUBLE) AS BIGINT) END",
    }
    con = duckdb.connect()
    con.register("source", pa.table({"v": pa.array(values, pa.string())}))
    for kind, expected in plain.items():
        typed = typed_expression(ColumnSpec(name="v", type=kind), load_catalog())
        rows = con.execute(f"SELECT {typed}, {expected} FROM source").fetchall()
        assert [new for new, _ in rows] == [old for _, old in rows], kind


def test_a_whole_number_beyond_bigint_does_not_read_as_int():
    from enrollment_platform.config import ColumnSpec, load_catalog
    from enrollment_platform.transforms.standardize import typed_expression

    typed = typed_expression(ColumnSpec(name="v", type="int"), load_catalog())
    rows = duckdb.execute(f"SELECT {typed} FROM (VALUES ('1e100'), ('12'), ('12.5')) t(v)").fetchall()
    assert rows == [(None,), (12,), (None,)]
