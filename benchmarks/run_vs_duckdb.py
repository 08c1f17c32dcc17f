"""Benchmark: `enrollment-platform run` (every asset, through Dagster) against a one-pass DuckDB baseline.

Both run on the same generated raw layer, in this one invocation, each trial in a fresh child process so that
its wall time and peak RSS are its own. Prints medians, the ratio and peak RSS, and writes them to JSON.

    .venv/bin/python benchmarks/run_vs_duckdb.py --enrollments 1000000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The same transform in one SQL pass: read the CSVs, standardize, parse both date formats, redact free text,
# keep the newest row per id, range-check, write Parquet/Snappy. No lineage, no quarantine, no warehouse.
BASELINE_SQL = r"""
COPY (
  WITH src AS (
    SELECT * FROM read_csv('@RAW@/enrollments/*.csv', all_varchar=true, header=true, union_by_name=true)
  ),
  typed AS (
    SELECT trim(enrollment_id) AS enrollment_id, trim(student_id) AS student_id, trim(course_id) AS course_id,
      CAST(try_strptime(trim(enrollment_date), ['%Y-%m-%d', '%m/%d/%Y']) AS DATE) AS enrollment_date,
      upper(trim(term)) AS term, lower(trim(status)) AS status,
      TRY_CAST(trim(marks) AS DOUBLE) AS marks,
      TRY_CAST(trim(attendance_percentage) AS DOUBLE) AS attendance_percentage,
      regexp_replace(regexp_replace(notes, '\b\d{3}-\d{2}-\d{4}\b', '[USA_SSN]', 'g'),
                     '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}', '[EMAIL]', 'g') AS notes,
      TRY_CAST(last_modified AS TIMESTAMP) AS last_modified
    FROM src
  ),
  dedup AS (
    SELECT * FROM typed
    QUALIFY row_number() OVER (PARTITION BY enrollment_id ORDER BY last_modified DESC NULLS LAST) = 1
  )
  SELECT * FROM dedup
  WHERE enrollment_id IS NOT NULL AND enrollment_date IS NOT NULL
    AND marks BETWEEN 0 AND 100 AND attendance_percentage BETWEEN 0 AND 100
) TO '@OUT@' (FORMAT parquet, COMPRESSION snappy)
"""


def _child_pipeline(raw: str, home: str) -> None:
    from enrollment_platform.runner import run_pipeline
    from enrollment_platform.settings import Settings

    summary = run_pipeline(Settings.from_env(environ={}, home=home, raw_uri=raw))
    if not summary.success:
        raise SystemExit(f"pipeline failed: {summary.failures}")


def _child_baseline(raw: str, home: str) -> None:
    import duckdb

    Path(home).mkdir(parents=True, exist_ok=True)
    duckdb.connect().execute(BASELINE_SQL.replace("@RAW@", raw).replace("@OUT@", f"{home}/enrollments.parquet"))


def measure(kind: str, raw: Path, work: Path) -> dict:
    """Run one trial in a child process; wall seconds and that child's peak RSS."""
    home = work / f"{kind}-{time.monotonic_ns()}"
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, __file__, "--child", kind, "--raw", str(raw), "--home", str(home)])
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{kind} trial failed")
    shutil.rmtree(home, ignore_errors=True)
    return {"seconds": elapsed, "peak_rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "run_vs_duckdb.json")
    parser.add_argument("--child", choices=["pipeline", "baseline"])
    parser.add_argument("--raw")
    parser.add_argument("--home")
    args = parser.parse_args()
    if args.child:
        {"pipeline": _child_pipeline, "baseline": _child_baseline}[args.child](args.raw, args.home)
        return

    from enrollment_platform.generator import generate_raw_layer

    work = Path(tempfile.mkdtemp(prefix="enrollment-bench-"))
    try:
        raw = work / "raw"
        started = time.perf_counter()
        generate_raw_layer(raw, args.enrollments, seed=args.seed)
        generate_seconds = time.perf_counter() - started
        trials: dict[str, list[dict]] = {"baseline": [], "pipeline": []}
        for _ in range(args.repeats):
            for kind in trials:  # interleaved, so drift on a shared machine hits both alike
                trials[kind].append(measure(kind, raw, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = {k: statistics.median(t["seconds"] for t in v) for k, v in trials.items()}
    report = {
        "enrollments": args.enrollments,
        "repeats": args.repeats,
        "generate_seconds": round(generate_seconds, 2),
        "median_seconds": {k: round(v, 2) for k, v in medians.items()},
        "ratio_pipeline_to_baseline": round(medians["pipeline"] / medians["baseline"], 2),
        "peak_rss_mb": {k: round(max(t["peak_rss_mb"] for t in v), 1) for k, v in trials.items()},
        "trials": trials,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "trials"}, indent=2))


if __name__ == "__main__":
    main()
