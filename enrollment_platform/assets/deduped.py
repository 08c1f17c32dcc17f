"""Deduplicated layer: exact duplicates and superseded versions of a record are set aside, with a reason."""

import dagster as dg

from enrollment_platform.assets.common import DATASETS, count_rows, key, staged, write_query
from enrollment_platform.config import load_catalog
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.transforms.dedup import ranked_sql


def build_deduped_asset(dataset: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=key("deduped", dataset),
        deps=[key("standardized", dataset)],
        group_name="deduped",
        description=f"{dataset}: one row per record; removed duplicates keep the reason and the row they lost to.",
        kinds={"duckdb", "parquet"},
    )
    def deduped_asset(lake: LocalLake, engine: DuckDBEngine) -> dg.MaterializeResult:
        catalog = load_catalog()
        source = f"read_parquet('{staged(lake, 'standardized', dataset)}')"
        query = ranked_sql(catalog.datasets[dataset], catalog.last_modified_column, source)
        rows = write_query(engine, lake, query, "staging", "deduped", dataset, f"{dataset}.parquet")
        con = engine.connect()
        duplicates = count_rows(con, staged(lake, "deduped", dataset), "_duplicate_reason IS NOT NULL")
        exact = count_rows(con, staged(lake, "deduped", dataset), "_exact_duplicate")
        con.close()
        return dg.MaterializeResult(
            metadata={
                "rows": dg.MetadataValue.int(rows),
                "rows_duplicate": dg.MetadataValue.int(duplicates),
                "exact_duplicates": dg.MetadataValue.int(exact),
                "superseded_versions": dg.MetadataValue.int(duplicates - exact),
            }
        )

    return deduped_asset


deduped_assets = [build_deduped_asset(dataset) for dataset in DATASETS]
