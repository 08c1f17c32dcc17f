"""The dataset rulesets as pandera schemas (polars backend), validated on materialized data.

One pandera Check per rule, named by the rule id. Row-level rules return a boolean per row, so the failing
rows are known; dataset-level rules (RowCount, Completeness, thresholds, …) return one boolean.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pandera.polars as pa
import polars as pl

from enrollment_platform.quality.dqdl.ast import Rule
from enrollment_platform.quality.polars_rules import condition_expr, metric_condition, metric_expr, row_fail_expr
from enrollment_platform.quality.rules import DQRule
from enrollment_platform.quality.sql_compiler import UnsupportedRule, custom_sql, rule_judges_rows


def _row_check(rule: DQRule, references: Mapping[str, pl.DataFrame]) -> pa.Check:
    fail = row_fail_expr(rule.node, references)
    return pa.Check(lambda data: data.lazyframe.select((~fail).alias("passed")), name=rule.rule_id)


def _custom_sql_value(frame: pl.DataFrame, sql: str):
    con = duckdb.connect()
    con.register("primary", frame.to_arrow())
    return con.execute(f"SELECT * FROM ({custom_sql(sql)})").fetchone()[0]


def _dataset_check(rule: DQRule, references: Mapping[str, pl.DataFrame]) -> pa.Check:
    node = rule.node
    if not isinstance(node, Rule):
        raise UnsupportedRule("composite rules with thresholds are not evaluated")
    condition = metric_condition(node)
    if node.rule_type == "CustomSql":

        def custom(data):
            value = _custom_sql_value(data.lazyframe.collect(), node.parameters[0])
            return data.lazyframe.select(condition_expr(pl.lit(value), condition).fill_null(False).alias("passed"))

        return pa.Check(custom, name=rule.rule_id)
    metric = metric_expr(node, references)
    if node.where:
        return pa.Check(
            lambda data: (
                data.lazyframe.filter(pl.sql_expr(node.where))
                .select(condition_expr(metric, condition).fill_null(False).alias("passed"))
                .select(pl.col("passed").first().fill_null(True))
            ),
            name=rule.rule_id,
        )
    return pa.Check(
        lambda data: data.lazyframe.select(condition_expr(metric, condition).fill_null(False).alias("passed")),
        name=rule.rule_id,
    )


def build_check(rule: DQRule, references: Mapping[str, pl.DataFrame]) -> pa.Check:
    """The pandera Check of one rule; raises UnsupportedRule for rules this engine cannot evaluate."""
    if rule_judges_rows(rule.node):
        return _row_check(rule, references)
    return _dataset_check(rule, references)


def rule_schema(
    rules: list[DQRule], references: Mapping[str, pl.DataFrame]
) -> tuple[pa.DataFrameSchema, dict[str, str]]:
    """The pandera schema of the rules it can evaluate, and the reason for each rule it cannot (by rule id).
    Built once, it validates any number of frames (the referenced keys are gathered here, not per frame)."""
    checks, unsupported = [], {}
    for rule in rules:
        try:
            checks.append(build_check(rule, references))
        except UnsupportedRule as error:
            unsupported[rule.rule_id] = str(error)
    return pa.DataFrameSchema(checks=checks), unsupported


def failing_rows(
    rules: list[DQRule],
    frame: pl.DataFrame,
    references: Mapping[str, pl.DataFrame],
    schema: tuple[pa.DataFrameSchema, dict[str, str]] | None = None,
) -> dict[str, set[int] | str]:
    """Validate `frame` against every rule: failing row indexes per rule id (empty set = passed).

    A dataset-level failure is reported as the set {0}; a rule pandera cannot evaluate maps to the reason.
    `schema`: the rules' `rule_schema`, when already built.
    """
    validator, unsupported = schema or rule_schema(rules, references)
    outcome: dict[str, set[int] | str] = {r.rule_id: unsupported.get(r.rule_id, set()) for r in rules}
    try:
        validator.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        failures = errors.failure_cases
        for check_name, index in failures.select("check", "index").iter_rows():
            target = outcome.get(check_name)
            if isinstance(target, set):
                target.add(int(index) if index is not None else 0)
    return outcome
