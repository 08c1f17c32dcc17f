"""Warehouse layer: the star schema (dimensions, enrollment fact), the restricted PII table and dq_results."""

import dagster as dg

from enrollment_platform.assets.common import DATASETS, key, read_parquet, write_query
from enrollment_platform.assets.curated import curated_path
from enrollment_platform.assets.redacted import restricted_path
from enrollment_platform.config import DimensionSpec, load_catalog, load_pii_policy
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.warehouse import DuckDBWarehouse


def _load_metadata(result) -> dict:
    return {
        "rows": dg.MetadataValue.int(result.rows),
        "inserted": dg.MetadataValue.int(result.inserted),
        "updated": dg.MetadataValue.int(result.updated),
        "deleted": dg.MetadataValue.int(result.deleted),
    }


def build_table_asset(spec: DimensionSpec) -> dg.AssetsDefinition:
    is_fact = bool(spec.references)
    deps = [key("curated", spec.dataset), *(key("warehouse", dim) for dim, _ in spec.references.values())]

    @dg.asset(
        key=key("warehouse", spec.table),
        deps=deps,
        group_name="warehouse",
        description=f"{spec.table}: {'fact' if is_fact else 'dimension'} keyed on {spec.natural_key}, "
        f"surrogate key {spec.surrogate_key}; idempotent upsert.",
        kinds={"duckdb", "table"},
    )
    def table_asset(lake: LocalLake, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
        parquet = lake.path(*curated_path(spec.dataset))
        result = warehouse.load_fact(spec, parquet) if is_fact else warehouse.load_dimension(spec, parquet)
        return dg.MaterializeResult(metadata=_load_metadata(result))

    return table_asset


def build_restricted_asset(table: str, dataset: str, natural_key: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=key("warehouse", table),
        deps=[key("redacted", dataset)],
        group_name="warehouse",
        description=f"{table}: raw PII of {dataset}, restricted to the PII-admin role.",
        kinds={"duckdb", "table"},
    )
    def restricted_asset(lake: LocalLake, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
        spec = DimensionSpec(table, dataset, natural_key, f"{table}_key")
        return dg.MaterializeResult(
            metadata=_load_metadata(warehouse.load_table(spec, lake.path(*restricted_path(table))))
        )

    return restricted_asset


@dg.asset(
    key=key("warehouse", "dq_results"),
    deps=[key("validated", dataset) for dataset in DATASETS],
    group_name="warehouse",
    description="One row per rule and run: evaluated, failed, score, outcome.",
    kinds={"duckdb", "table"},
)
def dq_results_table(
    context: dg.AssetExecutionContext, lake: LocalLake, engine: DuckDBEngine, warehouse: DuckDBWarehouse
) -> dg.MaterializeResult:
    files = [f for f in lake.list("dq_results") if f"run_id={context.run_id}" in f]
    if not files:
        raise dg.Failure(f"no dq_results for run {context.run_id}: did the validated assets run?")
    combined = write_query(
        engine,
        lake,
        f"SELECT * FROM {read_parquet(files)}",
        "staging",
        "dq_results",
        f"{context.run_id}.parquet",
    )
    loaded = warehouse.append_results(
        "dq_results", lake.path("staging", "dq_results", f"{context.run_id}.parquet"), context.run_id
    )
    return dg.MaterializeResult(
        metadata={"rules": dg.MetadataValue.int(combined), "rows_loaded": dg.MetadataValue.int(loaded)}
    )


warehouse_assets = [build_table_asset(spec) for spec in load_catalog().warehouse.values()]
warehouse_assets += [
    build_restricted_asset(table, spec["dataset"], spec["key"])
    for table, spec in load_pii_policy().get("restricted", {}).items()
]
warehouse_assets.append(dq_results_table)
