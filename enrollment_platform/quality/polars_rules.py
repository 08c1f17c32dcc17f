"""DQDL rules -> polars expressions, the second reading of the same rules used by the pandera checks.

It holds to the semantics of `sql_compiler` (NULLs pass value rules, `between` excludes its bounds, `where`
limits the rows judged); a property test proves the two agree row for row.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta

import polars as pl

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
from enrollment_platform.quality.sql_compiler import SECONDS_PER_UNIT, UnsupportedRule, is_row_level

COMPARISON_OPERATORS: dict[str, Callable] = {  # DQDL operator -> Python operator (polars, Spark)
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def operand_value(operand: Operand):
    match operand:
        case Number(value=value):
            return value
        case String(value=value):
            return value
        case Keyword(name="NULL"):
            return None
        case Duration(amount=amount, unit=unit):
            return amount * SECONDS_PER_UNIT[unit]
        case DateExpression(operator=None):
            return datetime.now(UTC).replace(tzinfo=None)
        case DateExpression(operator=op, offset=Duration(amount=amount, unit=unit)):
            shift = timedelta(seconds=amount * SECONDS_PER_UNIT[unit])
            now = datetime.now(UTC).replace(tzinfo=None)
            return now + shift if op == "+" else now - shift
    raise UnsupportedRule(f"operand {operand!r} needs run history or is not supported yet")


def condition_expr(value: pl.Expr, condition: Condition) -> pl.Expr:
    """TRUE where `value` satisfies the condition (NULL where value is NULL)."""
    match condition:
        case Comparison(operator=op, operand=operand):
            return COMPARISON_OPERATORS[op](value, pl.lit(operand_value(operand)))
        case Between(lower=lower, upper=upper, negated=negated):
            inside = (value > operand_value(lower)) & (value < operand_value(upper))
            return ~inside if negated else inside
        case In(values=values, negated=negated):
            listed = value.is_in([operand_value(v) for v in values])
            return ~listed if negated else listed
        case Matches(pattern=pattern, negated=negated):
            matched = value.cast(pl.String).str.contains(f"^(?:{pattern})$")
            return ~matched if negated else matched
    raise UnsupportedRule(f"condition {condition!r} is not supported")


def repeated(values: pl.Expr) -> pl.Expr:
    """TRUE where the value occurs more than once in the column (`is_duplicated`, faster on wide unique keys)."""
    return values.map_batches(_repeated_values, return_dtype=pl.Boolean)


def _repeated_values(values: pl.Series) -> pl.Series:
    """Hashes find the few candidate rows, and only those values are compared: `is_duplicated` on 10 M string keys
    took 3.7 s, this 0.7 s. Equal values have equal hashes, so no repeat is missed; a hash collision only makes a
    candidate, which the exact comparison clears. Repeated hashes are found by sorting them (neighbours equal),
    not by counting per hash: the counts' hash table took 1.1 GB more at 10 M rows, the sort 0.4 GB."""
    hashes = values.hash()
    order = hashes.arg_sort()
    ordered = hashes.gather(order)
    same_as_previous = (ordered == ordered.shift(1)).fill_null(False)
    repeated_hash = same_as_previous | same_as_previous.shift(-1).fill_null(False)
    positions = order.filter(repeated_hash)
    flags = pl.repeat(False, len(values), dtype=pl.Boolean, eager=True)
    if len(positions):
        flags = flags.scatter(positions, values.gather(positions).is_duplicated())
    return flags.alias(values.name)


def row_pass_expr(node: RuleNode, references: Mapping[str, pl.DataFrame]) -> pl.Expr:
    """TRUE where a row passes a row-level rule (before `where`)."""
    if isinstance(node, CompositeRule):
        parts = [row_pass_expr(child, references) for child in node.rules]
        combined = parts[0]
        for part in parts[1:]:
            combined = combined & part if node.operator == "and" else combined | part
        return combined
    rule = node
    column = pl.col(rule.parameters[0]) if rule.parameters else None
    match rule.rule_type:
        case "IsComplete":
            return column.is_not_null()
        case "IsPrimaryKey":
            keys = [pl.col(p) for p in rule.parameters]
            present = pl.all_horizontal([k.is_not_null() for k in keys])
            # one key column alone: a struct of it holds the column twice over (2.4x the memory at 10 M rows)
            return present & ~repeated(keys[0] if len(keys) == 1 else pl.struct(keys))
        case "IsUnique":
            return column.is_null() | ~repeated(column)
        case "ColumnValues":
            return column.is_null() | condition_expr(column, rule.condition).fill_null(False)
        case "ColumnLength":
            return column.is_null() | condition_expr(column.str.len_chars(), rule.condition).fill_null(False)
        case "ReferentialIntegrity":
            return _reference_pass(rule, references)
    raise UnsupportedRule(f"{rule.rule_type} is not a row-level rule")


def reference_target(rule: Rule) -> tuple[list[str], str, list[str]]:
    """A ReferentialIntegrity rule's local columns, referenced dataset and its columns."""
    columns = [c.strip() for c in rule.parameters[0].split(",")]
    table, _, remote = rule.parameters[1].partition(".")
    return columns, table, [c.strip() for c in remote.strip("{}").split(",")]


def reference_columns(nodes: Iterable[RuleNode]) -> dict[str, list[str]]:
    """The columns of each referenced dataset the ReferentialIntegrity rules among `nodes` look up (in order)."""
    found: dict[str, list[str]] = {}
    for node in nodes:
        if isinstance(node, CompositeRule):
            looked_up = reference_columns(node.rules).items()
        elif node.rule_type == "ReferentialIntegrity" and len(node.parameters) >= 2:
            _, table, remote_columns = reference_target(node)
            looked_up = [(table, remote_columns)]
        else:
            continue
        for table, remote_columns in looked_up:
            known = found.setdefault(table, [])
            known.extend(c for c in remote_columns if c not in known)
    return found


# Rule types whose only columns are their column parameters (a comma-separated list for keys and references).
_COLUMN_PARAMETER_RULES = {
    "IsComplete": 1,
    "IsPrimaryKey": None,
    "IsUnique": 1,
    "ColumnValues": 1,
    "ColumnLength": 1,
    "ReferentialIntegrity": 1,
    "Completeness": 1,
    "Uniqueness": 1,
    "Mean": 1,
    "Sum": 1,
    "StandardDeviation": 1,
    "DistinctValuesCount": 1,
    "UniqueValueRatio": 1,
    "Entropy": 1,
    "RowCount": 0,
    "DataFreshness": 1,
}


def columns_read(nodes: Iterable[RuleNode]) -> set[str] | None:
    """The columns the rules among `nodes` read; None when one may read any column (CustomSql, `where`, …)."""
    columns: set[str] = set()
    for node in nodes:
        if isinstance(node, CompositeRule):
            inner = columns_read(node.rules)
            if inner is None:
                return None
            columns |= inner
            continue
        if node.rule_type not in _COLUMN_PARAMETER_RULES or node.where:
            return None
        count = _COLUMN_PARAMETER_RULES[node.rule_type]
        for parameter in node.parameters if count is None else node.parameters[:count]:
            columns.update(c.strip() for c in parameter.split(","))
    return columns


def _reference_pass(rule: Rule, references: Mapping[str, pl.DataFrame]) -> pl.Expr:
    columns, table, remote_columns = reference_target(rule)
    if table not in references:
        raise UnsupportedRule(f"reference dataset {table!r} was not provided")
    nulls = pl.any_horizontal([pl.col(c).is_null() for c in columns])
    if len(columns) == 1:
        # no unique(): membership does not need it, and it cost 0.4 s for 1.25 M student ids
        known = references[table].get_column(remote_columns[0]).drop_nulls()
        return nulls | pl.col(columns[0]).is_in(known.implode())
    known_rows = references[table].select(pl.struct(remote_columns).alias("_k")).get_column("_k")
    return nulls | pl.struct(columns).is_in(known_rows.implode())


def row_fail_expr(node: RuleNode, references: Mapping[str, pl.DataFrame]) -> pl.Expr:
    """TRUE where a row fails the rule; rows outside `where` never fail."""
    failed = ~row_pass_expr(node, references)
    where = getattr(node, "where", None)
    if where:
        return (pl.sql_expr(where).fill_null(False) & failed).fill_null(False)
    return failed.fill_null(False)


def metric_expr(rule: Rule, references: Mapping[str, pl.DataFrame]) -> pl.Expr:
    """The dataset-level value a rule judges (share of passing rows for thresholded row rules)."""
    if rule.threshold is not None and is_row_level(rule):
        return row_pass_expr(rule, references).cast(pl.Float64).mean().fill_null(1.0)
    column = pl.col(rule.parameters[0]) if rule.parameters else None
    match rule.rule_type:
        case "IsComplete" | "IsPrimaryKey" | "IsUnique" | "ColumnValues" | "ColumnLength" | "ReferentialIntegrity":
            return row_pass_expr(rule, references).cast(pl.Float64).mean().fill_null(1.0)
        case "Completeness":
            return column.is_not_null().cast(pl.Float64).mean().fill_null(1.0)
        case "Uniqueness":
            return (column.drop_nulls().n_unique() / column.count()).fill_nan(1.0)
        case "RowCount":
            return pl.len()
        case "DistinctValuesCount":
            return column.drop_nulls().n_unique()
        case "Mean":
            return column.mean()
        case "Sum":
            return column.sum()
        case "StandardDeviation":
            return column.std()
        case "DataFreshness":
            now = datetime.now(UTC).replace(tzinfo=None)
            return (pl.lit(now) - column.cast(pl.Datetime).max()).dt.total_seconds()
    raise UnsupportedRule(f"{rule.rule_type} is parsed but not evaluated by this engine yet")


def metric_condition(rule: Rule) -> Condition:
    if rule.threshold is not None:
        return rule.threshold
    if rule.rule_type in ("IsComplete", "IsPrimaryKey", "IsUnique", "ColumnValues", "ColumnLength"):
        return Comparison("=", Number(1.0, "1.0"))
    return rule.condition
