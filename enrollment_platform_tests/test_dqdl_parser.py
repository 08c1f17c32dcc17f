"""Unit tests of the DQDL parser, validator, linter and exporter (enrollment_platform.quality.dqdl)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrollment_platform.quality.dqdl import (
    Between,
    Comparison,
    CompositeRule,
    DateExpression,
    DQDLSyntaxError,
    Duration,
    FunctionCall,
    In,
    Keyword,
    Matches,
    Number,
    Position,
    Rule,
    RuleNode,
    Ruleset,
    Size,
    String,
    check_ruleset,
    lint_files,
    parse_ruleset,
    rule_type_table,
    to_dqdl,
)

CONFIG_RULES = Path(__file__).resolve().parents[1] / "enrollment_platform" / "config" / "rules"


def one(rule_text: str) -> Rule:
    """Parse `Rules = [ <rule_text> ]` and return its only rule."""
    ruleset = parse_ruleset(f"Rules = [ {rule_text} ]")
    assert len(ruleset.rules) == 1
    node = ruleset.rules[0]
    assert isinstance(node, Rule)
    return node


def error_of(text: str) -> DQDLSyntaxError:
    with pytest.raises(DQDLSyntaxError) as caught:
        parse_ruleset(text, source="t.dqdl")
    return caught.value


def num(text: str) -> Number:
    return Number(float(text), text)


_NOWHERE = Position(0, 0)


def strip_node(node: RuleNode) -> RuleNode:
    if isinstance(node, Rule):
        return replace(node, position=_NOWHERE, text="")
    return replace(node, position=_NOWHERE, text="", rules=tuple(strip_node(r) for r in node.rules))


def strip(ruleset: Ruleset) -> Ruleset:
    """The ruleset without positions, rule texts or source name."""
    return replace(
        ruleset,
        rules=tuple(strip_node(n) for n in ruleset.rules),
        analyzers=tuple(strip_node(a) for a in ruleset.analyzers),
        source="",
    )


# ---- rule forms -------------------------------------------------------------------------------------


def test_is_complete():
    rule = one('IsComplete "student_id"')
    assert (rule.rule_type, rule.parameters, rule.condition) == ("IsComplete", ("student_id",), None)
    assert rule.position == Position(1, 11)
    assert rule.text == 'IsComplete "student_id"'


def test_completeness_with_threshold_condition():
    rule = one('Completeness "email" >= 0.95')
    assert rule.parameters == ("email",)
    assert rule.condition == Comparison(">=", num("0.95"))


def test_is_unique_one_and_several_columns():
    assert one('IsUnique "email"').parameters == ("email",)
    assert one('IsUnique "first_name" "last_name"').parameters == ("first_name", "last_name")


@pytest.mark.parametrize(
    "text, columns",
    [
        ('IsPrimaryKey "enrollment_id"', ("enrollment_id",)),
        ('IsPrimaryKey "student_id" "course_id"', ("student_id", "course_id")),
        ('IsPrimaryKey student_id "course id" "term"', ("student_id", "course id", "term")),
    ],
)
def test_is_primary_key_one_to_three_columns(text, columns):
    rule = one(text)
    assert rule.rule_type == "IsPrimaryKey"
    assert rule.parameters == columns
    assert rule.condition is None


@pytest.mark.parametrize("op", ["=", "!=", ">", ">=", "<", "<="])
def test_column_values_comparisons(op):
    rule = one(f'ColumnValues "marks" {op} 50')
    assert rule.condition == Comparison(op, num("50"))


def test_column_values_string_and_keywords():
    assert one('ColumnValues "grade" = "A"').condition == Comparison("=", String("A"))
    assert one('ColumnValues "notes" != NULL').condition == Comparison("!=", Keyword("NULL"))
    assert one('ColumnValues "notes" = EMPTY').condition == Comparison("=", Keyword("EMPTY"))
    assert one('ColumnValues "notes" = WHITESPACES_ONLY').condition == Comparison("=", Keyword("WHITESPACES_ONLY"))


def test_column_values_between_and_not_between():
    assert one('ColumnValues "marks" between 0 and 100').condition == Between(num("0"), num("100"))
    assert one('ColumnValues "marks" not between -1.5 and 100').condition == Between(
        num("-1.5"), num("100"), negated=True
    )


def test_between_is_documented_as_exclusive():
    assert "EXCLUDES" in (Between.__doc__ or "")


def test_column_values_in_and_not_in():
    assert one('ColumnValues "grade" in ["A", "B", NULL]').condition == In((String("A"), String("B"), Keyword("NULL")))
    assert one('ColumnValues "course_credits" not in [1, 2, 3]').condition == In(
        (num("1"), num("2"), num("3")), negated=True
    )


def test_column_values_matches_and_not_matches():
    assert one('ColumnValues "email" matches "[a-z]+@[a-z.]+"').condition == Matches("[a-z]+@[a-z.]+")
    assert one(r'ColumnValues "phone" not matches "\d{3}-\d{4}"').condition == Matches(r"\d{3}-\d{4}", True)


def test_column_values_dates_and_times():
    assert one('ColumnValues "enrollment_date" > (now() - 3 days)').condition == Comparison(
        ">", DateExpression("-", Duration(3, "days"))
    )
    assert one('ColumnValues "enrollment_date" <= now()').condition == Comparison("<=", DateExpression())
    assert one('ColumnValues "start" between "9:00 AM" and "21:50"').condition == Between(
        String("9:00 AM"), String("21:50")
    )


def test_column_length():
    rule = one('ColumnLength "course_id" <= 10')
    assert (rule.rule_type, rule.parameters, rule.condition) == (
        "ColumnLength",
        ("course_id",),
        Comparison("<=", num("10")),
    )


def test_row_count_plain_and_dynamic():
    assert one("RowCount > 0").condition == Comparison(">", num("0"))
    rule = one("RowCount between (0.9 * avg(last(10))) and 1.1 * avg(last(10))")
    avg = FunctionCall("avg", (FunctionCall("last", (num("10"),)),))
    assert rule.condition == Between(FunctionCall("*", (num("0.9"), avg)), FunctionCall("*", (num("1.1"), avg)))
    assert one("RowCount = 8.0 * (5.0 - 1.0)").condition == Comparison(
        "=", FunctionCall("*", (num("8.0"), FunctionCall("-", (num("5.0"), num("1.0")))))
    )


def test_distinct_values_count():
    rule = one('DistinctValuesCount "course_id" between 3 and 50')
    assert rule.rule_type == "DistinctValuesCount"
    assert rule.condition == Between(num("3"), num("50"))


def test_referential_integrity_single_and_multi_column():
    rule = one('ReferentialIntegrity "student_id" "students.student_id" = 1.0')
    assert rule.parameters == ("student_id", "students.student_id")
    assert rule.condition == Comparison("=", num("1.0"))
    multi = one('ReferentialIntegrity "student_id,term" "students.{student_id,term}" >= 0.99')
    assert multi.parameters == ("student_id,term", "students.{student_id,term}")


def test_custom_sql_with_and_without_condition():
    rule = one('CustomSql "select count(*) from primary where marks > 100" = 0')
    assert rule.parameters == ("select count(*) from primary where marks > 100",)
    assert rule.condition == Comparison("=", num("0"))
    row_level = one('CustomSql "select enrollment_id from primary where marks >= 0" with threshold > 0.99')
    assert row_level.condition is None
    assert row_level.threshold == Comparison(">", num("0.99"))


def test_data_freshness_durations():
    assert one('DataFreshness "enrollment_date" <= 24 hours').condition == Comparison("<=", Duration(24, "hours"))
    assert one('DataFreshness "enrollment_date" between 2 days and 1 day').condition == Between(
        Duration(2, "days"), Duration(1, "days")
    )
    assert one('DataFreshness "updated" > 90 minutes').condition == Comparison(">", Duration(90, "minutes"))


def test_file_size_units():
    assert one("FileSize < 5 MB").condition == Comparison("<", Size(5, "MB"))
    assert one("FileSize between 1 B and 1 GB").condition == Between(Size(1, "B"), Size(1, "GB"))


def test_where_clause():
    rule = one('ColumnValues "marks" >= 0 where "status = \'active\'"')
    assert rule.where == "status = 'active'"
    assert rule.condition == Comparison(">=", num("0"))


def test_with_threshold_and_tags():
    rule = one('ColumnValues "grade" in ["A", "B"] where "term = \'F24\'" with threshold > 0.9')
    assert rule.threshold == Comparison(">", num("0.9"))
    assert rule.where == "term = 'F24'"
    tagged = one('FileFreshness "s3://bucket/raw/" > "21:45" with timeZone = "America/New_York"')
    assert tagged.tags == (("timeZone", "America/New_York"),)


def test_labels_and_severity():
    rule = one('ColumnValues "marks" <= 100 labels=["severity"="blocking", "owner"="registrar"]')
    assert rule.labels == (("severity", "blocking"), ("owner", "registrar"))
    assert rule.label("severity") == "blocking"
    assert rule.label("missing", "warn") == "warn"


def test_default_labels_are_merged_into_top_level_rules():
    ruleset = parse_ruleset(
        'DefaultLabels=["severity"="warn", "team"="dq"]\n'
        'Rules = [ IsComplete "a", IsComplete "b" labels=["severity"="blocking"] ]'
    )
    assert ruleset.default_labels == (("severity", "warn"), ("team", "dq"))
    assert ruleset.rules[0].labels == (("severity", "warn"), ("team", "dq"))
    assert ruleset.rules[1].label("severity") == "blocking"


def test_composite_rules_nested_and_labelled():
    ruleset = parse_ruleset(
        'Rules = [ (RowCount > 0) or ((IsComplete "a") and (IsUnique "a")) labels=["k"="v"],\n'
        '  (ColumnValues "x" != NULL AND ColumnLength "x" > 0) labels=["rule_id"="1"] ]'
    )
    first, second = ruleset.rules
    assert isinstance(first, CompositeRule) and first.operator == "or"
    assert isinstance(first.rules[1], CompositeRule) and first.rules[1].operator == "and"
    assert first.rules[1].labels == (("k", "v"),)  # the labels follow the parenthesised group
    assert isinstance(second, CompositeRule) and second.labels == (("rule_id", "1"),)
    assert second.position == Position(2, 3)
    assert [r.rule_type for r in second.rules] == ["ColumnValues", "ColumnLength"]


def test_sections_variables_and_comments():
    text = (
        "# enrollment checks\n"
        'Metadata = { "Version": "1.0" }\n'
        'DataSources = { "Primary": "enrollments", "AdditionalDataSources": [ "students" ] }\n'
        'grades = ["A", "B", "C"]  # allowed grades\n'
        'sql = "select count(*) from primary"\n'
        "Rules = [\n"
        '    ColumnValues "grade" in $grades,  # the # inside "a # b" is text\n'
        "    CustomSql $sql > 0,\n"
        '    ColumnValues "notes" != "a # b"\n'
        "]\n"
        'Analyzers = [ Completeness of "email", AllStatistics AllColumns ]\n'
    )
    ruleset = parse_ruleset(text)
    assert ruleset.metadata == (("Version", "1.0"),)
    assert ruleset.data_sources == (("Primary", "enrollments"), ("AdditionalDataSources", ("students",)))
    assert ruleset.variables == (("grades", ("A", "B", "C")), ("sql", "select count(*) from primary"))
    grades, sql, notes = ruleset.rules
    assert grades.condition == In((String("A"), String("B"), String("C")))
    assert sql.parameters == ("select count(*) from primary",)
    assert notes.condition == Comparison("!=", String("a # b"))
    assert [(a.rule_type, a.parameters) for a in ruleset.analyzers] == [
        ("Completeness", ("email",)),
        ("AllStatistics", ("AllColumns",)),
    ]


def test_strings_are_not_interpolated_and_escapes_are_unescaped():
    ruleset = parse_ruleset('id = "x"\nRules = [ CustomSql "select $id from primary", IsComplete "a\\"b\\\\c" ]')
    assert ruleset.rules[0].parameters == ("select $id from primary",)
    assert ruleset.rules[1].parameters == ('a"b\\c',)


def test_every_rule_type_example_in_the_table_parses():
    table = rule_type_table()
    assert len(table.rule_types) == 33
    for name, spec in table.rule_types.items():
        for form in spec.forms:
            rule = one(form.example) if spec.rule else parse_ruleset(f"Analyzers = [ {form.example} ]").analyzers[0]
            assert rule.rule_type == name


def test_project_rulesets_are_valid():
    files = sorted(CONFIG_RULES.glob("*.dqdl"))
    if not files:
        pytest.skip(f"no rulesets in {CONFIG_RULES}")
    assert lint_files(files) == []


# ---- errors, with their exact positions -----------------------------------------------------------


@pytest.mark.parametrize(
    "text, line, column, message",
    [
        (
            'Rules = [ ColumnValues "marks" ]',
            1,
            11,
            'ColumnValues needs a condition, e.g. ColumnValues "marks" >= 0',
        ),
        ('Rules = [ IsComplete "student_id" > 0 ]', 1, 11, "IsComplete takes no condition"),
        ("Rules = [ RowCount > 10 rows ]", 1, 25, "unknown unit `rows`"),
        ('Rules = [ ColumnValues "grade" in ["A", 1] ]', 1, 41, "cannot mix kinds of values"),
        ('Rules = [ IsComplete "a" labels=[severity="blocking"] ]', 1, 34, "quoted strings"),
        ('Rules = [ ColumnValues "marks" between 0 100 ]', 1, 42, "expected `and` between the bounds"),
        ('Rules = [ ColumnValues "marks" >= 0 ] ]', 1, 39, "unexpected `]` after the end of the ruleset"),
        ('Rules = [ IsComplete "a" IsUnique "b" ]', 1, 26, "expected `,` between rules"),
        (
            'Rules = [ Completeness "email" > 0.9 with threshold > 0.5 ]',
            1,
            11,
            "does not accept `with threshold`",
        ),
        ('Rules = [ ColumnValues "marks" >= 0 where "" ]', 1, 11, "where clause of ColumnValues is empty"),
        (
            'Rules = [ ReferentialIntegrity "student_id" = 1.0 ]',
            1,
            11,
            "ReferentialIntegrity takes 2 parameters",
        ),
        (
            'Rules = [ ColumnNamesMatchPattern "[a-z]+" where "x > 1" ]',
            1,
            11,
            "does not accept a where clause",
        ),
        ('Rules = [ DataFreshness "enrollment_date" <= 3 ]', 1, 11, "a number (3) does not fit"),
        ('Rules = [ ColumnValues "d" > now() - 1 days ]', 1, 36, "date arithmetic must be in parentheses"),
        ('Rules = [ (IsComplete "a") and (IsUnique "a") or (RowCount > 0) ]', 1, 47, "cannot be mixed"),
        ('Rules = [ IsComplete "a", ]', 1, 27, "trailing comma"),
        ('Rules = [ IsCompleet "a" ]', 1, 11, "unknown rule type `IsCompleet` (did you mean IsComplete?)"),
        ('Rules = [ ColumnValues "a" in $codes ]', 1, 11, "variable $codes is not defined"),
        ('Rules = [ AllStatistics "marks" ]', 1, 11, "AllStatistics is an analyzer"),
        ('Rules = [ IsComplete "a" ] Analyzers = [ IsUnique "a" ]', 1, 42, "IsUnique cannot be an analyzer"),
        ('Rules = [ IsComplete "a" labels=["k"="1", "k"="2"] ]', 1, 11, "appears twice"),
        ("Rules = [ IsComplete 'a' ]", 1, 22, "double quotes"),
        ('Rules = [ IsComplete "a ]', 1, 22, "no closing"),
        ("Rules = [ ]", 1, 1, "a ruleset needs at least one rule or analyzer"),
        ("", 1, 1, "no Rules = [ ... ] section"),
        ('IsComplete "a"', 1, 1, "rules go inside Rules = [ ... ]"),
        ('Metadata = { "Owner": "me" } Rules = [ RowCount > 0 ]', 1, 1, "unknown Metadata key"),
    ],
)
def test_malformed_rules_report_line_and_column(text, line, column, message):
    error = error_of(text)
    assert (error.line, error.column) == (line, column), error.message
    assert message in error.message
    assert str(error) == f"t.dqdl:{line}:{column}: {error.message}"


def test_error_on_line_three_of_a_multi_line_ruleset():
    text = 'Rules = [\n    IsComplete "student_id",\n    ColumnValues "marks" between 0 100,\n    RowCount > 0\n]\n'
    error = error_of(text)
    assert (error.line, error.column) == (3, 36)
    assert "expected `and` between the bounds" in error.message and "`100`" in error.message


def test_semantic_error_points_at_the_start_of_the_rule():
    text = 'Rules = [\n    IsComplete "student_id",\n\tCompleteness "email"\n]'
    error = error_of(text)
    assert (error.line, error.column) == (3, 2)
    assert error.message == 'Completeness needs a condition, e.g. Completeness "email" > 0.95'


def test_check_ruleset_reports_every_semantic_error():
    ruleset, errors = check_ruleset('Rules = [\n  IsComplete "a" > 1,\n  RowCount\n]')
    assert ruleset is not None
    assert [(e.line, e.column) for e in errors] == [(2, 3), (3, 3)]


# ---- lint_files -------------------------------------------------------------------------------------


def test_lint_files(tmp_path: Path):
    good = tmp_path / "good.dqdl"
    good.write_text('Rules = [ IsPrimaryKey "enrollment_id" labels=["severity"="blocking"] ]\n')
    bad = tmp_path / "bad.dqdl"
    bad.write_text('Rules = [\n  IsComplete "a" > 1,\n  RowCount\n]\n')
    missing = tmp_path / "missing.dqdl"
    assert lint_files([good]) == []
    problems = lint_files([good, str(bad), missing])
    assert problems[0] == f"{bad}:2:3: IsComplete takes no condition: it passes or fails on its own, " + (
        'e.g. IsComplete "student_id"'
    )
    assert problems[1].startswith(f"{bad}:3:3: RowCount needs a condition")
    assert problems[2].startswith(f"{missing}:1:1: cannot read the file")
    assert len(problems) == 3


# ---- to_dqdl ----------------------------------------------------------------------------------------


def assert_round_trip(ruleset: Ruleset) -> str:
    text = to_dqdl(ruleset)
    again = parse_ruleset(text)
    assert strip(again) == strip(ruleset), text
    return text


def test_to_dqdl_round_trip_of_a_full_ruleset():
    text = (
        'Metadata = { "Version": "1.0" }\n'
        'DataSources = { "Primary": "enrollments", "AdditionalDataSources": [ "students" ] }\n'
        'codes = ["A", "B"]\n'
        'DefaultLabels = ["severity"="warn"]\n'
        "Rules = [\n"
        '  IsPrimaryKey "enrollment_id" labels=["severity"="blocking"],\n'
        '  ColumnValues "grade" in $codes where "term = \'F24\'" with threshold > 0.9,\n'
        '  ColumnValues "phone" matches "\\d{3}-\\d{4}",\n'
        '  ColumnValues "quote" = "say \\"hi\\" \\\\o/",\n'
        '  ReferentialIntegrity "student_id" "students.student_id" = 1.0,\n'
        '  (RowCount > 10 + 10) or ((IsComplete "a") and (IsUnique "a")) labels=["k"="v"],\n'
        '  ColumnValues "d" between (now() - 3 days) and now(),\n'
        '  DataFreshness "d" <= 1.5 hours,\n'
        '  FileSize "s3://b/" < 5 GB with recentFiles = 3,\n'
        "  RowCount = -100\n"
        "]\n"
        'Analyzers = [ Completeness "email", AllStatistics AllColumns ]\n'
    )
    ruleset = parse_ruleset(text)
    exported = assert_round_trip(ruleset)
    assert 'labels=["severity"="blocking"]' in exported
    assert 'DefaultLabels=["severity"="warn"]' in exported
    assert "AllStatistics AllColumns" in exported
    assert 'ColumnValues "phone" matches "\\d{3}-\\d{4}"' in exported
    assert to_dqdl(parse_ruleset(exported)) == exported


def test_to_dqdl_of_the_project_rulesets():
    for path in sorted(CONFIG_RULES.glob("*.dqdl")):
        assert_round_trip(parse_ruleset(path.read_text(encoding="utf-8")))


# A small property test: generated simple rules survive to_dqdl -> parse_ruleset.

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\"\\$#'[](),="),
    min_size=1,
    max_size=12,
)
_column = _text.filter(lambda s: s.strip() != "")
_number = st.one_of(
    st.integers(-10_000, 10_000).map(str),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(repr),
).map(num)
_label_pairs = st.lists(st.tuples(_column, _column), min_size=1, max_size=3, unique_by=lambda kv: kv[0])
_labels = st.one_of(st.just(()), _label_pairs.map(lambda pairs: tuple(dict(pairs).items())))
_comparison_op = st.sampled_from(["=", "!=", ">", ">=", "<", "<="])
_numeric_condition = st.one_of(
    st.builds(Comparison, _comparison_op, _number),
    st.builds(Between, _number, _number, st.booleans()),
    st.builds(In, st.lists(_number, min_size=1, max_size=4).map(tuple), st.booleans()),
)
_value_condition = st.one_of(
    _numeric_condition,
    st.builds(Comparison, st.sampled_from(["=", "!="]), _text.map(String)),
    st.builds(In, st.lists(_text.map(String), min_size=1, max_size=4).map(tuple), st.booleans()),
    st.builds(Matches, _text, st.booleans()),
    st.builds(Comparison, st.sampled_from(["=", "!="]), st.sampled_from(["NULL", "EMPTY"]).map(Keyword)),
)
_threshold = st.one_of(st.none(), st.builds(Comparison, _comparison_op, _number))
_where = st.one_of(st.none(), _column)


def _rule(rule_type, parameters, condition=None, where=None, threshold=None, labels=()):
    return Rule(rule_type, tuple(parameters), condition, _NOWHERE, "", where, threshold, (), labels)


_simple_rule = st.one_of(
    st.builds(_rule, st.just("IsComplete"), st.lists(_column, min_size=1, max_size=1), where=_where, labels=_labels),
    st.builds(_rule, st.just("IsPrimaryKey"), st.lists(_column, min_size=1, max_size=3), labels=_labels),
    st.builds(_rule, st.just("Completeness"), st.lists(_column, min_size=1, max_size=1), _numeric_condition),
    st.builds(_rule, st.just("RowCount"), st.just(()), _numeric_condition, _where, labels=_labels),
    st.builds(
        _rule,
        st.just("ColumnValues"),
        st.lists(_column, min_size=1, max_size=1),
        _value_condition,
        _where,
        _threshold,
        _labels,
    ),
    st.builds(
        _rule,
        st.just("DataFreshness"),
        st.lists(_column, min_size=1, max_size=1),
        st.builds(
            Comparison,
            _comparison_op,
            st.builds(Duration, st.integers(0, 1000).map(float), st.sampled_from(["days", "hours", "minutes"])),
        ),
    ),
    st.builds(_rule, st.just("CustomSql"), st.lists(_text, min_size=1, max_size=1), st.none(), st.none(), _threshold),
)
_node = st.recursive(
    _simple_rule,
    lambda children: st.builds(
        CompositeRule,
        st.sampled_from(["and", "or"]),
        st.lists(children, min_size=2, max_size=3).map(tuple),
        st.just(_NOWHERE),
        st.just(""),
        _labels,
    ),
    max_leaves=5,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_node, min_size=1, max_size=4), _labels)
def test_to_dqdl_round_trip_property(nodes, defaults):
    # What the parser produces: DefaultLabels merged into every top-level rule.
    rules = tuple(replace(n, labels=tuple({**dict(defaults), **dict(n.labels)}.items())) for n in nodes)
    ruleset = Ruleset(rules=rules, default_labels=defaults)
    text = to_dqdl(ruleset)
    assert strip(parse_ruleset(text)) == strip(ruleset), text


_BASE = (
    'DefaultLabels=["team"="dq"]\ncodes = ["A", "B"]\nRules = [\n'
    '  (ColumnValues "grade" in $codes) or (ColumnValues "d" between (now() - 3 days) and now()),\n'
    '  RowCount between (0.9 * avg(last(10))) and 1.1 * avg(last(10)) labels=["k"="v"],\n'
    '  ColumnValues "x" matches "[a-z]+" where "y > 1" with threshold > 0.5\n'
    ']\nAnalyzers = [ Completeness of "email" ]\n'
)
_PIECES = (
    '"',
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    "$x",
    " and ",
    " not ",
    " in ",
    "now()",
    " 3 days",
    "#",
    "\\",
    "\n",
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_BASE)), st.integers(0, 4), st.sampled_from(_PIECES)), max_size=3))
def test_mutated_rulesets_fail_cleanly(edits):
    """Whatever the damage, the result is a ruleset or positioned DQDLSyntaxErrors, never a crash."""
    text = _BASE
    for at, cut, piece in edits:
        at = min(at, len(text))
        text = text[:at] + piece + text[at + cut :]
    ruleset, errors = check_ruleset(text)
    lines = text.split("\n")
    for error in errors:
        assert 1 <= error.line <= len(lines)
        assert 1 <= error.column <= len(lines[error.line - 1]) + 1
    if not errors:
        assert ruleset is not None
        assert check_ruleset(to_dqdl(ruleset))[1] == []
