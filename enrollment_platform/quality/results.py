"""Per-run, per-rule outcomes in the lake (`dq_results/`), the source of the warehouse's dq_results table.

Both engines write the same file through pyarrow (a local path or an s3:// URI).
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

DQ_RESULTS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("evaluated_at", pa.timestamp("us")),
        ("dataset", pa.string()),
        ("rule_id", pa.string()),
        ("rule", pa.string()),
        ("severity", pa.string()),
        ("outcome", pa.string()),
        ("evaluated", pa.int64()),
        ("failed", pa.int64()),
        ("score", pa.float64()),
        ("message", pa.string()),
    ]
)


def rule_results_path(lake, dataset: str, run_id: str) -> list[str]:
    return ["dq_results", f"dataset={dataset}", f"run_id={run_id}", "results.parquet"]


def dq_score(results) -> float:
    """The mean score of the rules that have one (1.0 when none has); results as objects or dicts."""
    scores = [r["score"] if isinstance(r, dict) else r.score for r in results]
    scored = [s for s in scores if s is not None]
    return round(sum(scored) / len(scored), 6) if scored else 1.0


def rows_judged(results, dataset: str) -> int:
    """How many rows the rules judged (every row dedup kept): the load check evaluates each of them; results as
    objects or dicts."""
    rows = [r if isinstance(r, dict) else r.to_dict() for r in results]
    return next(r["evaluated"] for r in rows if r["rule_id"] == f"{dataset}.load")


def rule_results_table(results, run_id: str) -> pa.Table:
    """One row per rule result of this run."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {
            "run_id": run_id,
            "evaluated_at": now,
            **{name: getattr(r, name) for name in DQ_RESULTS_SCHEMA.names if name not in ("run_id", "evaluated_at")},
        }
        for r in results
    ]
    return pa.Table.from_pylist(rows, schema=DQ_RESULTS_SCHEMA)


def write_table(table: pa.Table, target: str) -> None:
    """Write a Parquet file (Snappy) to a local path (atomically) or a URI pyarrow's filesystems know (s3://)."""
    if "://" in target and not target.startswith("file://"):
        filesystem, path = pafs.FileSystem.from_uri(target)
        pq.write_table(table, path, filesystem=filesystem, compression="snappy")
        return
    final = Path(target.removeprefix("file://"))
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, temporary, compression="snappy")
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)


def write_rule_results(lake, dataset: str, run_id: str, results) -> str:
    """Write one row per rule for this run into the lake; return the file's path."""
    parts = rule_results_path(lake, dataset, run_id)
    with lake.atomic_write(*parts) as temporary:
        pq.write_table(rule_results_table(results, run_id), temporary, compression="snappy")
    return lake.path(*parts)
