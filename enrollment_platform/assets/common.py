"""What every layer's assets share: asset keys, staging locations, counts and metadata helpers."""

import dagster as dg
import duckdb

from enrollment_platform.config import load_catalog
from enrollment_platform.partitions import batch_key, ingest_date_partitions, single_run_backfill
from enrollment_platform.transforms.sql import quote_literal

DATASETS = tuple(load_catalog().datasets)


def key(layer: str, dataset: str) -> dg.AssetKey:
    return dg.AssetKey([layer, dataset])


def staged(lake, layer: str, dataset: str, batch: str) -> str:
    """The staging file of a batch of `dataset` at `layer` (between raw and curated, never shown to analysts)."""
    return lake.path(*staged_parts(layer, dataset, batch))


def staged_parts(layer: str, dataset: str, batch: str) -> list[str]:
    return ["staging", layer, dataset, f"{batch}.parquet"]


def batch_of(context) -> str:
    """The batch (ingestion-date range) the run of this asset or check processes."""
    return batch_key(context.run.tags)


def layer_asset(layer: str, dataset: str, description: str, deps=(), kinds=("duckdb", "parquet"), **kwargs):
    """@dg.asset for one dataset at one layer: keyed layer/dataset, grouped by layer, partitioned by ingest date;
    its materialization also carries the step's duration and its output's schema, row count and (where PII is
    protected) a preview (`monitoring.layer_metadata`)."""
    asset = dg.asset(
        key=key(layer, dataset),
        deps=list(deps),
        group_name=layer,
        description=description,
        kinds=set(kinds),
        partitions_def=ingest_date_partitions,
        backfill_policy=single_run_backfill,
        **kwargs,
    )

    def decorate(body):
        from enrollment_platform.monitoring.layer_metadata import with_layer_metadata

        return asset(with_layer_metadata(layer, dataset)(body))

    return decorate


def read_parquet(paths: str | list[str]) -> str:
    paths = [paths] if isinstance(paths, str) else paths
    return "read_parquet([" + ", ".join(quote_literal(p) for p in paths) + "], union_by_name=true)"


def count_rows(con: duckdb.DuckDBPyConnection, paths: str | list[str], where: str = "") -> int:
    if isinstance(paths, list) and not paths:
        return 0
    return con.execute(f"SELECT count(*) FROM {read_parquet(paths)} {'WHERE ' + where if where else ''}").fetchone()[0]


def markdown_table(rows: list[dict], columns: list[str] | None = None, limit: int = 20) -> str:
    """A small markdown table for asset metadata (callers pass no raw PII)."""
    if not rows:
        return "_none_"
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows[:limit]:
        lines.append("| " + " | ".join(str(row.get(c, "")).replace("|", "\\|") for c in columns) + " |")
    if len(rows) > limit:
        lines.append(f"| … {len(rows) - limit} more |" + " |" * (len(columns) - 1))
    return "\n".join(lines)


def write_query(engine, lake, query: str, *parts: str, order_by: str = "", kv: dict[str, str] | None = None) -> int:
    """Run `query` and write its rows to the lake object `parts` atomically (Parquet, Snappy; `kv`: key-value
    metadata in the footer); return rows."""
    con = engine.connect()
    try:
        with lake.atomic_write(*parts) as temporary:
            ordered = f"SELECT * FROM ({query}) ORDER BY {order_by}" if order_by else query
            footer = ""
            if kv:
                footer = ", KV_METADATA {" + ", ".join(f"{k}: {quote_literal(v)}" for k, v in kv.items()) + "}"
            con.execute(f"COPY ({ordered}) TO {quote_literal(temporary)} (FORMAT parquet, COMPRESSION snappy{footer})")
            return count_rows(con, temporary)
    finally:
        con.close()


def step_arguments(context, lake, step: str, dataset: str, batch: str, **paths: str | None) -> dict[str, str]:
    """The Glue-style arguments of a job step launched for this asset (see `transforms/spark/glue.py`)."""
    arguments = {
        "--JOB_NAME": f"enrollment-{step}",
        "--lake_uri": lake.uri(),
        "--dataset": dataset,
        "--batch": batch,
        "--run_id": context.run.run_id,
    }
    arguments |= {f"--{name}": value for name, value in paths.items() if value is not None}
    return arguments


def uri_list(lake, parts_list: list[list[str]]) -> str:
    """Lake objects as the comma-separated URIs a launched step takes."""
    return ",".join(lake.uri(*parts) for parts in parts_list)


def metadata_values(metadata: dict | None) -> dict:
    """Dagster metadata as plain values (a MetadataValue's `.value`; anything else as it is)."""
    return {name: getattr(value, "value", value) for name, value in (metadata or {}).items()}
