"""Redacted layer: every PII column protected as config/pii_policy.yaml says; raw values only in the
restricted table (`restricted/student_pii`), which the access policy grants to the PII admin alone.

Each redacted asset also writes the run's PII detection report for its dataset
(`pii_reports/dataset=<d>/run_id=<run>/detections.parquet`, counts only) and shows it as metadata.
"""

import uuid

import dagster as dg

from enrollment_platform.assets.common import (
    DATASETS,
    batch_of,
    key,
    layer_asset,
    markdown_table,
    staged,
    staged_parts,
    step_arguments,
    write_query,
)
from enrollment_platform.assets.raw import launches_job
from enrollment_platform.assets.validated import validated_source
from enrollment_platform.config import load_catalog, load_pii_policy
from enrollment_platform.pii.detectors import default_detector
from enrollment_platform.pii.duckdb_functions import PiiEngine
from enrollment_platform.pii.report import DatasetScan, scan_dataset, write_report
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.job_runner import JobRunner
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.pii import PiiKey
from enrollment_platform.resources.warehouse.model import STATE_VERSION
from enrollment_platform.transforms.redact import needs_key, redact_sql
from enrollment_platform.transforms.sql import column_list, quote_literal


def restricted_tables(dataset: str) -> dict[str, dict]:
    return {name: spec for name, spec in load_pii_policy().get("restricted", {}).items() if spec["dataset"] == dataset}


def restricted_path(table: str) -> list[str]:
    """The restricted table's current rows (all batches so far), outside the curated layer."""
    return ["restricted", table, f"{table}.parquet"]


def detect_pii(engine: DuckDBEngine, lake: LocalLake, dataset: str, batch: str) -> DatasetScan:
    """Scan every row this run took in (the standardized layer) with the detector, canonical columns only."""
    spec = load_catalog().datasets[dataset]
    relation = f"read_parquet({quote_literal(staged(lake, 'standardized', dataset, batch))})"
    con = engine.connect()
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        canonical = {*spec.columns, *spec.derived}
        columns = [(row[0], row[1]) for row in described if row[0] in canonical]
        return scan_dataset(
            lambda sql: con.execute(sql).fetchall(), relation, dataset, columns, load_pii_policy(), default_detector()
        )
    finally:
        con.close()


def report_metadata(scan: DatasetScan, path: str) -> dict[str, dg.MetadataValue]:
    rows = [{k: getattr(d, k) for k in ("column", "entity", "detections", "action")} for d in scan.detections]
    metadata = {
        "pii_detections": dg.MetadataValue.md(markdown_table(rows, limit=50)),
        "pii_detections_total": dg.MetadataValue.int(sum(d.detections for d in scan.detections)),
        "pii_report": dg.MetadataValue.path(path),
    }
    if scan.unprotected:
        metadata["pii_warning_unprotected_columns"] = dg.MetadataValue.json(
            {c: {"entity": f.entity, "share": round(f.share, 3)} for c, f in scan.unprotected.items()}
        )
    return metadata


def _redact_in_process(lake, engine, pii_key: PiiKey, dataset: str, batch: str) -> dict:
    """The DuckDB body: the batch's validated rows redacted, and the restricted tables' rows of the batch."""
    policy = load_pii_policy()
    source = validated_source(lake, dataset, batch)
    protected = policy.get("datasets", {}).get(dataset, {})
    key_bytes = pii_key.key() if protected and needs_key({"datasets": {dataset: protected}}) else None
    query = redact_sql(load_catalog().datasets[dataset], policy, key_bytes, source)
    parts = staged_parts("redacted", dataset, batch)
    metadata = {"rows": write_query(PiiEngine(engine), lake, query, *parts, kv=rows_version())}
    for table, restricted in restricted_tables(dataset).items():
        columns = [restricted["key"], *restricted["columns"]]
        query = f"SELECT {column_list(columns)} FROM {source}"
        parts = staged_parts("restricted", table, batch)
        metadata[f"{table}_rows"] = write_query(
            engine, lake, query, *parts, order_by=restricted["key"], kv=rows_version()
        )
    return metadata


def rows_version() -> dict[str, str]:
    """A new version id for a batch file's rows (footer `state_version`): the curated step copies a first batch
    into its state as it is, and the state keeps this id, instead of rewriting the rows to stamp a new one."""
    return {STATE_VERSION: uuid.uuid4().hex}


def _launch_redact(context, lake, pii_key: PiiKey, job_runner: JobRunner, dataset: str, batch: str) -> dict:
    """The launched redact step; the key travels as the key resource says (environment or secret id)."""
    restricted = {table: lake.uri(*staged_parts("restricted", table, batch)) for table in restricted_tables(dataset)}
    paths = {
        "input": lake.uri(*staged_parts("validated", dataset, batch)),
        "standardized": lake.uri(*staged_parts("standardized", dataset, batch)),
        "deduped": lake.uri(*staged_parts("deduped", dataset, batch)),
        "output": lake.uri(*staged_parts("redacted", dataset, batch)),
        "restricted": ",".join(f"{table}={uri}" for table, uri in restricted.items()) or None,
    }
    arguments = step_arguments(context, lake, "redact", dataset, batch, **paths) | pii_key.job_arguments()
    return dict(job_runner.run(context, "redact", arguments, env=pii_key.job_env()).metadata or {})


def build_redacted_asset(dataset: str) -> dg.AssetsDefinition:
    @layer_asset(
        "redacted",
        dataset,
        f"{dataset}: PII hashed, masked, generalized or dropped per the PII policy; PII detection report.",
        deps=[key("validated", dataset)],
    )
    def redacted_asset(
        context: dg.AssetExecutionContext,
        lake: LocalLake,
        engine: DuckDBEngine,
        pii_key: PiiKey,
        job_runner: JobRunner,
    ) -> dg.MaterializeResult:
        batch = batch_of(context)
        if launches_job(job_runner, lake, dataset, batch):
            metadata = _launch_redact(context, lake, pii_key, job_runner, dataset, batch)
        else:
            metadata = _redact_in_process(lake, engine, pii_key, dataset, batch)
        protected = load_pii_policy().get("datasets", {}).get(dataset, {})
        metadata["pii_actions"] = dg.MetadataValue.json({c: r["action"] for c, r in protected.items()})
        scan = detect_pii(engine, lake, dataset, batch)
        metadata |= report_metadata(scan, write_report(lake, context.run_id, dataset, scan.detections))
        for column, found in scan.unprotected.items():
            context.log.warning(
                f"{dataset}.{column} looks like {found.entity} ({found.share:.0%} of {found.sampled} sampled values) "
                "but the PII policy does not list it: add it to config/pii_policy.yaml"
            )
        return dg.MaterializeResult(metadata=metadata)

    return redacted_asset


redacted_assets = [build_redacted_asset(dataset) for dataset in DATASETS]
