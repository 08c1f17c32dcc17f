"""DQDL rules -> SQL (DuckDB dialect; Spark SQL reads the same text for the rule types we compile).

Row-level rules become a predicate that is TRUE when a row FAILS the rule; dataset-level rules become a metric
query whose value is compared with the rule's condition. Semantics we hold to, everywhere:
- value rules (ColumnValues, ColumnLength) ignore NULLs: completeness is IsComplete's job;
- DQDL `between` excludes both bounds;
- a rule with `where "<sql>"` only judges the rows the filter selects;
- a rule with `with threshold` is judged on the share of passing rows; its failing rows are flagged, not
  quarantined.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from enrollment_platform.quality.dqdl.ast import (
    Between,
    Comparison,
    CompositeRule,
    Condition,
    DateExpression,
    Duration,
    In,
    Keyword,
    Matches,
    Number,
    Operand,
    Rule,
    RuleNode,
    String,
)
from enrollment_platform.transforms.sql import quote_ident, quote_literal

ROW_RULES = ("IsComplete", "IsPrimaryKey", "IsUnique", "ColumnValues", "ColumnLength", "ReferentialIntegrity")
_SQL_OPERATORS = {"=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}
SECONDS_PER_UNIT = {"days": 86400, "hours": 3600, "minutes": 60}


class UnsupportedRule(Exception):
    """A valid DQDL rule this engine cannot evaluate (reported as outcome 'unsupported', never skipped)."""


@dataclass(frozen=True)
class MetricQuery:
    """A dataset-level rule: `sql` yields one number that `condition` judges."""

    sql: str
    condition: Condition | None


def operand_sql(operand: Operand) -> str:
    match operand:
        case Number(value=value):
            return repr(float(value)) if not float(value).is_integer() else str(int(value))
        case String(value=value):
            return quote_literal(value)
        case Keyword(name="NULL"):
            return "NULL"
        case Duration(amount=amount, unit=unit):
            return str(amount * SECONDS_PER_UNIT[unit])
        case DateExpression(operator=None):
            return "now()"
        case DateExpression(operator=op, offset=Duration(amount=amount, unit=unit)):
            return f"(now() {op} INTERVAL {int(amount * SECONDS_PER_UNIT[unit])} SECOND)"
    raise UnsupportedRule(f"operand {operand!r} needs run history or is not supported yet")


def condition_sql(value: str, condition: Condition) -> str:
    """TRUE when `value` satisfies the condition."""
    match condition:
        case Comparison(operator=op, operand=operand):
            return f"({value} {_SQL_OPERATORS[op]} {operand_sql(operand)})"
        case Between(lower=lower, upper=upper, negated=negated):
            inside = f"({value} > {operand_sql(lower)} AND {value} < {operand_sql(upper)})"
            return f"(NOT {inside})" if negated else inside
        case In(values=values, negated=negated):
            listed = f"({value} IN ({', '.join(operand_sql(v) for v in values)}))"
            return f"(NOT {listed})" if negated else listed
        case Matches(pattern=pattern, negated=negated):
            match_sql = f"regexp_full_match(CAST({value} AS VARCHAR), {quote_literal(pattern)})"
            return f"(NOT {match_sql})" if negated else match_sql
    raise UnsupportedRule(f"condition {condition!r} is not supported")


def _column(rule: Rule, index: int = 0) -> str:
    return quote_ident(rule.parameters[index])


def _reference(parameter: str) -> tuple[str, list[str]]:
    """`students.student_id` -> ("students", ["student_id"]); `ref.{a,b}` -> ("ref", ["a", "b"])."""
    table, _, columns = parameter.partition(".")
    columns = columns.strip("{}")
    return table, [c.strip() for c in columns.split(",")]


RepeatedKeys = Callable[[str, str], str]  # (key columns, presence predicate) -> SQL relation of the repeated keys


def repeated_keys_sql(key: str, present: str, relation: str) -> str:
    """The (present) keys that occur more than once among `relation`'s rows."""
    return f"SELECT ({key}) FROM {relation} WHERE {present} GROUP BY ALL HAVING count(*) > 1"


def row_pass_sql(node: RuleNode, relation: str | None = None, repeated: RepeatedKeys | None = None) -> str:
    """TRUE when a row passes a row-level rule (before `where` and threshold are applied).

    Uniqueness is judged over the rows in scope: a window over them, or, given `relation` (every row the rule
    judges), membership in that relation's keys that occur more than once. The second needs no window over the
    wide rows: only the few repeated keys are held (at 10 M rows a third of the validate step). `repeated`, when
    given, supplies the relation of those keys (e.g. a table made once for several statements)."""
    if isinstance(node, CompositeRule):
        joiner = " AND " if node.operator == "and" else " OR "
        return "(" + joiner.join(row_pass_sql(child, relation, repeated) for child in node.rules) + ")"
    rule = node
    match rule.rule_type:
        case "IsComplete":
            return f"({_column(rule)} IS NOT NULL)"
        case "IsPrimaryKey":
            keys = [quote_ident(p) for p in rule.parameters]
            present = " AND ".join(f"{k} IS NOT NULL" for k in keys)
            return f"({present} AND {_single(keys, present, relation, repeated)})"
        case "IsUnique":
            column = _column(rule)
            return f"({column} IS NULL OR {_single([column], f'{column} IS NOT NULL', relation, repeated)})"
        case "ColumnValues":
            column = _column(rule)
            return f"({column} IS NULL OR {condition_sql(column, rule.condition)})"
        case "ColumnLength":
            column = _column(rule)
            return f"({column} IS NULL OR {condition_sql(f'length({column})', rule.condition)})"
        case "ReferentialIntegrity":
            columns = [c.strip() for c in rule.parameters[0].split(",")]
            table, ref_columns = _reference(rule.parameters[1])
            local = ", ".join(quote_ident(c) for c in columns)
            remote = ", ".join(quote_ident(c) for c in ref_columns)
            nulls = " OR ".join(f"{quote_ident(c)} IS NULL" for c in columns)
            return f"({nulls} OR ({local}) IN (SELECT ({remote}) FROM {quote_ident(table)}))"
    raise UnsupportedRule(f"{rule.rule_type} is not a row-level rule")


def _single(keys: list[str], present: str, relation: str | None, repeated: RepeatedKeys | None = None) -> str:
    """TRUE when the (present) key occurs once among the rows in scope."""
    if relation is None:
        return f"count(*) OVER (PARTITION BY {', '.join(keys)}) = 1"
    key = ", ".join(keys)
    source = repeated(key, present) if repeated else repeated_keys_sql(key, present, relation)
    return f"({key}) NOT IN ({source})"


def is_row_level(node: RuleNode) -> bool:
    if isinstance(node, CompositeRule):
        return all(is_row_level(child) for child in node.rules)
    return node.rule_type in ROW_RULES


def row_fail_sql(node: RuleNode, relation: str | None = None, repeated: RepeatedKeys | None = None) -> str:
    """TRUE when a row of `relation` fails the rule; rows outside the rule's `where` filter never fail."""
    failed = f"(NOT {row_pass_sql(node, relation, repeated)})"
    where = getattr(node, "where", None)
    return f"(({where}) AND {failed})" if where else failed


def rule_judges_rows(node: RuleNode) -> bool:
    """Rules whose failing rows can be quarantined or nulled: row-level, with no threshold and a condition
    that only asks for every row to pass (ReferentialIntegrity's `= 1.0`)."""
    if not is_row_level(node) or getattr(node, "threshold", None) is not None:
        return False
    if isinstance(node, Rule) and node.rule_type == "ReferentialIntegrity":
        return node.condition == Comparison("=", Number(1.0, "1.0")) or _is_full_pass(node.condition)
    return True


def _is_full_pass(condition: Condition | None) -> bool:
    return (
        isinstance(condition, Comparison)
        and condition.operator in ("=", ">=")
        and isinstance(condition.operand, Number)
        and condition.operand.value == 1.0
    )


def custom_sql(statement: str) -> str:
    """A Glue CustomSql statement with its `primary` table quoted (PRIMARY is a reserved word in DuckDB)."""
    return re.sub(r'(?<!")\bprimary\b(?!")', '"primary"', statement, flags=re.IGNORECASE)


def metric_query(node: RuleNode, source: str) -> MetricQuery:
    """The dataset-level form of any rule we evaluate: one number and the condition that judges it."""
    if isinstance(node, CompositeRule):
        raise UnsupportedRule("composite rules are evaluated row by row only")
    rule = node
    where = f" WHERE {rule.where}" if rule.where else ""
    if rule.threshold is not None and is_row_level(rule):
        share = f"avg(CASE WHEN {row_pass_sql(rule)} THEN 1.0 ELSE 0.0 END)"
        return MetricQuery(f"SELECT coalesce({share}, 1.0) FROM {source}{where}", rule.threshold)
    column = quote_ident(rule.parameters[0]) if rule.parameters else None
    match rule.rule_type:
        case "IsComplete" | "IsPrimaryKey" | "IsUnique" | "ColumnValues" | "ColumnLength" | "ReferentialIntegrity":
            share = f"avg(CASE WHEN {row_pass_sql(rule)} THEN 1.0 ELSE 0.0 END)"
            condition = (
                rule.condition if rule.rule_type == "ReferentialIntegrity" else Comparison("=", Number(1.0, "1.0"))
            )
            return MetricQuery(f"SELECT coalesce({share}, 1.0) FROM {source}{where}", condition)
        case "Completeness":
            return MetricQuery(
                f"SELECT coalesce(avg(CASE WHEN {column} IS NOT NULL THEN 1.0 ELSE 0.0 END), 1.0) FROM {source}{where}",
                rule.condition,
            )
        case "Uniqueness":
            return MetricQuery(
                f"SELECT coalesce(count(DISTINCT {column}) / nullif(count({column}), 0), 1.0) FROM {source}{where}",
                rule.condition,
            )
        case "RowCount":
            return MetricQuery(f"SELECT count(*) FROM {source}{where}", rule.condition)
        case "DistinctValuesCount":
            return MetricQuery(f"SELECT count(DISTINCT {column}) FROM {source}{where}", rule.condition)
        case "Mean" | "Sum" | "StandardDeviation":
            function = {"Mean": "avg", "Sum": "sum", "StandardDeviation": "stddev_samp"}[rule.rule_type]
            return MetricQuery(f"SELECT {function}({column}) FROM {source}{where}", rule.condition)
        case "DataFreshness":
            age = f"date_diff('second', CAST(max({column}) AS TIMESTAMP), CAST(now() AS TIMESTAMP))"
            return MetricQuery(f"SELECT {age} FROM {source}{where}", rule.condition)
        case "CustomSql":
            return MetricQuery(f"SELECT * FROM ({custom_sql(rule.parameters[0])})", rule.condition)
    raise UnsupportedRule(f"{rule.rule_type} is parsed but not evaluated by this engine yet")
