"""The shared body of the Glue entry points (`glue_scripts/<step>.py`), without the awsglue library.

Arguments are Glue-style (`--JOB_NAME x --lake_uri s3://... --dataset enrollments --batch 2024-05-01`); Glue's
own extra arguments are ignored. Paths default to the lake layout of the Dagster assets
(`<lake>/staging/<layer>/<dataset>/<batch>.parquet`); a launcher may pass every path explicitly. When launched
by Dagster (Pipes), the step reports one asset materialization with its row counts; standalone it prints them
as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from enrollment_platform.config import load_catalog, load_pii_policy
from enrollment_platform.quality.rules import dataset_rules, references_of
from enrollment_platform.transforms.redact import needs_key

STEPS = ("standardize", "dedup", "validate", "redact")
LAYER = {"standardize": "standardized", "dedup": "deduped", "validate": "validated", "redact": "redacted"}
PREVIOUS = {"dedup": "standardized", "validate": "deduped", "redact": "validated"}


def parse_args(step: str, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"glue_scripts/{step}.py", description=f"Spark {step} step")
    parser.add_argument("--JOB_NAME", default=f"enrollment-{step}")
    parser.add_argument("--raw_uri", default=None, help="raw layer (lineage only: steps read staged raw files)")
    parser.add_argument("--lake_uri", required=True)
    parser.add_argument("--dataset", required=True, choices=sorted(load_catalog().datasets))
    parser.add_argument("--batch", required=True)
    parser.add_argument("--run_id", default=os.environ.get("ENROLLMENT_RUN_ID", "spark"))
    parser.add_argument("--input", default=None, help="comma-separated input Parquet path(s)")
    parser.add_argument("--output", default=None)
    parser.add_argument("--staged_raw", default=None, help="validate: comma-separated staged raw Parquet path(s)")
    parser.add_argument("--state", default=None, help="dedup: the curated state Parquet file")
    parser.add_argument("--quarantine_output", default=None)
    parser.add_argument("--references", default=None, help="validate: name=path,... of referenced datasets")
    args, _unknown = parser.parse_known_args(argv)  # Glue adds --JOB_ID, --TempDir, --job-bookmark-option, ...
    return args


def _lake(args, *parts: str) -> str:
    return "/".join([args.lake_uri.rstrip("/"), *parts])


def _paths(value: str | None) -> list[str] | None:
    return [p for p in value.split(",") if p] if value else None


def _existing(path: str) -> str | None:
    """`path` when it exists (local paths are checked; remote ones must be passed explicitly)."""
    if "://" in path and not path.startswith("file://"):
        return None
    return path if Path(path.removeprefix("file://")).exists() else None


def _staged_raw(args) -> list[str]:
    return _paths(args.staged_raw if args.staged_raw else None) or [
        _lake(args, "staging", "raw", args.dataset, "*.parquet")
    ]


def run_step(step: str, args: argparse.Namespace, spark=None) -> dict[str, Any]:
    """Run one step and return the metadata it reports."""
    from pyspark.sql import functions as F

    from enrollment_platform.transforms.spark import dedup, redact, standardize, validate
    from enrollment_platform.transforms.spark.io import read_parquet
    from enrollment_platform.transforms.spark.session import spark_session

    spark = spark or spark_session(args.JOB_NAME)
    catalog = load_catalog()
    spec = catalog.datasets[args.dataset]
    output = args.output or _lake(args, "staging", LAYER[step], args.dataset, f"{args.batch}.parquet")
    if step == "standardize":
        inputs = _paths(args.input) or _staged_raw(args)
    else:
        inputs = _paths(args.input) or [_lake(args, "staging", PREVIOUS[step], args.dataset, f"{args.batch}.parquet")]
    metadata: dict[str, Any] = {"engine": "spark", "dataset": args.dataset, "batch": args.batch, "output": output}
    if step == "standardize":
        rows = standardize(spark, spec, catalog, inputs, output)
        counts = (
            read_parquet(spark, output)
            .agg(
                F.count_if(F.size("_type_errors") > 0), F.count_if(F.size("_flags") > 0), F.count_if("_exact_duplicate")
            )
            .collect()[0]
        )
        metadata |= {
            "rows": rows,
            "rows_with_type_errors": counts[0],
            "rows_with_nulled_values": counts[1],
            "exact_duplicates_marked": counts[2],
        }
    elif step == "dedup":
        state = args.state or _existing(_lake(args, "curated", args.dataset, f"{args.dataset}.parquet"))
        rows = dedup(spark, spec, catalog.last_modified_column, inputs, output, state)
        counts = (
            read_parquet(spark, output)
            .agg(F.count_if(F.col("_duplicate_reason").isNotNull()), F.count_if("_exact_duplicate"))
            .collect()[0]
        )
        metadata |= {"rows": rows, "rows_duplicate": counts[0], "exact_duplicates": counts[1]}
    elif step == "validate":
        rules = dataset_rules(args.dataset)
        given = dict(item.split("=", 1) for item in _paths(args.references) or [])
        references = {
            name: given.get(name) or _existing(_lake(args, "curated", name, f"{name}.parquet"))
            for name in references_of(args.dataset, rules)
        }
        quarantine = args.quarantine_output or _lake(
            args, "quarantine", args.dataset, f"batch={args.batch}", "rows-spark.parquet"
        )
        results = validate(
            spark, spec, catalog, rules, inputs, references, _staged_raw(args), args.run_id, output, quarantine
        )
        scored = [r.score for r in results if r.score is not None]
        metadata |= {
            "rows_kept": read_parquet(spark, output).count(),
            "rows_quarantined": read_parquet(spark, quarantine).count(),
            "dq_score": round(sum(scored) / len(scored), 6) if scored else 1.0,
            "rules_failed": sum(r.outcome == "Failed" for r in results),
            "quarantine_output": quarantine,
        }
    elif step == "redact":
        from enrollment_platform.pii.keys import resolve_hash_key

        policy = load_pii_policy()
        protected = policy.get("datasets", {}).get(args.dataset, {})
        key = None
        if protected and needs_key({"datasets": {args.dataset: protected}}):
            key = resolve_hash_key(policy.get("hash_key_env", "ENROLLMENT_PII_KEY"), Path("."), allow_generated=False)
        metadata["rows"] = redact(spark, spec, policy, key, inputs, output)
    else:
        raise ValueError(f"unknown step {step!r}; one of {STEPS}")
    return metadata


def _pipes_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    def typed(value):
        if isinstance(value, bool):
            return {"raw_value": value, "type": "bool"}
        if isinstance(value, int):
            return {"raw_value": value, "type": "int"}
        if isinstance(value, float):
            return {"raw_value": value, "type": "float"}
        return {"raw_value": str(value), "type": "text"}

    return {name: typed(value) for name, value in metadata.items()}


def _open_pipes():
    """The Pipes context when Dagster launched us, else None.

    PipesSubprocessClient passes its bootstrap in environment variables; PipesGlueClient passes it as job
    arguments (`--dagster-pipes-context`, `--dagster-pipes-messages`), usually pointing at S3 objects.
    """
    import dagster_pipes as pipes

    cli = pipes.PipesCliArgsParamsLoader()
    if cli.is_dagster_pipes_process():
        context_params, messages_params = cli.load_context_params(), cli.load_messages_params()
        s3 = None
        if "bucket" in context_params or "bucket" in messages_params:
            import boto3

            s3 = boto3.client("s3")
        return pipes.open_dagster_pipes(
            params_loader=cli,
            context_loader=pipes.PipesS3ContextLoader(client=s3) if "bucket" in context_params else None,
            message_writer=pipes.PipesS3MessageWriter(client=s3) if "bucket" in messages_params else None,
        )
    if pipes.PipesEnvVarParamsLoader().is_dagster_pipes_process():
        return pipes.open_dagster_pipes()
    return None


def main(step: str, argv: list[str] | None = None) -> dict[str, Any]:
    """Entry point of `glue_scripts/<step>.py`."""
    args = parse_args(step, argv)
    session = _open_pipes()
    if session is not None:
        with session as pipes:
            pipes.log.info(f"spark {step} {args.dataset} batch {args.batch}")
            metadata = run_step(step, args)
            pipes.report_asset_materialization(metadata=_pipes_metadata(metadata))
        return metadata
    metadata = run_step(step, args)
    json.dump(metadata, sys.stdout)
    sys.stdout.write("\n")
    return metadata
