"""Validated layer: the ruleset applied row by row; failing rows go to the lake's quarantine with every reason.

Writes `<lake>/quarantine/<dataset>/batch=<batch>/rows-<files>.parquet` (original values, failed and passed
rules, source file and row, run id) and `<lake>/dq_results/dataset=<dataset>/run_id=<run>/results.parquet`
(one row per rule). The zone holds the batch's decisions (`transforms.validate.DECISION_COLUMNS`); the validated
rows are the rows dedup kept, decided (`validated_source`).
"""

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq

from enrollment_platform.assets.common import (
    DATASETS,
    batch_of,
    count_rows,
    key,
    layer_asset,
    markdown_table,
    read_parquet,
    staged,
    staged_parts,
    step_arguments,
)
from enrollment_platform.assets.deduped import curated_state_source, curated_state_uri, kept_candidates_source
from enrollment_platform.assets.raw import launches_job, staged_raw_source, staged_raw_uris
from enrollment_platform.bookmarks import batch_content_id
from enrollment_platform.config import load_catalog
from enrollment_platform.quality.results import dq_score, rows_judged, rule_results_path, write_rule_results
from enrollment_platform.quality.rules import DQRule, all_dataset_rules, references_of
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.job_runner import JobRunner
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.transforms.validate import validate_dataset, validated_rows_sql


def quarantine_parts(lake: LocalLake, dataset: str, batch: str) -> list[str]:
    """The quarantined rows of the batch's files: `quarantine/<dataset>/batch=<dates>/rows-<files id>.parquet`."""
    return ["quarantine", dataset, f"batch={batch}", f"rows-{batch_content_id(lake, batch, dataset)}.parquet"]


def validated_source(lake: LocalLake, dataset: str, batch: str) -> str:
    """The batch's validated rows (a SQL relation): the rows dedup kept, less the rejected, with the decided nulls
    and flags."""
    spec = load_catalog().datasets[dataset]
    decisions = staged(lake, "validated", dataset, batch)
    nulled = pc.unique(pc.list_flatten(pq.read_table(decisions, columns=["_nulled"]).column("_nulled"))).to_pylist()
    candidates = kept_candidates_source(lake, dataset, batch)
    return validated_rows_sql([*spec.columns, *spec.derived], candidates, read_parquet(decisions), nulled)


def reference_source(lake: LocalLake, dataset: str) -> str:
    """The curated rows of a referenced dataset; an empty table with its columns when none are curated yet."""
    state = curated_state_source(lake, dataset)
    if state is not None:
        return state
    columns = ", ".join(f'NULL::VARCHAR AS "{c}"' for c in load_catalog().datasets[dataset].columns)
    return f"(SELECT {columns} LIMIT 0)"


def build_validated_asset(dataset: str, rules: tuple[DQRule, ...]) -> dg.AssetsDefinition:
    references = references_of(dataset, rules)

    @layer_asset(
        "validated",
        dataset,
        f"{dataset}: rows that pass every blocking rule; the others are quarantined with reasons.",
        deps=[key("deduped", dataset), *(key("curated", r) for r in references)],
    )
    def validated_asset(
        context: dg.AssetExecutionContext, lake: LocalLake, engine: DuckDBEngine, job_runner: JobRunner
    ) -> dg.MaterializeResult:
        batch = batch_of(context)
        if launches_job(job_runner, lake, dataset, batch):
            launched = job_runner.run(context, "validate", _step_arguments(context, lake, dataset, batch, references))
            results = read_rule_results(lake, dataset, context.run.run_id)
            metadata = dict(launched.metadata or {})
        else:
            results = _validate_in_process(context, lake, engine, dataset, batch, rules, references)
            quarantined = _count(engine, lake, quarantine_parts(lake, dataset, batch))
            metadata = {
                "rows_kept": dg.MetadataValue.int(rows_judged(results, dataset) - quarantined),
                "rows_quarantined": dg.MetadataValue.int(quarantined),
                "dq_score": dg.MetadataValue.float(dq_score(results)),
                "rules_failed": dg.MetadataValue.int(sum(r["outcome"] == "Failed" for r in results)),
            }
        for result in results:
            if result["outcome"] in ("Unsupported", "Error"):
                context.log.warning(f"{result['rule_id']} {result['rule']}: {result['outcome']}: {result['message']}")
        columns = ["rule_id", "rule", "severity", "outcome", "evaluated", "failed", "score"]
        metadata["rules"] = dg.MetadataValue.md(markdown_table(results, columns, limit=50))
        return dg.MaterializeResult(metadata=metadata)

    return validated_asset


def _validate_in_process(context, lake, engine, dataset: str, batch: str, rules, references) -> list[dict]:
    """The DuckDB body: split the batch into kept and quarantined rows, write the rule results; return them."""
    catalog = load_catalog()
    con = engine.connect()
    try:
        with (
            lake.atomic_write(*staged_parts("validated", dataset, batch)) as decisions,
            lake.atomic_write(*quarantine_parts(lake, dataset, batch)) as quarantined,
        ):
            results = validate_dataset(
                con,
                catalog.datasets[dataset],
                rules,
                candidates=kept_candidates_source(lake, dataset, batch),
                references={r: reference_source(lake, r) for r in references},
                staged_raw=staged_raw_source(lake, dataset, batch),
                run_id=context.run.run_id,
                decisions_path=decisions,
                quarantine_path=quarantined,
            )
    finally:
        con.close()
    write_rule_results(lake, dataset, context.run.run_id, results)
    return [r.to_dict() for r in results]


def _step_arguments(context, lake, dataset: str, batch: str, references: list[str]) -> dict[str, str]:
    """The launched validate step's inputs and outputs (the same lake objects the DuckDB body uses)."""
    given = {name: curated_state_uri(lake, name) for name in references}
    paths = {
        "input": lake.uri(*staged_parts("standardized", dataset, batch)),
        "deduped": lake.uri(*staged_parts("deduped", dataset, batch)),
        "output": lake.uri(*staged_parts("validated", dataset, batch)),
        "staged_raw": staged_raw_uris(lake, dataset, batch),
        "quarantine_output": lake.uri(*quarantine_parts(lake, dataset, batch)),
        "results_output": lake.uri(*rule_results_path(lake, dataset, context.run.run_id)),
        "references": ",".join(f"{name}={uri}" for name, uri in given.items() if uri) or None,
    }
    return step_arguments(context, lake, "validate", dataset, batch, **paths)


def read_rule_results(lake, dataset: str, run_id: str) -> list[dict]:
    """This run's rule results of a dataset, as the step wrote them."""
    return pq.read_table(lake.path(*rule_results_path(lake, dataset, run_id))).to_pylist()


def _count(engine, lake, parts: list[str]) -> int:
    con = engine.connect()
    try:
        return count_rows(con, lake.path(*parts))
    finally:
        con.close()


def build_validated_assets(rules_by_dataset: dict[str, tuple[DQRule, ...]] | None = None) -> list:
    rules_by_dataset = rules_by_dataset or all_dataset_rules()
    return [build_validated_asset(dataset, rules_by_dataset[dataset]) for dataset in DATASETS]
