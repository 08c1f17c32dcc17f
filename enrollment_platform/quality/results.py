"""Per-run, per-rule outcomes in the lake (`dq_results/`), the source of the warehouse's dq_results table."""

from __future__ import annotations

from datetime import UTC, datetime

DQ_RESULT_COLUMNS = (
    "run_id VARCHAR, evaluated_at TIMESTAMP, dataset VARCHAR, rule_id VARCHAR, rule VARCHAR, severity VARCHAR, "
    "outcome VARCHAR, evaluated BIGINT, failed BIGINT, score DOUBLE, message VARCHAR"
)


def rule_results_path(lake, dataset: str, run_id: str) -> list[str]:
    return ["dq_results", f"dataset={dataset}", f"run_id={run_id}", "results.parquet"]


def write_rule_results(engine, lake, dataset: str, run_id: str, results) -> str:
    """Write one row per rule for this run; return the file's path."""
    now = datetime.now(UTC).replace(tzinfo=None)
    con = engine.connect()
    try:
        con.execute(f"CREATE TABLE results ({DQ_RESULT_COLUMNS})")
        con.executemany(
            "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    now,
                    r.dataset,
                    r.rule_id,
                    r.rule,
                    r.severity,
                    r.outcome,
                    r.evaluated,
                    r.failed,
                    r.score,
                    r.message,
                )
                for r in results
            ],
        )
        parts = rule_results_path(lake, dataset, run_id)
        with lake.atomic_write(*parts) as temporary:
            con.execute(f"COPY results TO '{temporary}' (FORMAT parquet, COMPRESSION snappy)")
    finally:
        con.close()
    return lake.path(*parts)
