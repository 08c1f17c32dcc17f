"""Duplicate removal (Spark backend of `transforms.dedup.ranked_sql`), DESIGN.md row semantics rule 1.

Exact duplicates (marked by standardize) go first; then rows sharing a primary key keep one: the newest by the
last-modified column, ties and missing values broken by the last file and row, batch before curated state.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from enrollment_platform.config import DatasetSpec
from enrollment_platform.transforms.spark.io import LINEAGE, read_parquet, write_parquet


def ranked_frame(spec: DatasetSpec, last_modified: str, batch: DataFrame, state: DataFrame | None = None) -> DataFrame:
    """The batch rows with `_duplicate_reason` (NULL for the row that is kept); written ordered by file and row."""
    key = spec.primary_key
    has_modified = last_modified in spec.columns
    columns = batch.columns
    modified = F.col(last_modified).cast("timestamp_ntz") if has_modified else F.lit(None).cast("timestamp_ntz")
    keyed = F.col(key).isNotNull() & ~F.col("_exact_duplicate") & (F.size("_load_errors") == 0)
    candidates = batch.where(keyed).select(
        F.col(key).alias("k"),
        modified.alias("modified"),
        F.col("_source_file").alias("file"),
        F.col("_source_row").alias("line"),
        F.lit(1).alias("in_batch"),
    )
    if state is not None:
        state_modified = (
            F.col(last_modified).cast("timestamp_ntz")
            if has_modified and last_modified in state.columns
            else F.lit(None).cast("timestamp_ntz")
        )
        candidates = candidates.unionByName(
            state.select(
                F.col(key).cast("string").alias("k"),
                state_modified.alias("modified"),
                F.col("_source_file").cast("string").alias("file"),
                F.col("_source_row").cast("bigint").alias("line"),
                F.lit(0).alias("in_batch"),
            )
        )
    window = Window.partitionBy("k").orderBy(
        F.col("modified").desc_nulls_last(), F.col("file").desc(), F.col("line").desc(), F.col("in_batch").desc()
    )
    ranked = candidates.select(
        "file",
        "line",
        "in_batch",
        F.row_number().over(window).alias("_rank"),
        F.first("file").over(window).alias("_winner_file"),
        F.first("line").over(window).alias("_winner_row"),
    ).where(F.col("in_batch") == 1)
    reason = (
        F.when(F.col("_exact_duplicate"), F.lit("exact duplicate row"))
        .when(
            F.col("_rank") > 1,
            F.concat(
                F.lit(f"superseded: same {key} as "),
                F.col("_winner_file"),
                F.lit(" row "),
                F.col("_winner_row").cast("string"),
            ),
        )
        .otherwise(F.lit(None).cast("string"))
    )
    # a keyed batch row is identified by its lineage (file, row): the staged reader gives each row its own
    joined = batch.join(
        ranked,
        keyed & (batch["_source_file"] == ranked["file"]) & (batch["_source_row"] == ranked["line"]),
        "left",
    )
    return joined.select(*columns, reason.alias("_duplicate_reason"))


def dedup(
    spark: SparkSession,
    spec: DatasetSpec,
    last_modified: str,
    standardized: str | list[str],
    out_path: str,
    state: str | None = None,
) -> int:
    """Rank the standardized Parquet rows (against the curated state file, when given); write the rows set aside
    to `out_path` (the deduped zone, as `transforms.dedup.set_aside_sql`) and return how many."""
    state_frame = read_parquet(spark, state) if state is not None else None
    ranked = ranked_frame(spec, last_modified, read_parquet(spark, standardized), state_frame)
    return write_parquet(ranked.where(F.col("_duplicate_reason").isNotNull()), out_path, order_by=LINEAGE)


def kept_candidates_frame(standardized: DataFrame, set_aside: DataFrame) -> DataFrame:
    """The standardized rows dedup kept (as `transforms.dedup.kept_candidates_sql`): those not set aside, a row
    being its file, row number and whether it is a line the reader rejected."""
    d = set_aside.select(
        F.col("_source_file").alias("_d_file"),
        F.col("_source_row").alias("_d_row"),
        F.col("_raw_line").isNull().alias("_d_parsed"),
    )
    same_row = (
        (standardized["_source_file"] == d["_d_file"])
        & (standardized["_source_row"] == d["_d_row"])
        & (standardized["_raw_line"].isNull() == d["_d_parsed"])
    )
    return standardized.join(d, same_row, "left_anti")
