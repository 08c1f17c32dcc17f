"""Parquet in and out for the Spark steps, shaped like the DuckDB steps' files."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

LINEAGE = ("_source_file", "_source_row")  # the order the DuckDB steps write their rows in


def _is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def read_parquet(spark: SparkSession, paths: str | list[str]) -> DataFrame:
    """The rows of one or more Parquet files (columns unioned by name, as DuckDB's `union_by_name=true`)."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    if len(paths) == 1 or _same_local_schema(paths):
        return spark.read.parquet(*paths)  # one scan (staged raw files all carry the canonical columns)
    frames = [spark.read.parquet(p) for p in paths]
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame, allowMissingColumns=True)
    return result


def _same_local_schema(paths: list[str]) -> bool:
    if not all(_is_local(p) and Path(p.removeprefix("file://")).is_file() for p in paths):
        return False
    schemas = {tuple(pq.read_schema(p.removeprefix("file://")).names) for p in paths}
    return len(schemas) == 1


def write_parquet(frame: DataFrame, path: str, order_by: tuple[str, ...] = ()) -> int:
    """Write `frame` (Snappy) and return its row count (read back from the Parquet footers, no second job).

    A local path ending in `.parquet` becomes ONE file at exactly that path, replaced atomically, like the DuckDB
    steps' `COPY ... TO`; any other path (S3 on Glue) is written as a Spark folder of part files. `order_by`
    orders the rows as the DuckDB step does (sorting the one partition: no range-partitioning job).
    """
    if _is_local(path) and path.endswith(".parquet"):
        target = Path(path.removeprefix("file://"))
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.parent / f".{target.name}.{uuid.uuid4().hex}.spark"
        try:
            single = frame.coalesce(1)
            single = single.sortWithinPartitions(*order_by) if order_by else single
            single.write.option("compression", "snappy").parquet(str(scratch))
            (part,) = sorted(scratch.glob("part-*.parquet"))
            os.replace(part, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return pq.read_metadata(target).num_rows
    frame = frame.orderBy(*order_by) if order_by else frame
    frame.write.mode("overwrite").option("compression", "snappy").parquet(path)
    return frame.sparkSession.read.parquet(path).count()
