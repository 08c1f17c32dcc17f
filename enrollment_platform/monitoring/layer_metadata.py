"""What every layer's materialization carries for an operator, beside the layer's own counts: how long the step
took, the output's table schema (`dagster/column_schema`) and row count (`dagster/row_count`), and — only where
PII is already protected (redacted, curated) — a small preview of the output rows."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from enrollment_platform.assets.common import staged_parts
from enrollment_platform.assets.raw import staged_raw_files

PREVIEW_LAYERS = ("redacted", "curated")  # earlier layers hold raw PII: never previewed
PREVIEW_ROWS = 5


def output_files(lake, layer: str, dataset: str, batch: str) -> list[str]:
    """The Parquet file(s) a layer's asset wrote for the batch (local paths); [] when it wrote none."""
    if layer == "raw":
        return staged_raw_files(lake, dataset, batch)
    parts = ["curated", dataset, f"{dataset}.parquet"] if layer == "curated" else staged_parts(layer, dataset, batch)
    return [lake.path(*parts)] if lake.exists(*parts) else []


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(field.name, str(field.type)) for field in schema])


def preview_markdown(path: str | pq.ParquetFile, rows: int = PREVIEW_ROWS) -> str:
    """The first rows of a Parquet file (a path, or the file already open) as a markdown table (lists joined,
    long values cut)."""
    from enrollment_platform.assets.common import markdown_table

    parquet = path if isinstance(path, pq.ParquetFile) else pq.ParquetFile(path)
    table = parquet.read_row_group(0) if parquet.num_row_groups else None
    if table is None or table.num_rows == 0:
        return "_no rows_"

    def cell(value) -> str:
        text = "; ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value))
        return text if len(text) <= 40 else text[:39] + "…"

    records = [{k: cell(v) for k, v in row.items()} for row in table.slice(0, rows).to_pylist()]
    return markdown_table(records, limit=rows)


def layer_metadata(lake, layer: str, dataset: str, batch: str, seconds: float) -> dict[str, object]:
    """Duration, schema, row count and (PII-safe layers only) preview of the layer's output."""
    metadata: dict[str, object] = {"duration_seconds": dg.MetadataValue.float(round(seconds, 3))}
    files = output_files(lake, layer, dataset, batch)
    if not files:
        return metadata
    first, *others = files
    with pq.ParquetFile(first) as parquet:  # its footer is read once: schema, row count and preview
        metadata["dagster/column_schema"] = column_schema(parquet.schema_arrow)
        rows = parquet.metadata.num_rows + sum(pq.read_metadata(f).num_rows for f in others)
        metadata["dagster/row_count"] = dg.MetadataValue.int(rows)
        if layer in PREVIEW_LAYERS:
            metadata["preview"] = dg.MetadataValue.md(preview_markdown(parquet))
    return metadata


def with_layer_metadata(layer: str, dataset: str) -> Callable:
    """Decorate a layer asset's body: its MaterializeResult gains `layer_metadata` (what the body set wins)."""
    from enrollment_platform.assets.common import batch_of

    def decorate(body: Callable) -> Callable:
        @functools.wraps(body)
        def timed(context, **resources):
            started = time.perf_counter()
            result = body(context, **resources)
            extra = layer_metadata(resources["lake"], layer, dataset, batch_of(context), time.perf_counter() - started)
            return dg.MaterializeResult(
                asset_key=result.asset_key,
                metadata={**extra, **(result.metadata or {})},
                check_results=result.check_results,
                data_version=result.data_version,
                tags=result.tags,
            )

        return timed

    return decorate
