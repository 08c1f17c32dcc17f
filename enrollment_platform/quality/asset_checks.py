"""Dagster asset checks built from the rulesets (pandera), plus the non-blocking health checks.

Rule checks validate what the validated layer kept: a blocking rule that still fails there (a dataset-level
rule such as RowCount, or a row the quarantine should have caught) stops every downstream asset; warn and
nullify rules report without stopping. Their metadata says what the row-level engine found in the input:
failed count, failure rate and a sample of failing keys (primary keys only, never raw values).

Each step evaluates every check of one asset that it can (all rules of a dataset; a curated asset's non-blocking
health checks), reading the data it needs once and only the columns it needs.
"""

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from enrollment_platform.assets.common import batch_of, key
from enrollment_platform.assets.curated import STATE_ROWS, state_version
from enrollment_platform.assets.deduped import curated_state_path
from enrollment_platform.assets.validated import quarantine_parts, validated_source
from enrollment_platform.config import load_catalog, load_quality_settings
from enrollment_platform.quality.polars_rules import reference_columns
from enrollment_platform.quality.rule_outcomes import SAMPLE_KEYS, RuleOutcome, judge_relation
from enrollment_platform.quality.rules import DQRule, references_of
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.raw import RawLayer


def check_name(rule: DQRule) -> str:
    """A Dagster-safe, readable name: `r3_columnvalues_marks`."""
    node = rule.node
    words = [f"r{rule.index}", getattr(node, "rule_type", "composite"), *getattr(node, "parameters", ())[:1]]
    return re.sub(r"[^a-z0-9_]+", "_", "_".join(words).lower()).strip("_")[:60]


def _latest_rule_results(lake: LocalLake, dataset: str, run_id: str) -> dict[str, dict]:
    """This run's dq_results of the dataset, else the newest run's (a check run on its own)."""
    files = lake.list("dq_results", f"dataset={dataset}", f"run_id={run_id}")  # not every run's files
    if not files:
        files = sorted(lake.list("dq_results", f"dataset={dataset}"), key=lambda f: Path(f).stat().st_mtime)[-1:]
    if not files:
        return {}
    return {row["rule_id"]: row for row in pl.read_parquet(files[0]).to_dicts()}


def _quarantined_keys(lake: LocalLake, dataset: str, batch: str, rule_text: str, primary_key: str) -> list[str]:
    path = lake.path(*quarantine_parts(lake, dataset, batch))
    if not Path(path).exists():
        return []
    rows = duckdb.execute(
        f'SELECT "{primary_key}" FROM read_parquet(?) WHERE list_contains(DataQualityRulesFail, ?) '
        f"ORDER BY _source_file, _source_row LIMIT {SAMPLE_KEYS}",
        [path, rule_text],
    ).fetchall()
    return [str(r[0]) for r in rows]


def _result(dataset: str, batch: str, rule: DQRule, outcome: RuleOutcome, found: dict, lake: LocalLake):
    primary_key = load_catalog().datasets[dataset].primary_key
    metadata = {"rule": rule.text, "severity": rule.severity}
    if found:
        metadata.update(
            input_evaluated=found["evaluated"],
            input_failed=found["failed"],
            input_failure_rate=round(found["failed"] / found["evaluated"], 6) if found["evaluated"] else 0.0,
        )
    if outcome.unsupported is not None:
        metadata["unsupported"] = outcome.unsupported
        passed = False
    else:
        passed = outcome.failed == 0
        metadata["output_failed"] = outcome.failed
        sample = outcome.sample_keys
        if rule.severity == "blocking":
            sample = sample or _quarantined_keys(lake, dataset, batch, rule.text, primary_key)
        metadata["sample_failing_keys"] = dg.MetadataValue.json(sample)
    severity = dg.AssetCheckSeverity.ERROR if rule.severity == "blocking" else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        asset_key=key("validated", dataset),
        check_name=check_name(rule),
        passed=passed,
        severity=severity,
        metadata=metadata,
    )


def _state_frame(lake: LocalLake, dataset: str, columns: list[str] | None = None) -> pl.DataFrame:
    """The curated rows of a dataset, only `columns` when given (empty, with its columns, before the first batch)."""
    path = curated_state_path(lake, dataset)
    if Path(path).exists():
        return pl.read_parquet(path, columns=columns)
    empty = pl.DataFrame(schema=dict.fromkeys(load_catalog().datasets[dataset].columns, pl.String))
    return empty if columns is None else empty.select(columns)


def build_rule_checks(dataset: str, rules: tuple[DQRule, ...]) -> dg.AssetChecksDefinition:
    """One asset check per rule of `dataset`, evaluated together with pandera on the validated rows."""
    specs = [
        dg.AssetCheckSpec(
            name=check_name(rule),
            asset=key("validated", dataset),
            blocking=rule.severity == "blocking",
            description=f"{rule.severity}: {rule.text}",
        )
        for rule in rules
    ]
    looked_up = reference_columns(rule.node for rule in rules)
    references = {table: looked_up.get(table) for table in references_of(dataset, rules)}
    primary_key = load_catalog().datasets[dataset].primary_key

    @dg.multi_asset_check(specs=specs, name=f"{dataset}_dq_rules")
    def rule_checks(context: dg.AssetCheckExecutionContext, lake: LocalLake, engine: DuckDBEngine):
        batch = batch_of(context)
        refs = {table: _state_frame(lake, table, columns) for table, columns in references.items()}
        # chunk by chunk where rules judge rows alone, only the columns they read (uniqueness reads its key whole)
        con = engine.connect()
        try:
            validated = validated_source(lake, dataset, batch)
            outcomes = judge_relation(list(rules), con, validated, primary_key, refs)
        finally:
            con.close()
        found = _latest_rule_results(lake, dataset, context.run.run_id)
        for rule in rules:
            yield _result(dataset, batch, rule, outcomes[rule.rule_id], found.get(rule.rule_id, {}), lake)

    return rule_checks


def build_freshness_check(dataset: str, max_age_hours: float) -> dg.AssetChecksDefinition:
    """Warn when the newest raw file of the dataset is older than the configured age."""

    @dg.asset_check(
        asset=key("raw", dataset),
        name="raw_freshness",
        description=f"The newest raw file is at most {max_age_hours} hours old.",
    )
    def freshness(raw_layer: RawLayer) -> dg.AssetCheckResult:
        files = raw_layer.inventory(load_catalog()).files[dataset]
        if not files:
            return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={"files": 0})
        newest = max(f.modified_ns for f in files) / 1e9
        age_hours = (datetime.now(UTC).timestamp() - newest) / 3600
        return dg.AssetCheckResult(
            passed=age_hours <= max_age_hours,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"newest_file_age_hours": round(age_hours, 2), "max_age_hours": max_age_hours},
        )

    return freshness


HealthCheck = Callable[[dg.AssetCheckExecutionContext, LocalLake], dg.AssetCheckResult]


def near_duplicate_check(dataset: str, columns: list[str]) -> tuple[str, HealthCheck]:
    """Warn when distinct ids share the same identifying attributes (the same entity under a new id)."""

    def evaluate(context: dg.AssetCheckExecutionContext, lake: LocalLake) -> dg.AssetCheckResult:
        digest = hashlib.sha256("\x1f".join(columns).encode()).hexdigest()[:12]
        figures, version = by_state_version(
            lake, dataset, f"near_duplicates-{digest}", lambda: near_duplicate_groups(lake, dataset, columns)
        )
        return dg.AssetCheckResult(
            passed=figures["groups"] == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "groups": figures["groups"],
                "sample_id_groups": dg.MetadataValue.json(figures["sample_id_groups"]),
                "state_version": version,
            },
        )

    return f"Distinct ids with the same {', '.join(columns)} (case-insensitive).", evaluate


def near_duplicate_groups(lake: LocalLake, dataset: str, columns: list[str]) -> dict:
    """How many groups of distinct ids share `columns` in the curated state, and a sample of their ids."""
    primary_key = load_catalog().datasets[dataset].primary_key
    frame = _state_frame(lake, dataset, list(dict.fromkeys([primary_key, *columns])))
    normalized = [pl.col(c).cast(pl.String).str.to_lowercase().str.strip_chars().alias(c) for c in columns]
    # only the rows of shared attributes gather their ids: a list per group of the whole state cost 1.1 s more
    # for 1.25 M students
    groups = (
        frame.lazy()
        .select(pl.col(primary_key), *normalized)
        .drop_nulls(columns)
        .filter(pl.len().over(columns) > 1)
        .group_by(columns)
        .agg(pl.col(primary_key).sort().alias("ids"))
        .sort(pl.col("ids").list.first())
        .collect()
    )
    return {"groups": groups.height, "sample_id_groups": [list(ids) for ids in groups["ids"].head(SAMPLE_KEYS)]}


def by_state_version(lake: LocalLake, dataset: str, name: str, compute: Callable[[], dict]) -> tuple[dict, str]:
    """A figure of the curated state (JSON), computed once per state version (`staging/health/<dataset>/
    <version>-<name>.json`): a run that left the state as it was does not read it again. A state without a
    version (written by a launched step) is always read. Returns the figure and the version ('' for none)."""
    path = curated_state_path(lake, dataset)
    version = state_version(path) if Path(path).exists() else ""
    if not version:
        return compute(), version
    parts = ["staging", "health", dataset, f"{version}-{name}.json"]
    if lake.exists(*parts):
        return json.loads(Path(lake.path(*parts)).read_text()), version
    figures = compute()
    with lake.atomic_write(*parts) as temporary:
        Path(temporary).write_text(json.dumps(figures))
    return figures, version


def row_count_drop_check(dataset: str, max_drop: float) -> tuple[str, HealthCheck]:
    """Warn when the curated state's row count fell by more than `max_drop` (a share) against the previous
    materialization. The state's count (`state_rows`), not the batch's rows out: a small daily batch after a large
    first load is no drop."""

    def evaluate(context: dg.AssetCheckExecutionContext, lake: LocalLake) -> dg.AssetCheckResult:
        records = context.instance.fetch_materializations(key("curated", dataset), limit=2).records
        counts = [r.asset_materialization.metadata.get(STATE_ROWS) for r in records if r.asset_materialization]
        counts = [c.value for c in counts if c is not None]
        if len(counts) < 2 or not counts[1]:
            current = counts[0] if counts else None
            return dg.AssetCheckResult(
                passed=True, severity=dg.AssetCheckSeverity.WARN, metadata={"previous": None, "current": current}
            )
        current, previous = counts
        drop = (previous - current) / previous
        return dg.AssetCheckResult(
            passed=drop <= max_drop,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"previous": previous, "current": current, "drop": round(drop, 4)},
        )

    return f"the curated state's rows fell by at most {max_drop:.0%} against the previous materialization.", evaluate


def build_curated_health_checks(
    dataset: str, max_drop: float | None, near_duplicate_columns: list[str] | None = None
) -> dg.AssetChecksDefinition:
    """The non-blocking checks of `curated/<dataset>` in one step: `near_duplicate_entities` (with columns) and
    `row_count_drop` (with a maximum drop). Each can run alone (the UI's check selection); one that raises does not
    keep the others from reporting, and its error still fails the step (which blocks nothing: they are warnings)."""
    asset = key("curated", dataset)
    checks: dict[str, tuple[str, HealthCheck]] = {}
    if near_duplicate_columns:
        checks["near_duplicate_entities"] = near_duplicate_check(dataset, near_duplicate_columns)
    if max_drop is not None:
        checks["row_count_drop"] = row_count_drop_check(dataset, max_drop)
    specs = [dg.AssetCheckSpec(name, asset=asset, description=text) for name, (text, _) in checks.items()]

    @dg.multi_asset_check(specs=specs, name=f"{dataset}_curated_health", can_subset=True)
    def curated_health(context: dg.AssetCheckExecutionContext, lake: LocalLake) -> Iterator[dg.AssetCheckResult]:
        errors = []
        for name, (_, evaluate) in checks.items():
            if dg.AssetCheckKey(asset, name) not in context.selected_asset_check_keys:
                continue
            try:
                result = evaluate(context, lake)
            except Exception as error:  # reported once the other checks of the step have
                context.log.error(f"check {name} of {asset.to_user_string()} could not be evaluated: {error!r}")
                errors.append(error)
                continue
            yield dg.AssetCheckResult(
                asset_key=asset,
                check_name=name,
                passed=result.passed,
                severity=result.severity,
                metadata=result.metadata,
                description=result.description,
            )
        if errors:
            raise errors[0]

    return curated_health


def build_quality_checks(rules_by_dataset: dict[str, tuple[DQRule, ...]]) -> list[dg.AssetChecksDefinition]:
    settings = load_quality_settings()
    checks = [build_rule_checks(dataset, rules) for dataset, rules in rules_by_dataset.items() if rules]
    near_duplicates = settings.get("near_duplicates", {})
    for dataset in rules_by_dataset:
        checks.append(build_freshness_check(dataset, float(settings.get("raw_max_age_hours", 48))))
    max_drop = float(settings.get("max_row_count_drop", 0.5))
    for dataset in dict.fromkeys([*near_duplicates, *rules_by_dataset]):
        drop = max_drop if dataset in rules_by_dataset else None
        checks.append(build_curated_health_checks(dataset, drop, near_duplicates.get(dataset)))
    return checks
