"""The row-level engine (SQL) and the pandera checks read the same rules the same way."""

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrollment_platform.quality.pandera_checks import failing_rows
from enrollment_platform.quality.rules import build_rules
from enrollment_platform.quality.sql_compiler import row_fail_sql, rule_judges_rows

PROPERTY_RULES = """Rules = [
    IsComplete "enrollment_id",
    IsPrimaryKey "enrollment_id",
    IsUnique "notes",
    ColumnValues "marks" >= 0,
    ColumnValues "marks" <= 100,
    ColumnValues "marks" between 0 and 100,
    ColumnValues "marks" not between 10 and 20,
    ColumnValues "marks" in [0, 50, 100],
    ColumnValues "marks" != 50,
    ColumnValues "term" in ["FALL2024", "SPRING2025"],
    ColumnValues "term" matches "[A-Z]+[0-9]{4}",
    ColumnLength "notes" <= 3,
    ColumnValues "marks" <= 90 where "term = 'FALL2024'",
    (ColumnValues "marks" >= 10) or (IsComplete "notes")
]"""


def sql_failures(rules, frame: pl.DataFrame, relation: str | None = None) -> dict[str, set[int]]:
    """The failing rows of each rule; `relation`: judge uniqueness against that relation's repeated keys."""
    con = duckdb.connect()
    con.register("frame_arrow", frame.with_row_index("_row").to_arrow())
    con.execute('CREATE TABLE "primary" AS SELECT * FROM frame_arrow')
    failures = {}
    for rule in rules:
        judged = f'SELECT _row, {row_fail_sql(rule.node, relation)} AS failed FROM "primary"'
        rows = con.execute(f"SELECT _row FROM ({judged}) WHERE failed").fetchall()
        failures[rule.rule_id] = {r[0] for r in rows}
    return failures


frames = st.lists(
    st.fixed_dictionaries(
        {
            "enrollment_id": st.one_of(st.none(), st.sampled_from(["1", "2", "3", "4", "5"])),
            "marks": st.one_of(st.none(), st.sampled_from([-1.0, 0.0, 10.0, 15.0, 20.0, 50.0, 90.0, 100.0, 100.5])),
            "term": st.one_of(st.none(), st.sampled_from(["FALL2024", "SPRING2025", "fall2024", "X1"])),
            "notes": st.one_of(st.none(), st.sampled_from(["", "a", "abcd", "ok"])),
        }
    ),
    min_size=0,
    max_size=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=frames)
def test_sql_engine_and_pandera_agree_on_failing_rows(rows):
    rules = build_rules("enrollments", PROPERTY_RULES)
    assert all(rule_judges_rows(r.node) for r in rules)
    schema = {"enrollment_id": pl.String, "marks": pl.Float64, "term": pl.String, "notes": pl.String}
    frame = pl.DataFrame(rows, schema=schema)
    assert failing_rows(list(rules), frame, {}) == sql_failures(rules, frame)


def test_boundaries_pass_and_between_excludes_its_bounds():
    rules = {r.rule_id: r for r in build_rules("enrollments", PROPERTY_RULES)}
    frame = pl.DataFrame(
        {"enrollment_id": ["1", "2"], "marks": [0.0, 100.0], "term": ["FALL2024"] * 2, "notes": ["a", "b"]}
    )
    failures = sql_failures(list(rules.values()), frame)
    assert failures["enrollments.R4"] == set() and failures["enrollments.R5"] == set()  # >= 0, <= 100
    assert failures["enrollments.R6"] == {0, 1}  # between 0 and 100 is exclusive
    assert failures["enrollments.R13"] == {1}  # where term = FALL2024: 100 > 90


def test_clean_rows_pass_every_seed_rule():
    from enrollment_platform.quality.rules import dataset_rules

    rules = list(dataset_rules("enrollments"))
    clean = pl.DataFrame(
        {
            "enrollment_id": ["1", "2", "3"],
            "student_id": ["7", "8", "7"],
            "course_id": ["101", "101", "102"],
            "instructor_id": ["201", None, "201"],
            "enrollment_date": ["2024-01-01", "2024-02-01", "2024-03-01"],
            "marks": [0.0, 100.0, 55.5],
            "attendance_percentage": [100.0, 0.0, 75.0],
        }
    )
    refs = {
        "students": pl.DataFrame({"student_id": ["7", "8"]}),
        "courses": pl.DataFrame({"course_id": ["101", "102"]}),
        "instructors": pl.DataFrame({"instructor_id": ["201"]}),
    }
    outcome = failing_rows(list(rules), clean, refs)
    assert outcome == {r.rule_id: set() for r in rules}


@pytest.mark.parametrize(
    ("text", "passes"),
    [
        ("RowCount > 2", True),
        ("RowCount between 3 and 5", False),
        ('Completeness "notes" >= 0.5', True),
        ('DistinctValuesCount "term" = 2', True),
        ('ColumnValues "marks" >= 50 with threshold > 0.7', False),
        ('ColumnValues "marks" >= 50 with threshold > 0.6', True),
        ('CustomSql "select count(*) from primary where marks > 60" = 1', True),
    ],
)
def test_dataset_level_rules_in_pandera_and_sql_agree(text, passes):
    from enrollment_platform.transforms.validate import _metric_result

    rule = build_rules("enrollments", f"Rules = [ {text} ]")[0]
    frame = pl.DataFrame({"marks": [10.0, 50.0, 90.0], "term": ["A", "B", "B"], "notes": ["x", None, "y"]})
    outcome = failing_rows([rule], frame, {})[rule.rule_id]
    assert (outcome == set()) is passes
    con = duckdb.connect()
    con.register("f", frame.to_arrow())
    con.execute('CREATE TABLE "primary" AS SELECT * FROM f')
    assert (_metric_result(con, rule, 3).outcome == "Passed") is passes


def test_unsupported_rule_types_are_reported_not_skipped():
    rule = build_rules("enrollments", 'Rules = [ Entropy "term" > 1.0 ]')[0]
    outcome = failing_rows([rule], pl.DataFrame({"term": ["a"]}), {})[rule.rule_id]
    assert isinstance(outcome, str) and "Entropy" in outcome


def test_rule_checks_read_only_the_columns_their_rules_name():
    from enrollment_platform.quality.polars_rules import columns_read
    from enrollment_platform.quality.rules import dataset_rules

    enrollments = columns_read(rule.node for rule in dataset_rules("enrollments"))
    assert enrollments == {
        "enrollment_id",
        "enrollment_date",
        "marks",
        "attendance_percentage",
        "student_id",
        "course_id",
        "instructor_id",
    }
    for text in ('ColumnValues "marks" <= 90 where "term = \'F\'"', 'CustomSql "select 1" = 1', "ColumnCount = 3"):
        assert columns_read(rule.node for rule in build_rules("enrollments", f"Rules = [ {text} ]")) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=frames)
def test_rules_judge_a_frame_of_their_columns_as_they_judge_the_whole_frame(rows):
    from enrollment_platform.quality.polars_rules import columns_read

    rules = [r for r in build_rules("enrollments", PROPERTY_RULES) if "where" not in r.text]
    frame = pl.DataFrame(
        rows, schema={"enrollment_id": pl.String, "marks": pl.Float64, "term": pl.String, "notes": pl.String}
    )
    frame = frame.with_columns(pl.lit("unread").alias("status"), pl.col("marks").alias("tuition"))
    pruned = frame.select(sorted(columns_read(rule.node for rule in rules)))
    assert pruned.width == frame.width - 2
    assert failing_rows(rules, pruned, {}) == failing_rows(rules, frame, {})


UNIQUENESS_RULES = """Rules = [
    IsPrimaryKey "enrollment_id",
    IsPrimaryKey "enrollment_id" "term",
    IsUnique "notes",
    IsPrimaryKey "enrollment_id" where "term = 'FALL2024'",
    (IsUnique "notes") or (ColumnValues "marks" >= 50)
]"""


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=frames)
def test_uniqueness_by_repeated_keys_equals_the_window_over_every_row(rows):
    rules = build_rules("enrollments", UNIQUENESS_RULES)
    frame = pl.DataFrame(
        rows, schema={"enrollment_id": pl.String, "marks": pl.Float64, "term": pl.String, "notes": pl.String}
    )
    assert sql_failures(rules, frame, '"primary"') == sql_failures(rules, frame)


CHUNKED_RULES = (
    PROPERTY_RULES.rstrip().removesuffix("]")
    + """,
    RowCount > 3,
    IsPrimaryKey "enrollment_id" where "term = 'FALL2024'",
    (IsUnique "notes") or (ColumnValues "marks" >= 50)
]"""
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=frames, chunk=st.integers(1, 7))
def test_judging_a_file_chunk_by_chunk_equals_judging_it_whole(rows, chunk, tmp_path_factory):
    from enrollment_platform.quality import rule_outcomes

    rules = list(build_rules("enrollments", CHUNKED_RULES))
    frame = (
        pl.DataFrame(
            rows, schema={"enrollment_id": pl.String, "marks": pl.Float64, "term": pl.String, "notes": pl.String}
        )
        .with_row_index("row")
        .with_columns(pl.col("row").cast(pl.String))
    )  # a key that names each row
    path = str(tmp_path_factory.mktemp("judge") / "validated.parquet")
    frame.write_parquet(path)
    judged = rule_outcomes.judge_file(rules, path, "row", {}, chunk_rows=chunk)
    for rule_id, found in failing_rows(rules, frame, {}).items():
        expected = sorted(found)
        assert judged[rule_id].failed == len(expected)
        shown = [str(i) for i in expected[: rule_outcomes.SAMPLE_KEYS] if i < frame.height]  # none for no rows
        assert judged[rule_id].sample_keys == shown


SEVERITY_RULES = """Rules = [
    IsComplete "enrollment_id",
    IsPrimaryKey "enrollment_id" labels=["severity"="warn"],
    ColumnValues "marks" between 0 and 100 labels=["severity"="nullify"],
    ColumnValues "marks" <= 90 where "term = 'FALL2024'" labels=["severity"="warn"],
    ColumnValues "term" in ["FALL2024", "SPRING2025"],
    ColumnLength "notes" <= 3 labels=["severity"="warn"],
    ColumnValues "marks" != 50 where "notes = 'ok'",
    RowCount > 3
]"""
TYPE_ERROR = "enrollment_date: value is not a valid date"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=frames,
    errors=st.lists(st.sampled_from(["none", "type", "load", "line", "duplicate"]), min_size=25, max_size=25),
)
def test_rule_results_counted_from_the_outputs_equal_judging_every_row(rows, errors, tmp_path_factory):
    """Blocking, warn and nullify rules, `where` clauses, load and type errors, lines the reader rejected and
    set-aside duplicates: each rule's evaluated and failed rows are what judging every kept candidate row says,
    and the kept rows are exactly the candidates that fail no blocking rule and carry no error. A rejected line
    is numbered by file line, so its number can be a parsed row's; that row must not be taken for it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from enrollment_platform.config import load_catalog
    from enrollment_platform.transforms.dedup import kept_candidates_sql
    from enrollment_platform.transforms.validate import validate_dataset, validated_rows_sql

    spec = load_catalog().datasets["enrollments"]
    rules = build_rules("enrollments", SEVERITY_RULES)
    kinds = errors[: len(rows)]
    types = {c: pa.float64() if c == "marks" else pa.string() for c in spec.columns}
    columns = {c: pa.array([r.get(c) for r in rows], kind) for c, kind in types.items()}
    lists = pa.list_(pa.string())
    columns |= {
        "_source_file": pa.array(["f.csv"] * len(rows)),
        "_source_row": pa.array([(i + 1) % len(rows) if k == "line" else i for i, k in enumerate(kinds)], pa.int64()),
        "_raw_line": pa.array(["a,b,c" if k == "line" else None for k in kinds], pa.string()),
        "_load_errors": pa.array([["bad line"] if k in ("load", "line") else [] for k in kinds], lists),
        "_type_errors": pa.array([[TYPE_ERROR] if k == "type" else [] for k in kinds], lists),
        "_flags": pa.array([[] for _ in kinds], lists),
        "_exact_duplicate": pa.array([False] * len(rows)),
    }
    folder = tmp_path_factory.mktemp("validate")
    standardized, set_aside = str(folder / "standardized.parquet"), str(folder / "set_aside.parquet")
    pq.write_table(pa.table(columns), standardized)
    duplicates = pa.table(columns).filter(pa.array([k == "duplicate" for k in kinds], pa.bool_()))
    pq.write_table(duplicates.append_column("_duplicate_reason", pa.array(["superseded"] * len(duplicates))), set_aside)
    con = duckdb.connect()
    candidates_sql = kept_candidates_sql(f"'{standardized}'", f"'{set_aside}'")
    decisions = str(folder / "decisions.parquet")
    results = validate_dataset(
        con, spec, rules, candidates_sql, {},
        f"read_parquet('{standardized}')", "run", decisions, str(folder / "quarantine.parquet"),
    )  # fmt: skip
    got = {r.rule_id: (r.evaluated, r.failed) for r in results}
    candidates = [row for row, kind in zip(rows, kinds, strict=True) if kind != "duplicate"]
    schema = {"enrollment_id": pl.String, "marks": pl.Float64, "term": pl.String, "notes": pl.String}
    frame = pl.DataFrame(candidates, schema=schema)
    failures = sql_failures([r for r in rules if rule_judges_rows(r.node)], frame, '"primary"')
    where_counts = {
        "term = 'FALL2024'": frame.filter(pl.col("term") == "FALL2024").height,
        "notes = 'ok'": frame.filter(pl.col("notes") == "ok").height,
    }
    for rule in rules:
        if rule.rule_id not in failures:
            continue
        where = getattr(rule.node, "where", None)
        assert got[rule.rule_id] == (where_counts[where] if where else len(candidates), len(failures[rule.rule_id]))
    assert got["enrollments.load"] == (len(candidates), kinds.count("load") + kinds.count("line"))
    assert got["enrollments.type.enrollment_date"] == (len(candidates), kinds.count("type"))
    numbers = [i for i, kind in enumerate(kinds) if kind != "duplicate"]  # candidate position -> source row
    blocking = {i for r in rules if r.rule_id in failures and r.severity == "blocking" for i in failures[r.rule_id]}
    quarantined = {numbers[i] for i in blocking} | {i for i, kind in enumerate(kinds) if kind in ("type", "load")}
    validated = validated_rows_sql(list(spec.columns), candidates_sql, f"'{decisions}'", ["marks"])
    kept = {
        row: (marks, flags)
        for row, marks, flags in con.execute(f"SELECT _source_row, marks, _flags FROM {validated}").fetchall()
    }
    assert sorted(kept) == [i for i in numbers if i not in quarantined and kinds[i] != "line"]
    assert pq.read_metadata(folder / "quarantine.parquet").num_rows == len(candidates) - len(kept)
    # a kept row carries the text of every non-blocking rule it failed; a value failing a nullify rule is NULL
    flagged = [r for r in rules if r.rule_id in failures and r.severity != "blocking"]
    for position, row in enumerate(numbers):
        if row in kept:
            marks, flags = kept[row]
            assert flags == [r.text for r in flagged if position in failures[r.rule_id]]
            nulled = any(position in failures[r.rule_id] for r in flagged if r.severity == "nullify")
            assert marks == (None if nulled else candidates[position]["marks"])


keys = st.lists(st.one_of(st.none(), st.sampled_from(["1", "2", "3", "10", ""])), max_size=30)


@settings(max_examples=100, deadline=None)
@given(values=keys, others=keys)
def test_repeated_values_equal_is_duplicated_for_columns_and_structs(values, others):
    from enrollment_platform.quality.polars_rules import repeated

    frame = pl.DataFrame(
        {"a": values, "b": (others + [None] * len(values))[: len(values)]}, schema={"a": pl.String, "b": pl.String}
    )
    for expression in (pl.col("a"), pl.struct("a", "b")):
        found = frame.select(repeated(expression)).to_series().to_list()
        assert found == frame.select(expression.is_duplicated()).to_series().to_list()


def test_repeated_values_clear_hash_collisions_by_comparing_values(monkeypatch):
    from enrollment_platform.quality.polars_rules import repeated

    frame = pl.DataFrame({"a": ["x", "y", "x", None, "z", None]})
    # every value hashing alike makes every row a candidate: only the exact comparison can tell them apart
    monkeypatch.setattr(pl.Series, "hash", lambda self, *args, **kwargs: pl.zeros(len(self), pl.UInt64, eager=True))
    assert frame.select(repeated(pl.col("a"))).to_series().to_list() == [True, False, True, True, False, True]
