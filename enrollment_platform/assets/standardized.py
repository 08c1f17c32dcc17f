"""Standardized layer: canonical column names and types, parsed dates, trimmed and cased text, full_name."""

import dagster as dg

from enrollment_platform.assets.common import (
    DATASETS,
    batch_of,
    key,
    layer_asset,
    staged,
    staged_parts,
    step_arguments,
    write_query,
)
from enrollment_platform.assets.raw import launches_job, staged_raw_source, staged_raw_uris
from enrollment_platform.config import load_catalog
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.job_runner import JobRunner
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.transforms.standardize import standardize_sql


def build_standardized_asset(dataset: str) -> dg.AssetsDefinition:
    @layer_asset(
        "standardized",
        dataset,
        f"{dataset}: canonical columns and types; values that do not parse carry a reason.",
        deps=[key("raw", dataset)],
    )
    def standardized_asset(
        context: dg.AssetExecutionContext, lake: LocalLake, engine: DuckDBEngine, job_runner: JobRunner
    ) -> dg.MaterializeResult:
        catalog = load_catalog()
        batch = batch_of(context)
        if launches_job(job_runner, lake, dataset, batch):
            inputs = staged_raw_uris(lake, dataset, batch)
            output = lake.uri(*staged_parts("standardized", dataset, batch))
            arguments = step_arguments(context, lake, "standardize", dataset, batch, input=inputs, output=output)
            return job_runner.run(context, "standardize", arguments)
        query = standardize_sql(catalog.datasets[dataset], catalog, staged_raw_source(lake, dataset, batch))
        rows = write_query(engine, lake, query, *staged_parts("standardized", dataset, batch))
        con = engine.connect()
        errors = con.execute(
            "SELECT count(*) FILTER (WHERE len(_type_errors) > 0), count(*) FILTER (WHERE len(_flags) > 0), "
            "count(*) FILTER (WHERE _exact_duplicate) FROM read_parquet(?)",
            [staged(lake, "standardized", dataset, batch)],
        ).fetchone()
        con.close()
        return dg.MaterializeResult(
            metadata={
                "rows": dg.MetadataValue.int(rows),
                "rows_with_type_errors": dg.MetadataValue.int(errors[0]),
                "rows_with_nulled_values": dg.MetadataValue.int(errors[1]),
                "exact_duplicates_marked": dg.MetadataValue.int(errors[2]),
            }
        )

    return standardized_asset


standardized_assets = [build_standardized_asset(dataset) for dataset in DATASETS]
