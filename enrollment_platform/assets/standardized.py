"""Standardized layer: canonical column names and types, parsed dates, trimmed and cased text, full_name."""

import dagster as dg

from enrollment_platform.assets.common import DATASETS, key, write_query
from enrollment_platform.assets.raw import staged_raw_source
from enrollment_platform.config import load_catalog
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.transforms.standardize import standardize_sql


def build_standardized_asset(dataset: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=key("standardized", dataset),
        deps=[key("raw", dataset)],
        group_name="standardized",
        description=f"{dataset}: canonical columns and types; values that do not parse carry a reason.",
        kinds={"duckdb", "parquet"},
    )
    def standardized_asset(lake: LocalLake, engine: DuckDBEngine) -> dg.MaterializeResult:
        catalog = load_catalog()
        spec = catalog.datasets[dataset]
        source = staged_raw_source(lake, dataset)
        query = standardize_sql(spec, catalog, source)
        rows = write_query(engine, lake, query, "staging", "standardized", dataset, f"{dataset}.parquet")
        con = engine.connect()
        errors = con.execute(
            f"SELECT count(*) FILTER (WHERE len(_type_errors) > 0), count(*) FILTER (WHERE len(_flags) > 0), "
            f"count(*) FILTER (WHERE _exact_duplicate) "
            f"FROM read_parquet('{lake.path('staging', 'standardized', dataset, dataset + '.parquet')}')"
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
