"""The curated state on Spark (twin of `assets/curated.py`): merge a batch into a dataset's state file, and the
reconciliation `rows_in = rows_out + rows_quarantined + rows_duplicate` counted from the batch's files."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from enrollment_platform.transforms.spark.io import read_parquet, write_parquet


def winners_frame(kept_candidates: DataFrame, primary_key: str) -> DataFrame:
    """Keys the batch brought a newest version of (kept or quarantined): those of the rows dedup kept."""
    return kept_candidates.where(F.col(primary_key).isNotNull()).select(F.col(primary_key).alias("_winner")).distinct()


def merged_frame(state: DataFrame | None, batch_rows: DataFrame, winners: DataFrame, key_column: str) -> DataFrame:
    """Old rows whose key has no newer version in the batch, plus the batch's kept rows (columns by name)."""
    if state is None:
        return batch_rows
    kept = state.join(winners, state[key_column] == winners["_winner"], "left_anti")
    return kept.unionByName(batch_rows, allowMissingColumns=True)


def merge_into_state(
    spark: SparkSession, state_path: str | None, batch_path: str, winners: DataFrame, key_column: str, out_path: str
) -> tuple[int, int]:
    """Write the merged state to `out_path` (ordered by key); return (rows in the new state, old rows replaced).

    The state is read in full before the write replaces it (`out_path` may be the state file itself).
    """
    state = read_parquet(spark, state_path).cache() if state_path else None
    try:
        before = state.count() if state is not None else 0
        batch_rows = read_parquet(spark, batch_path)
        added = batch_rows.count()
        rows = write_parquet(merged_frame(state, batch_rows, winners, key_column), out_path, order_by=(key_column,))
    finally:
        if state is not None:
            state.unpersist()
    return rows, before + added - rows


def reconciliation(
    spark: SparkSession, staged_raw: list[str], redacted: str, quarantine: str, deduped: str
) -> dict[str, int | bool]:
    """Every row of the batch, counted where it ended up."""
    counts = {
        "rows_in": read_parquet(spark, staged_raw).count() if staged_raw else 0,
        "rows_out": read_parquet(spark, redacted).count(),
        "rows_quarantined": read_parquet(spark, quarantine).count(),
        "rows_duplicate": read_parquet(spark, deduped).count(),  # the rows set aside
    }
    balanced = counts["rows_in"] == counts["rows_out"] + counts["rows_quarantined"] + counts["rows_duplicate"]
    return {**counts, "reconciled": balanced}
