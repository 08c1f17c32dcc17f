"""Raw layer: the run's batch of each dataset's raw files, each staged as all-text Parquet with lineage.

The batch is every file of the run's ingestion dates that the ledger has not seen with this content
(enrollment_platform.bookmarks). A staged copy is kept per content, so a run that dies and is rerun does not
parse its files again. A file that holds no table at all is listed as rejected, with its reason.
"""

import hashlib
import json
from pathlib import Path

import dagster as dg

from enrollment_platform.assets.common import DATASETS, batch_of, count_rows, key, markdown_table, read_parquet
from enrollment_platform.bookmarks import (
    BatchFile,
    batch_content_id,
    load_ledger,
    pending_files,
    read_batch,
    write_batch,
)
from enrollment_platform.config import load_catalog
from enrollment_platform.partitions import (
    batch_range,
    in_range,
    ingest_date,
    ingest_date_partitions,
    single_run_backfill,
)
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.job_runner import JobRunner
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.raw import RawFile, RawLayer
from enrollment_platform.retries import EXTERNAL_IO_RETRY, retry_transient_only
from enrollment_platform.transforms.read_raw import FileReport, stage_raw_file
from enrollment_platform.transforms.sql import quote_ident


def staged_raw_files(lake: LocalLake, dataset: str, batch: str) -> list[str]:
    """The staged Parquet files of the batch's raw files."""
    return [f.staged for f in read_batch(lake, batch, dataset)]


def staged_raw_uris(lake: LocalLake, dataset: str, batch: str) -> str:
    """The batch's staged raw files as the comma-separated URIs a launched job step reads."""
    return ",".join(lake.uri("staging", "raw", dataset, Path(f).name) for f in staged_raw_files(lake, dataset, batch))


def launches_job(job_runner: JobRunner, lake: LocalLake, dataset: str, batch: str) -> bool:
    """Whether this batch's steps run as launched jobs (Spark/Glue); an empty batch needs no cluster."""
    return not job_runner.in_process and bool(staged_raw_files(lake, dataset, batch))


def staged_raw_source(lake: LocalLake, dataset: str, batch: str) -> str:
    """SQL source over the batch's staged raw rows; an empty table of the right shape when there are none."""
    files = staged_raw_files(lake, dataset, batch)
    if files:
        return read_parquet(files)
    columns = ", ".join(f"NULL::VARCHAR AS {quote_ident(c)}" for c in load_catalog().datasets[dataset].columns)
    return (
        f"(SELECT {columns}, NULL::VARCHAR AS _source_file, NULL::BIGINT AS _source_row, "
        "NULL::VARCHAR AS _raw_line, NULL::VARCHAR[] AS _load_errors LIMIT 0)"
    )


def _stage(
    engine: DuckDBEngine, lake: LocalLake, raw_layer: RawLayer, raw_file: RawFile, identity: str
) -> tuple[str, FileReport]:
    """Stage one raw file (or reuse its staged copy for the same content)."""
    name = hashlib.sha256(f"{raw_file.relative}|{identity}".encode()).hexdigest()[:24]
    target = lake.path("staging", "raw", raw_file.dataset, f"{name}.parquet")
    report_path = Path(target).with_suffix(".json")
    if Path(target).exists() and report_path.exists():
        return target, FileReport(**json.loads(report_path.read_text()))
    spec = load_catalog().datasets[raw_file.dataset]
    con = engine.connect()
    try:
        with lake.atomic_write("staging", "raw", raw_file.dataset, f"{name}.parquet") as temporary:
            report = stage_raw_file(con, raw_layer.localize(raw_file), raw_file.relative, spec, Path(temporary))
    finally:
        con.close()
    report_path.write_text(json.dumps(report.to_dict()))
    return target, report


def _write_rejected_files(lake, engine, dataset: str, batch: str, rejected: list[FileReport], run_id: str) -> None:
    con = engine.connect()
    try:
        con.execute("CREATE TABLE rejected (path VARCHAR, reason VARCHAR, size_bytes BIGINT, run_id VARCHAR)")
        if rejected:
            con.executemany(
                "INSERT INTO rejected VALUES (?, ?, ?, ?)",
                [(r.path, "; ".join(r.messages), r.size_bytes, run_id) for r in rejected],
            )
        with lake.atomic_write(*rejected_files_path(lake, dataset, batch)) as temporary:
            con.execute(f"COPY rejected TO '{temporary}' (FORMAT parquet)")
    finally:
        con.close()


def rejected_files_path(lake: LocalLake, dataset: str, batch: str) -> list[str]:
    """Files rejected as a whole: `quarantine/<dataset>/batch=<dates>/files-<files id>.parquet`."""
    return ["quarantine", dataset, f"batch={batch}", f"files-{batch_content_id(lake, batch, dataset)}.parquet"]


def build_raw_asset(dataset: str) -> dg.AssetsDefinition:
    from enrollment_platform.monitoring.layer_metadata import with_layer_metadata

    @dg.asset(
        key=key("raw", dataset),
        group_name="raw",
        description=f"The run's batch of raw {dataset} files (CSV, JSON lines, Parquet), each staged as text.",
        kinds={"duckdb", "parquet"},
        retry_policy=EXTERNAL_IO_RETRY,
        partitions_def=ingest_date_partitions,
        backfill_policy=single_run_backfill,
    )
    @retry_transient_only
    @with_layer_metadata("raw", dataset)
    def raw_asset(
        context: dg.AssetExecutionContext, raw_layer: RawLayer, lake: LocalLake, engine: DuckDBEngine
    ) -> dg.MaterializeResult:
        batch = batch_of(context)
        first, last = batch_range(context.run.tags)
        inventory = raw_layer.inventory(load_catalog())
        in_batch = [
            f for f in inventory.files[dataset] if in_range(ingest_date(f.relative, f.modified_ns), first, last)
        ]
        todo = pending_files(in_batch, load_ledger(lake))
        files, reports = [], []
        for raw_file, identity in todo:
            staged, report = _stage(engine, lake, raw_layer, raw_file, identity)
            day = ingest_date(raw_file.relative, raw_file.modified_ns)
            files.append(
                BatchFile(dataset, raw_file.relative, raw_file.size_bytes, raw_file.modified_ns, identity, day, staged)
            )
            reports.append(report)
            if report.status != "ok":
                context.log.warning(f"{report.path}: {'; '.join(report.messages)}")
        write_batch(lake, batch, dataset, files)
        rejected = [r for r in reports if r.status == "rejected"]
        _write_rejected_files(lake, engine, dataset, batch, rejected, context.run.run_id)
        con = engine.connect()
        rows_in = count_rows(con, [f.staged for f in files])
        con.close()
        return dg.MaterializeResult(
            metadata={
                "batch": batch,
                "rows_in": dg.MetadataValue.int(rows_in),
                "files": dg.MetadataValue.int(len(files)),
                "files_already_processed": dg.MetadataValue.int(len(in_batch) - len(files)),
                "files_rejected": dg.MetadataValue.int(len(rejected)),
                "lines_rejected": dg.MetadataValue.int(sum(r.rejected_lines for r in reports)),
                "bytes": dg.MetadataValue.int(sum(r.size_bytes for r in reports)),
                "inventory": dg.MetadataValue.md(
                    markdown_table(
                        [{**r.to_dict(), "messages": "; ".join(r.messages)} for r in reports],
                        ["path", "format", "rows", "rejected_lines", "encoding", "status", "messages"],
                    )
                ),
                "ignored_files": dg.MetadataValue.json(inventory.ignored),
            }
        )

    return raw_asset


raw_assets = [build_raw_asset(dataset) for dataset in DATASETS]
