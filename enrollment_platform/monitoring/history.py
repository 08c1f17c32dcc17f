"""The warehouse metrics history in the lake, one Parquet file per observation (tables, statements) or per run
(loads), so it outlives the Dagster instance and can be queried like any lake data:

    <lake>/monitoring/warehouse_tables/observed_at=<UTC stamp>/tables.parquet
    <lake>/monitoring/warehouse_queries/observed_at=<UTC stamp>/queries.parquet
    <lake>/monitoring/warehouse_loads/run_id=<run>/loads.parquet
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = "monitoring"
TABLES, QUERIES, LOADS = "warehouse_tables", "warehouse_queries", "warehouse_loads"
TIMESTAMP = pa.timestamp("us", tz="UTC")

SCHEMAS = {
    TABLES: pa.schema(
        [("observed_at", TIMESTAMP), ("warehouse", pa.string()), ("table", pa.string()), ("rows", pa.int64()),
         ("size_bytes", pa.int64())]
    ),
    QUERIES: pa.schema(
        [("observed_at", TIMESTAMP), ("source", pa.string()), ("query_id", pa.string()), ("query", pa.string()),
         ("calls", pa.int64()), ("mean_ms", pa.float64()), ("total_ms", pa.float64()), ("recent_ms", pa.float64())]
    ),
    LOADS: pa.schema(
        [("run_id", pa.string()), ("started_at", TIMESTAMP), ("table", pa.string()), ("duration_ms", pa.float64())]
    ),
}  # fmt: skip


def stamp(moment: datetime) -> str:
    """A folder name that sorts in time order."""
    return moment.strftime("%Y%m%dT%H%M%S%fZ")


def observation_parts(kind: str, observed_at: datetime) -> list[str]:
    return [ROOT, kind, f"observed_at={stamp(observed_at)}", f"{kind.removeprefix('warehouse_')}.parquet"]


def run_parts(run_id: str) -> list[str]:
    return [ROOT, LOADS, f"run_id={run_id}", "loads.parquet"]


def write_rows(lake, kind: str, parts: list[str], rows: list[dict]) -> str:
    """Write rows of one history kind to the lake object `parts`, atomically; return its path."""
    with lake.atomic_write(*parts) as temporary:
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS[kind]), temporary, compression="snappy")
    return lake.path(*parts)


def read_rows(lake, kind: str, last: int | None = None) -> list[dict]:
    """The rows of one history kind, oldest file first; only the `last` files when given."""
    files = lake.list(ROOT, kind)
    if last is not None:
        files = files[-last:] if last > 0 else []
    tables = [pq.read_table(f, schema=SCHEMAS[kind]) for f in files]
    return pa.concat_tables(tables).to_pylist() if tables else []


def recorded_runs(lake) -> set[str]:
    """The runs whose loads are already in the history."""
    return {Path(f).parent.name.removeprefix("run_id=") for f in lake.list(ROOT, LOADS)}
