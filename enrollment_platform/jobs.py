"""Jobs: the whole graph, partitioned by ingestion date (a range of dates is one batch)."""

import dagster as dg

from enrollment_platform.partitions import ingest_date_partitions

all_assets_job = dg.define_asset_job(
    "enrollment_pipeline",
    selection=dg.AssetSelection.all(),
    partitions_def=ingest_date_partitions,
    description="Raw layer to star schema, every asset, for the raw files of the run's ingestion dates.",
)
