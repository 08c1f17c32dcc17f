"""Row-level data quality (Spark backend of `transforms.validate.validate_dataset`), rules 2 and 3.

The same DQRule objects, compiled to Spark Columns (`transforms.spark.rules`): a row breaking a blocking rule,
or carrying a load or type error, goes to quarantine with every rule it broke and its original text values; a
value breaking a nullify rule becomes NULL and is flagged; a warn rule only flags. Row-level rules, type checks
and the load check each leave one RuleResult; dataset-level rules are judged on their metric, as the DuckDB
engine judges them (rule types neither engine evaluates are reported "Unsupported", never skipped silently).
"""

from __future__ import annotations

from pyspark.errors import AnalysisException, ArithmeticException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from enrollment_platform.config import Catalog, DatasetSpec
from enrollment_platform.quality.rules import DQRule
from enrollment_platform.quality.sql_compiler import UnsupportedRule, rule_judges_rows
from enrollment_platform.transforms.spark.dedup import kept_candidates_frame
from enrollment_platform.transforms.spark.io import LINEAGE, read_parquet, write_parquet
from enrollment_platform.transforms.spark.rules import (
    condition_holds,
    metric_value,
    prepare_references,
    row_fail_column,
)
from enrollment_platform.transforms.standardize import _invalid_reason
from enrollment_platform.transforms.validate import RuleResult, _result, _typed_columns, judged_metric


def _text_list(items: list[tuple[Column, str]]) -> Column:
    """The array of `text` for each (predicate, text) whose predicate holds (NULL counts as not holding)."""
    if not items:
        return F.array().cast("array<string>")
    return F.filter(F.array(*[F.when(p, F.lit(t)) for p, t in items]), lambda x: x.isNotNull())


def evaluate(
    spec: DatasetSpec, rules: tuple[DQRule, ...], primary: DataFrame, references: dict[str, DataFrame]
) -> tuple[DataFrame, list[DQRule]]:
    """The rows dedup kept (`primary`) with one `_fail_<index>` column per row rule."""
    row_rules = [r for r in rules if rule_judges_rows(r.node)]
    prepared, _ = prepare_references(primary, [r.node for r in rules], references)  # dataset rules read them too
    fails = [row_fail_column(r.node).alias(f"_fail_{r.index}") for r in row_rules]
    return prepared.select(*prepared.columns, *fails), row_rules  # outputs select their columns by name


def judged_frame(evaluated: DataFrame, row_rules: list[DQRule]) -> DataFrame:
    fail = {r.index: F.col(f"_fail_{r.index}") for r in row_rules}
    blocking = [(fail[r.index], r.text) for r in row_rules if r.severity == "blocking"]
    flagged = [(fail[r.index], r.text) for r in row_rules if r.severity != "blocking"]
    return evaluated.select(
        "*",
        F.concat(F.col("_load_errors"), F.col("_type_errors"), _text_list(blocking)).alias("_rejected"),
        F.concat(F.col("_flags"), _text_list(flagged)).alias("_all_flags"),
        _text_list([(~fail[r.index], r.text) for r in row_rules]).alias("_passed"),
    )


def decisions_frame(judged: DataFrame, row_rules: list[DQRule]) -> DataFrame:
    """The validated zone (`transforms.validate.DECISION_COLUMNS`): the rows rejected, and the kept rows with a
    value nulled or a flag added."""
    failed = {r.index: F.coalesce(F.col(f"_fail_{r.index}"), F.lit(False)) for r in row_rules}
    nulled: dict[str, Column] = {}
    for rule in row_rules:
        if rule.severity == "nullify":
            column = rule.columns[0]
            nulled[column] = nulled[column] | failed[rule.index] if column in nulled else failed[rule.index]
    rejected = F.size("_rejected") > 0
    flagged = F.lit(False)
    for rule in row_rules:
        if rule.severity != "blocking":
            flagged = flagged | failed[rule.index]
    nulled_list = F.when(rejected, F.array().cast("array<string>")).otherwise(
        _text_list(list(zip(nulled.values(), nulled, strict=True)))
    )
    return judged.where(rejected | flagged).select(
        "_source_file",
        "_source_row",
        F.col("_raw_line").isNull().alias("_parsed"),
        rejected.alias("_rejected"),
        nulled_list.alias("_nulled"),
        F.col("_all_flags").alias("_flags"),
    )


def validated_frame(spec: DatasetSpec, candidates: DataFrame, decisions: DataFrame) -> DataFrame:
    """The validated rows (as `transforms.validate.validated_rows_sql`): the rows dedup kept (`candidates`) less
    the rejected ones, with the decided nulls and flags."""
    d = decisions.select(*[F.col(c).alias(f"_d{c}") for c in decisions.columns])
    same_row = (
        (candidates["_source_file"] == d["_d_source_file"])
        & (candidates["_source_row"] == d["_d_source_row"])
        & (candidates["_raw_line"].isNull() == d["_d_parsed"])
    )
    joined = candidates.join(d, same_row, "left").where(~F.coalesce(F.col("_d_rejected"), F.lit(False)))
    nulled = {row[0] for row in decisions.select(F.explode("_nulled")).distinct().collect()}
    outputs = [
        F.when(F.array_contains(F.col("_d_nulled"), c), F.lit(None)).otherwise(F.col(c)).alias(c)
        if c in nulled
        else F.col(c)
        for c in (*spec.columns, *spec.derived)
    ]
    flags = F.when(F.col("_d_source_file").isNull(), F.col("_flags")).otherwise(F.col("_d_flags")).alias("_flags")
    return joined.select(*outputs, "_source_file", "_source_row", flags)


def quarantine_frame(spec: DatasetSpec, judged: DataFrame, staged_raw: DataFrame, run_id: str) -> DataFrame:
    raw = staged_raw.select(
        *[F.col(c).alias(f"_r_{c}") for c in (*spec.columns, "_source_file", "_source_row", "_raw_line")]
    )
    rejected = judged.where(F.size("_rejected") > 0)
    condition = (
        (raw["_r__source_file"] == rejected["_source_file"])
        & (raw["_r__source_row"] == rejected["_source_row"])
        & raw["_r__raw_line"].isNull()
        & rejected["_raw_line"].isNull()
    )
    return rejected.join(raw, condition, "left").select(
        *[F.col(f"_r_{c}").cast("string").alias(c) for c in spec.columns],
        "_raw_line",
        "_source_file",
        "_source_row",
        F.lit(run_id).alias("run_id"),
        F.col("_rejected").alias("DataQualityRulesFail"),
        F.col("_all_flags").alias("DataQualityFlags"),
        F.col("_passed").alias("DataQualityRulesPass"),
        F.lit("Failed").alias("DataQualityEvaluationResult"),
    )


def rule_results(
    spec: DatasetSpec, rules: tuple[DQRule, ...], row_rules: list[DQRule], evaluated: DataFrame
) -> list[RuleResult]:
    """One result per type check, the load check and every rule (as `validate_dataset` gives them)."""
    typed = _typed_columns(spec)
    aggregates = [F.count(F.lit(1)).alias("total")]
    aggregates += [
        F.count_if(F.array_contains("_type_errors", _invalid_reason(c))).alias(f"type_{i}") for i, c in enumerate(typed)
    ]
    aggregates.append(F.count_if(F.size("_load_errors") > 0).alias("load"))
    for rule in row_rules:
        aggregates.append(F.count_if(F.col(f"_fail_{rule.index}")).alias(f"failed_{rule.index}"))
        where = getattr(rule.node, "where", None)
        if where:
            aggregates.append(F.count_if(F.expr(where)).alias(f"where_{rule.index}"))
    counts = evaluated.agg(*aggregates).collect()[0].asDict()
    total = counts["total"]

    def share(failed: int) -> float:
        return 1.0 if total == 0 else (total - failed) / total

    results = []
    for i, column in enumerate(typed):
        failed = counts[f"type_{i}"]
        text = f'ColumnDataType "{column.name}" = "{column.type}"'
        outcome = "Passed" if failed == 0 else "Failed"
        results.append(
            RuleResult(
                f"{spec.name}.type.{column.name}", spec.name, text, "blocking", outcome, total, failed, share(failed)
            )
        )
    failed = counts["load"]
    results.append(
        RuleResult(
            f"{spec.name}.load",
            spec.name,
            "rows are readable and carry every required column",
            "blocking",
            "Passed" if failed == 0 else "Failed",
            total,
            failed,
            share(failed),
        )
    )
    judged = {r.index for r in row_rules}
    for rule in rules:
        if rule.index in judged:
            evaluated_rows = counts.get(f"where_{rule.index}", total)
            results.append(_result(rule, evaluated_rows, counts[f"failed_{rule.index}"]))
        else:
            primary = evaluated.select(*[c for c in evaluated.columns if not c.startswith("_fail_")])
            results.append(_metric_result(rule, primary, total))
    return results


def _metric_result(rule: DQRule, primary: DataFrame, total: int) -> RuleResult:
    """A dataset-level rule judged on its metric (as the DuckDB engine's `_metric_result`)."""
    base = RuleResult(rule.rule_id, rule.dataset, rule.text, rule.severity, "Unsupported", total, 0, None)
    try:
        value, condition = metric_value(rule.node, primary)
        passed = condition_holds(primary.sparkSession, value, condition)
    except UnsupportedRule as error:
        base.message = str(error)
        return base
    except (AnalysisException, ArithmeticException) as error:
        base.outcome, base.message = "Error", str(error).splitlines()[0]
        return base
    return judged_metric(base, value, passed)


def validate(
    spark: SparkSession,
    spec: DatasetSpec,
    catalog: Catalog,
    rules: tuple[DQRule, ...],
    standardized_path: str | list[str],
    set_aside_path: str,
    references: dict[str, str | DataFrame | None],
    staged_raw: str | list[str],
    run_id: str,
    decisions_path: str,
    quarantine_path: str,
) -> list[RuleResult]:
    """Split the rows dedup kept (the standardized rows not set aside) into kept rows (nulled values, flags) and
    quarantined rows: write the decisions (the validated zone) and the quarantined rows; return rule results.

    `references` maps each dataset a ReferentialIntegrity rule names to its curated Parquet path (or a
    DataFrame; None when nothing is curated yet: no key is known), `staged_raw` the batch's staged raw files.
    """
    frames = {name: _reference_frame(spark, catalog, name, source) for name, source in references.items()}
    candidates = kept_candidates_frame(read_parquet(spark, standardized_path), read_parquet(spark, set_aside_path))
    evaluated, row_rules = evaluate(spec, rules, candidates, frames)
    evaluated = evaluated.cache()
    try:
        judged = judged_frame(evaluated, row_rules)
        write_parquet(decisions_frame(judged, row_rules), decisions_path, order_by=(*LINEAGE, "_parsed"))
        quarantined = quarantine_frame(spec, judged, read_parquet(spark, staged_raw), run_id)
        write_parquet(quarantined, quarantine_path, order_by=LINEAGE)
        return rule_results(spec, rules, row_rules, evaluated)
    finally:
        evaluated.unpersist()


def _reference_frame(spark: SparkSession, catalog: Catalog, name: str, source) -> DataFrame:
    if isinstance(source, DataFrame):
        return source
    if source is None:
        columns = ", ".join(f"CAST(NULL AS STRING) AS `{c}`" for c in catalog.datasets[name].columns)
        return spark.sql(f"SELECT {columns} LIMIT 0")
    return read_parquet(spark, source)
