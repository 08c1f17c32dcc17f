"""The shared body of the Glue entry points (`glue_scripts/<step>.py`), without the awsglue library.

Arguments are Glue-style (`--JOB_NAME x --lake_uri s3://... --dataset enrollments --batch 2024-05-01`); Glue's
own extra arguments are ignored. Paths default to the lake layout of the Dagster assets
(`<lake>/staging/<layer>/<dataset>/<batch>.parquet`); the Dagster job runner passes every batch-specific path
explicitly. When launched by Dagster (Pipes), the step reports one asset materialization with its row counts and
the asset checks it evaluated (the curate step's reconciliation); standalone it prints them as JSON.
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

STEPS = ("standardize", "dedup", "validate", "redact", "curate")
LAYER = {
    "standardize": "standardized",
    "dedup": "deduped",
    "validate": "validated",
    "redact": "redacted",
    "curate": "curated",
}
PREVIOUS = {"dedup": "standardized", "validate": "standardized", "redact": "validated", "curate": "redacted"}
RECONCILIATION = ("rows_in", "rows_out", "rows_quarantined", "rows_duplicate", "reconciled")


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
    parser.add_argument("--staged_raw", default=None, help="comma-separated staged raw Parquet path(s) of the batch")
    parser.add_argument("--state", default=None, help="dedup, curate: the curated state Parquet file")
    parser.add_argument("--quarantine_output", default=None, help="validate: output; curate: input")
    parser.add_argument("--results_output", default=None, help="validate: the run's dq_results file")
    parser.add_argument("--references", default=None, help="validate: name=path,... of referenced datasets")
    parser.add_argument("--deduped", default=None, help="validate, redact, curate: the rows set aside by dedup")
    parser.add_argument("--standardized", default=None, help="redact, curate: the batch's standardized rows")
    parser.add_argument("--restricted", default=None, help="redact: table=path,...; curate: table=batch|state,...")
    parser.add_argument("--pii_key_secret", default=None, help="redact: AWS Secrets Manager id of the HMAC key")
    args, _unknown = parser.parse_known_args(argv)  # Glue adds --JOB_ID, --TempDir, --job-bookmark-option, ...
    return args


def _lake(args, *parts: str) -> str:
    return "/".join([args.lake_uri.rstrip("/"), *parts])


def _paths(value: str | None) -> list[str] | None:
    return [p for p in value.split(",") if p] if value else None


def _pairs(value: str | None) -> dict[str, str]:
    return dict(item.split("=", 1) for item in _paths(value) or [])


def _existing(path: str) -> str | None:
    """`path` when it exists (local paths are checked; remote ones must be passed explicitly)."""
    if "://" in path and not path.startswith("file://"):
        return None
    return path if Path(path.removeprefix("file://")).exists() else None


def _staged_raw(args) -> list[str]:
    return _paths(args.staged_raw) or [_lake(args, "staging", "raw", args.dataset, "*.parquet")]


def _staged(args, layer: str) -> str:
    return _lake(args, "staging", layer, args.dataset, f"{args.batch}.parquet")


def _state(args) -> str | None:
    return args.state or _existing(_lake(args, "curated", args.dataset, f"{args.dataset}.parquet"))


def _quarantine(args) -> str:
    return args.quarantine_output or _lake(
        args, "quarantine", args.dataset, f"batch={args.batch}", "rows-spark.parquet"
    )


def _standardize(spark, args, inputs: list[str], output: str) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from enrollment_platform.transforms.spark import standardize
    from enrollment_platform.transforms.spark.io import read_parquet

    catalog = load_catalog()
    rows = standardize(spark, catalog.datasets[args.dataset], catalog, inputs, output)
    errors = F.count_if(F.size("_type_errors") > 0), F.count_if(F.size("_flags") > 0), F.count_if("_exact_duplicate")
    counts = read_parquet(spark, output).agg(*errors).collect()[0]
    return {
        "rows": rows,
        "rows_with_type_errors": counts[0],
        "rows_with_nulled_values": counts[1],
        "exact_duplicates_marked": counts[2],
    }


def _dedup(spark, args, inputs: list[str], output: str) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from enrollment_platform.transforms.spark import dedup
    from enrollment_platform.transforms.spark.io import read_parquet

    catalog = load_catalog()
    rows = dedup(spark, catalog.datasets[args.dataset], catalog.last_modified_column, inputs, output, _state(args))
    exact = read_parquet(spark, output).where(F.col("_exact_duplicate")).count()
    return {"rows": rows, "rows_duplicate": rows, "exact_duplicates": exact, "superseded_versions": rows - exact}


def _validate(spark, args, inputs: list[str], output: str) -> dict[str, Any]:
    from enrollment_platform.quality.results import dq_score, rows_judged, rule_results_table, write_table
    from enrollment_platform.transforms.spark import validate
    from enrollment_platform.transforms.spark.io import read_parquet

    catalog = load_catalog()
    rules = dataset_rules(args.dataset)
    given = _pairs(args.references)
    references = {
        name: given.get(name) or _existing(_lake(args, "curated", name, f"{name}.parquet"))
        for name in references_of(args.dataset, rules)
    }
    quarantine = _quarantine(args)
    spec = catalog.datasets[args.dataset]
    set_aside = args.deduped or _staged(args, "deduped")
    results = validate(
        spark, spec, catalog, rules, inputs, set_aside, references, _staged_raw(args), args.run_id, output, quarantine
    )
    results_output = args.results_output or _lake(
        args, "dq_results", f"dataset={args.dataset}", f"run_id={args.run_id}", "results.parquet"
    )
    write_table(rule_results_table(results, args.run_id), results_output)
    quarantined = read_parquet(spark, quarantine).count()
    return {
        "rows_kept": rows_judged(results, args.dataset) - quarantined,
        "rows_quarantined": quarantined,
        "dq_score": dq_score(results),
        "rules_failed": sum(r.outcome == "Failed" for r in results),
        "quarantine_output": quarantine,
        "results_output": results_output,
    }


def _hash_key(args) -> bytes | None:
    from enrollment_platform.pii.keys import resolve_hash_key

    policy = load_pii_policy()
    protected = policy.get("datasets", {}).get(args.dataset, {})
    if not (protected and needs_key({"datasets": {args.dataset: protected}})):
        return None
    if args.pii_key_secret:
        from enrollment_platform.resources.pii import SecretsManagerPiiKey

        return SecretsManagerPiiKey(secret_id=args.pii_key_secret).key()
    return resolve_hash_key(policy.get("hash_key_env", "ENROLLMENT_PII_KEY"), Path("."), allow_generated=False)


def _redact(spark, args, inputs: list[str], output: str) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from enrollment_platform.transforms.spark import redact
    from enrollment_platform.transforms.spark.dedup import kept_candidates_frame
    from enrollment_platform.transforms.spark.io import read_parquet, write_parquet
    from enrollment_platform.transforms.spark.validate import validated_frame

    policy = load_pii_policy()
    dataset = load_catalog().datasets[args.dataset]
    standardized = read_parquet(spark, args.standardized or _staged(args, "standardized"))
    candidates = kept_candidates_frame(standardized, read_parquet(spark, args.deduped or _staged(args, "deduped")))
    validated = validated_frame(dataset, candidates, read_parquet(spark, inputs)).cache()
    metadata: dict[str, Any] = {"rows": redact(dataset, policy, _hash_key(args), validated, output)}
    targets = _pairs(args.restricted)
    for table, spec in policy.get("restricted", {}).items():
        if spec["dataset"] != args.dataset:
            continue
        target = targets.get(table) or _lake(args, "staging", "restricted", table, f"{args.batch}.parquet")
        columns = [F.col(c) for c in (spec["key"], *spec["columns"])]
        metadata[f"{table}_rows"] = write_parquet(validated.select(*columns), target, order_by=(spec["key"],))
    validated.unpersist()
    return metadata


def _curate(spark, args, inputs: list[str], output: str) -> dict[str, Any]:
    from enrollment_platform.transforms.spark.curate import merge_into_state, reconciliation, winners_frame
    from enrollment_platform.transforms.spark.dedup import kept_candidates_frame
    from enrollment_platform.transforms.spark.io import read_parquet

    primary_key = load_catalog().datasets[args.dataset].primary_key
    deduped = args.deduped or _staged(args, "deduped")
    standardized = args.standardized or _staged(args, "standardized")
    kept = kept_candidates_frame(read_parquet(spark, standardized), read_parquet(spark, deduped))
    winners = winners_frame(kept, primary_key).cache()
    state_rows, replaced = merge_into_state(spark, _state(args), inputs[0], winners, primary_key, output)
    for key_column, batch_path, target, state in _restricted_merges(args).values():
        merge_into_state(spark, state, batch_path, winners, key_column, target)
    winners.unpersist()
    counts = reconciliation(spark, _staged_raw(args), inputs[0], _quarantine(args), deduped)
    return {**counts, "batch": args.batch, "rows_replaced": replaced, "state_rows": state_rows, "path": output}


def _restricted_merges(args) -> dict[str, tuple[str, str, str, str | None]]:
    """curate: table -> (key column, batch file, target, current state or None) of each restricted table.

    `--restricted table=batch|target|state` (state empty when there is none yet); by default the lake layout.
    """
    given = {table: value.split("|") for table, value in _pairs(args.restricted).items()}
    merges = {}
    for table, spec in load_pii_policy().get("restricted", {}).items():
        if spec["dataset"] != args.dataset:
            continue
        default_target = _lake(args, "restricted", table, f"{table}.parquet")
        batch_path, target, state = given.get(table) or [
            _lake(args, "staging", "restricted", table, f"{args.batch}.parquet"),
            default_target,
            _existing(default_target) or "",
        ]
        merges[table] = (spec["key"], batch_path, target, state or None)
    return merges


STEP_FUNCTIONS = {
    "standardize": _standardize,
    "dedup": _dedup,
    "validate": _validate,
    "redact": _redact,
    "curate": _curate,
}


def run_step(step: str, args: argparse.Namespace, spark=None) -> dict[str, Any]:
    """Run one step and return the metadata it reports."""
    from enrollment_platform.transforms.spark.session import spark_session

    if step not in STEP_FUNCTIONS:
        raise ValueError(f"unknown step {step!r}; one of {', '.join(STEPS)}")
    spark = spark or spark_session(args.JOB_NAME)
    curated = _lake(args, "curated", args.dataset, f"{args.dataset}.parquet")
    output = args.output or (curated if step == "curate" else _staged(args, LAYER[step]))
    if step == "standardize":
        inputs = _paths(args.input) or _staged_raw(args)
    else:
        inputs = _paths(args.input) or [_staged(args, PREVIOUS[step])]
    metadata: dict[str, Any] = {"engine": "spark", "dataset": args.dataset, "batch": args.batch, "output": output}
    return metadata | STEP_FUNCTIONS[step](spark, args, inputs, output)


def step_checks(step: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """The asset checks a step evaluates itself: the curate step's reconciliation (blocking)."""
    if step != "curate":
        return []
    counts = {name: metadata[name] for name in RECONCILIATION}
    return [{"check_name": "reconciliation", "passed": bool(metadata["reconciled"]), "metadata": counts}]


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
    if session is None:
        metadata = run_step(step, args)
        json.dump(metadata, sys.stdout)
        sys.stdout.write("\n")
        return metadata
    with session as pipes:
        pipes.log.info(f"spark {step} {args.dataset} batch {args.batch}")
        metadata = run_step(step, args)
        for check in step_checks(step, metadata):
            pipes.report_asset_check(
                check_name=check["check_name"], passed=check["passed"], metadata=_pipes_metadata(check["metadata"])
            )
        pipes.report_asset_materialization(metadata=_pipes_metadata(metadata))
    return metadata


if __name__ == "__main__":  # python -m enrollment_platform.transforms.spark.glue <step> --lake_uri ...
    main(sys.argv[1], sys.argv[2:])
