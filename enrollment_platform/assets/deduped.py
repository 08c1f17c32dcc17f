"""Deduplicated layer: exact duplicates and superseded versions of a record are set aside, with a reason.

A batch row is compared with the batch and with the curated state of earlier batches, so the newest version of
a record wins whatever order the files arrived in. The zone holds the rows set aside; the kept rows are the
standardized rows not among them (`transforms.dedup.kept_candidates_sql`).
"""

import dagster as dg

from enrollment_platform.assets.common import (
    DATASETS,
    batch_of,
    count_rows,
    key,
    layer_asset,
    read_parquet,
    staged,
    staged_parts,
    step_arguments,
    write_query,
)
from enrollment_platform.assets.raw import launches_job
from enrollment_platform.config import load_catalog
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.job_runner import JobRunner
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.transforms.dedup import kept_candidates_sql, set_aside_sql


def curated_parts(dataset: str) -> list[str]:
    """The curated layer's current rows of a dataset (all batches so far)."""
    return ["curated", dataset, f"{dataset}.parquet"]


def curated_state_path(lake: LocalLake, dataset: str) -> str:
    return lake.path(*curated_parts(dataset))


def curated_state_source(lake: LocalLake, dataset: str) -> str | None:
    return read_parquet(curated_state_path(lake, dataset)) if lake.exists(*curated_parts(dataset)) else None


def curated_state_uri(lake: LocalLake, dataset: str) -> str | None:
    """The curated state for a launched job step; None before the first batch is curated."""
    return lake.uri(*curated_parts(dataset)) if lake.exists(*curated_parts(dataset)) else None


def kept_candidates_source(lake: LocalLake, dataset: str, batch: str) -> str:
    """The batch's rows dedup kept (a SQL relation): standardized rows not set aside."""
    standardized = read_parquet(staged(lake, "standardized", dataset, batch))
    return kept_candidates_sql(standardized, read_parquet(staged(lake, "deduped", dataset, batch)))


def build_deduped_asset(dataset: str) -> dg.AssetsDefinition:
    @layer_asset(
        "deduped",
        dataset,
        f"{dataset}: the rows set aside as duplicates, each with the reason and the row it lost to.",
        deps=[key("standardized", dataset)],
    )
    def deduped_asset(
        context: dg.AssetExecutionContext, lake: LocalLake, engine: DuckDBEngine, job_runner: JobRunner
    ) -> dg.MaterializeResult:
        catalog = load_catalog()
        batch = batch_of(context)
        if launches_job(job_runner, lake, dataset, batch):
            paths = {
                "input": lake.uri(*staged_parts("standardized", dataset, batch)),
                "output": lake.uri(*staged_parts("deduped", dataset, batch)),
                "state": curated_state_uri(lake, dataset),
            }
            return job_runner.run(context, "dedup", step_arguments(context, lake, "dedup", dataset, batch, **paths))
        source = read_parquet(staged(lake, "standardized", dataset, batch))
        state = curated_state_source(lake, dataset)
        query = set_aside_sql(catalog.datasets[dataset], catalog.last_modified_column, source, state)
        duplicates = write_query(engine, lake, query, *staged_parts("deduped", dataset, batch))
        con = engine.connect()
        exact = count_rows(con, staged(lake, "deduped", dataset, batch), "_exact_duplicate")
        con.close()
        return dg.MaterializeResult(
            metadata={
                "rows": dg.MetadataValue.int(duplicates),
                "rows_duplicate": dg.MetadataValue.int(duplicates),
                "exact_duplicates": dg.MetadataValue.int(exact),
                "superseded_versions": dg.MetadataValue.int(duplicates - exact),
            }
        )

    return deduped_asset


deduped_assets = [build_deduped_asset(dataset) for dataset in DATASETS]
