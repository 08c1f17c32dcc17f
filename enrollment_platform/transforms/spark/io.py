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
    if path.startswith("s3://") and path.endswith(".parquet"):
        return _write_one_s3_object(frame, path, order_by)
    frame = frame.orderBy(*order_by) if order_by else frame
    frame.write.mode("overwrite").option("compression", "snappy").parquet(path)
    return frame.sparkSession.read.parquet(path).count()


def _write_one_s3_object(frame: DataFrame, path: str, order_by: tuple[str, ...]) -> int:
    """On Glue: the lake layout wants ONE object at `path` (the in-process steps, the S3 lake mirror and Redshift
    COPY read that key), so write one part file beside it and promote it."""
    import boto3

    scratch = f"{path}.{uuid.uuid4().hex}.spark"
    single = frame.coalesce(1)
    single = single.sortWithinPartitions(*order_by) if order_by else single
    single.write.option("compression", "snappy").parquet(scratch)
    promote_single_part(boto3.client("s3"), scratch, path)
    return frame.sparkSession.read.parquet(path).count()


def promote_single_part(s3, scratch: str, target: str) -> None:
    """Copy the one `part-*.parquet` object below the `scratch` prefix to `target`, then delete the scratch."""
    bucket, _, prefix = scratch.removeprefix("s3://").partition("/")
    target_bucket, _, target_key = target.removeprefix("s3://").partition("/")
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
        for o in page.get("Contents", [])
    ]
    parts = [k for k in keys if k.rsplit("/", 1)[-1].startswith("part-") and k.endswith(".parquet")]
    if len(parts) != 1:
        raise RuntimeError(f"expected one part file below s3://{bucket}/{prefix}/, found {len(parts)}")
    s3.copy({"Bucket": bucket, "Key": parts[0]}, target_bucket, target_key)  # managed: multipart above 5 GB
    for start in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]]})
