"""DQDL rules -> Spark Column expressions, a third reading of the same DQRule AST.

It holds to the semantics of `quality.sql_compiler` (NULLs pass value rules, `between` excludes its bounds,
`where` limits the rows judged, SQL's three-valued logic kept). ReferentialIntegrity needs the reference rows:
`prepare_references` joins a lookup column per rule onto the frame first, and the rule reads it.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

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
from enrollment_platform.quality.polars_rules import COMPARISON_OPERATORS
from enrollment_platform.quality.sql_compiler import SECONDS_PER_UNIT, UnsupportedRule, is_row_level


def operand_column(operand: Operand) -> Column:
    match operand:
        case Number(value=value):
            return F.lit(int(value)) if float(value).is_integer() else F.lit(float(value))
        case String(value=value):
            return F.lit(value)
        case Keyword(name="NULL"):
            return F.lit(None)
        case Duration(amount=amount, unit=unit):
            return F.lit(amount * SECONDS_PER_UNIT[unit])
        case DateExpression(operator=None):
            return F.localtimestamp()
        case DateExpression(operator=op, offset=Duration(amount=amount, unit=unit)):
            shift = F.make_dt_interval(secs=F.lit(int(amount * SECONDS_PER_UNIT[unit])))
            return F.localtimestamp() + shift if op == "+" else F.localtimestamp() - shift
    raise UnsupportedRule(f"operand {operand!r} needs run history or is not supported yet")


def condition_column(value: Column, condition: Condition) -> Column:
    """TRUE where `value` satisfies the condition (NULL where SQL says NULL)."""
    match condition:
        case Comparison(operator=op, operand=operand):
            return COMPARISON_OPERATORS[op](value, operand_column(operand))
        case Between(lower=lower, upper=upper, negated=negated):
            inside = (value > operand_column(lower)) & (value < operand_column(upper))
            return ~inside if negated else inside
        case In(values=values, negated=negated):
            listed = value.isin(*[operand_column(v) for v in values])
            return ~listed if negated else listed
        case Matches(pattern=pattern, negated=negated):
            matched = value.cast("string").rlike(f"^(?:{pattern})$")
            return ~matched if negated else matched
    raise UnsupportedRule(f"condition {condition!r} is not supported")


def _reference(parameter: str) -> tuple[str, list[str]]:
    table, _, columns = parameter.partition(".")
    return table, [c.strip() for c in columns.strip("{}").split(",")]


def _lookup_name(node: Rule) -> str:
    return f"_ri_{id(node)}"


def _reference_rules(node: RuleNode) -> list[Rule]:
    if isinstance(node, CompositeRule):
        return [r for child in node.rules for r in _reference_rules(child)]
    return [node] if node.rule_type == "ReferentialIntegrity" else []


def prepare_references(frame: DataFrame, nodes, references: Mapping[str, DataFrame]) -> tuple[DataFrame, list[str]]:
    """`frame` with one lookup column per ReferentialIntegrity rule: TRUE when the row's key is among the
    reference rows, NULL when it is not but the reference holds a NULL key (SQL's `IN`), else FALSE."""
    added = []
    for node in nodes:
        for rule in _reference_rules(node):
            name = _lookup_name(rule)
            local = [c.strip() for c in rule.parameters[0].split(",")]
            table, remote = _reference(rule.parameters[1])
            if table not in references:
                raise UnsupportedRule(f"reference dataset {table!r} was not provided")
            ref = references[table]
            keys = ref.select(*[F.col(r).cast("string").alias(f"{name}_k{i}") for i, r in enumerate(remote)])
            any_null = reduce(operator.or_, [F.col(c).isNull() for c in keys.columns])
            has_null = keys.agg(F.coalesce(F.max(any_null), F.lit(False)).alias(f"{name}_null"))
            known = keys.dropna().distinct().withColumn(f"{name}_hit", F.lit(True))
            condition = [F.col(c).cast("string") == F.col(f"{name}_k{i}") for i, c in enumerate(local)]
            joined = frame.join(F.broadcast(known), condition, "left").crossJoin(F.broadcast(has_null))
            miss = F.when(~F.col(f"{name}_null"), F.lit(False))  # NULL when the reference holds a NULL key
            frame = joined.select(*frame.columns, F.coalesce(F.col(f"{name}_hit"), miss).alias(name))
            added.append(name)
    return frame, added


def row_pass_column(node: RuleNode) -> Column:
    """TRUE where a row passes a row-level rule (before `where`)."""
    if isinstance(node, CompositeRule):
        parts = [row_pass_column(child) for child in node.rules]
        combined = parts[0]
        for part in parts[1:]:
            combined = (combined & part) if node.operator == "and" else (combined | part)
        return combined
    rule = node
    column = F.col(rule.parameters[0]) if rule.parameters else None
    match rule.rule_type:
        case "IsComplete":
            return column.isNotNull()
        case "IsPrimaryKey":
            keys = [F.col(p) for p in rule.parameters]
            present = keys[0].isNotNull()
            for k in keys[1:]:
                present = present & k.isNotNull()
            return present & (F.count(F.lit(1)).over(Window.partitionBy(*keys)) == 1)
        case "IsUnique":
            return column.isNull() | (F.count(F.lit(1)).over(Window.partitionBy(column)) == 1)
        case "ColumnValues":
            return column.isNull() | condition_column(column, rule.condition)
        case "ColumnLength":
            return column.isNull() | condition_column(F.length(column), rule.condition)
        case "ReferentialIntegrity":
            local = [F.col(c.strip()) for c in rule.parameters[0].split(",")]
            nulls = local[0].isNull()
            for c in local[1:]:
                nulls = nulls | c.isNull()
            return nulls | F.col(_lookup_name(rule))
    raise UnsupportedRule(f"{rule.rule_type} is not a row-level rule")


def row_fail_column(node: RuleNode) -> Column:
    """TRUE where a row fails the rule; rows outside the rule's `where` filter never fail (NULL stays NULL)."""
    failed = ~row_pass_column(node)
    where = getattr(node, "where", None)
    return (F.expr(where) & failed) if where else failed


def _share(passes: Column) -> Column:
    return F.coalesce(F.avg(F.when(passes, F.lit(1.0)).otherwise(F.lit(0.0))), F.lit(1.0))


FULL_PASS = Comparison("=", Number(1.0, "1.0"))
SHARE_RULES = ("IsComplete", "IsPrimaryKey", "IsUnique", "ColumnValues", "ColumnLength", "ReferentialIntegrity")
AGGREGATES = {"Mean": F.avg, "Sum": F.sum, "StandardDeviation": F.stddev_samp}


def metric_column(node: RuleNode) -> tuple[Column, Condition | None]:
    """The dataset-level form of a rule (as `sql_compiler.metric_query`): one aggregate and its condition."""
    if isinstance(node, CompositeRule):
        raise UnsupportedRule("composite rules are evaluated row by row only")
    rule = node
    if rule.threshold is not None and is_row_level(rule):
        return _share(row_pass_column(rule)), rule.threshold
    column = F.col(rule.parameters[0]) if rule.parameters else None
    match rule.rule_type:
        case rule_type if rule_type in SHARE_RULES:
            condition = rule.condition if rule_type == "ReferentialIntegrity" else FULL_PASS
            return _share(row_pass_column(rule)), condition
        case "Completeness":
            return _share(column.isNotNull()), rule.condition
        case "Uniqueness":
            distinct = F.count_distinct(column) / F.nullif(F.count(column), F.lit(0))
            return F.coalesce(distinct.cast("double"), F.lit(1.0)), rule.condition
        case "RowCount":
            return F.count(F.lit(1)), rule.condition
        case "DistinctValuesCount":
            return F.count_distinct(column), rule.condition
        case "Mean" | "Sum" | "StandardDeviation":
            return AGGREGATES[rule.rule_type](column), rule.condition
        case "DataFreshness":
            latest = F.max(column).cast("timestamp")
            return F.unix_timestamp(F.localtimestamp()) - F.unix_timestamp(latest), rule.condition
    raise UnsupportedRule(f"{rule.rule_type} is parsed but not evaluated by this engine yet")


def metric_value(node: RuleNode, primary: DataFrame) -> tuple[object, Condition | None]:
    """The rule's metric over the dataset's rows (`primary`, with any reference lookups), and its condition."""
    if isinstance(node, Rule) and node.rule_type == "CustomSql":
        primary.createOrReplaceTempView("primary")
        statement = re.sub(r"(?<![`\w])primary(?![`\w])", "`primary`", node.parameters[0], flags=re.IGNORECASE)
        return primary.sparkSession.sql(statement).first()[0], node.condition
    aggregate, condition = metric_column(node)
    where = getattr(node, "where", None)
    rows = primary.where(F.expr(where)) if where else primary
    return rows.agg(aggregate.alias("metric")).first()[0], condition


def condition_holds(spark, value: object, condition: Condition | None) -> bool:
    """Whether a metric value satisfies the rule's condition (Spark's own comparison, as for row rules)."""
    if condition is None:
        return True
    return bool(spark.range(1).select(condition_column(F.lit(value), condition)).first()[0])
