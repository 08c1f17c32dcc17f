"""Validated layer: the ruleset applied row by row; failing rows go to the lake's quarantine with every reason.

Writes `<lake>/quarantine/<dataset>/batch=<batch>/rows-<files>.parquet` (original values, failed and passed
rules, source file and row, run id) and `<lake>/dq_results/dataset=<dataset>/run_id=<run>/results.parquet`
(one row per rule).
"""

import dagster as dg

from enrollment_platform.assets.common import (
    DATASETS,
    batch_of,
    count_rows,
    key,
    layer_asset,
    markdown_table,
    staged,
    staged_parts,
)
from enrollment_platform.assets.deduped import curated_state_source
from enrollment_platform.assets.raw import staged_raw_source
from enrollment_platform.bookmarks import batch_content_id
from enrollment_platform.config import load_catalog
from enrollment_platform.quality.results import write_rule_results
from enrollment_platform.quality.rules import DQRule, all_dataset_rules, references_of
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.transforms.validate import validate_dataset


def quarantine_parts(lake: LocalLake, dataset: str, batch: str) -> list[str]:
    """The quarantined rows of the batch's files: `quarantine/<dataset>/batch=<dates>/rows-<files id>.parquet`."""
    return ["quarantine", dataset, f"batch={batch}", f"rows-{batch_content_id(lake, batch, dataset)}.parquet"]


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
        context: dg.AssetExecutionContext, lake: LocalLake, engine: DuckDBEngine
    ) -> dg.MaterializeResult:
        catalog = load_catalog()
        batch = batch_of(context)
        con = engine.connect()
        try:
            with (
                lake.atomic_write(*staged_parts("validated", dataset, batch)) as kept,
                lake.atomic_write(*quarantine_parts(lake, dataset, batch)) as quarantined,
            ):
                results = validate_dataset(
                    con,
                    catalog.datasets[dataset],
                    catalog,
                    rules,
                    deduped_path=staged(lake, "deduped", dataset, batch),
                    references={r: reference_source(lake, r) for r in references},
                    staged_raw=staged_raw_source(lake, dataset, batch),
                    run_id=context.run.run_id,
                    kept_path=kept,
                    quarantine_path=quarantined,
                )
            rows_kept = count_rows(con, staged(lake, "validated", dataset, batch))
            rows_quarantined = count_rows(con, lake.path(*quarantine_parts(lake, dataset, batch)))
        finally:
            con.close()
        write_rule_results(engine, lake, dataset, context.run.run_id, results)
        for result in results:
            if result.outcome in ("Unsupported", "Error"):
                context.log.warning(f"{result.rule_id} {result.rule}: {result.outcome}: {result.message}")
        return dg.MaterializeResult(
            metadata={
                "rows_kept": dg.MetadataValue.int(rows_kept),
                "rows_quarantined": dg.MetadataValue.int(rows_quarantined),
                "dq_score": dg.MetadataValue.float(_score(results)),
                "rules": dg.MetadataValue.md(
                    markdown_table(
                        [r.to_dict() for r in results],
                        ["rule_id", "rule", "severity", "outcome", "evaluated", "failed", "score"],
                        limit=50,
                    )
                ),
            }
        )

    return validated_asset


def _score(results) -> float:
    scored = [r.score for r in results if r.score is not None]
    return round(sum(scored) / len(scored), 6) if scored else 1.0


def build_validated_assets(rules_by_dataset: dict[str, tuple[DQRule, ...]] | None = None) -> list:
    rules_by_dataset = rules_by_dataset or all_dataset_rules()
    return [build_validated_asset(dataset, rules_by_dataset[dataset]) for dataset in DATASETS]
