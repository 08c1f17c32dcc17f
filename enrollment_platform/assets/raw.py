"""Raw layer: the run's batch of each dataset's raw files, each staged as all-text Parquet with lineage.

The batch is every file of the run's ingestion dates that the ledger has not seen with this content
(enrollment_platform.bookmarks). A staged copy is kept per content, so a run that dies and is rerun does not
parse its files again. A file that holds no table at all is listed as rejected, with its reason.
"""

import hashlib
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
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


def _staged_parts(raw_file: RawFile, identity: str) -> list[str]:
    name = hashlib.sha256(f"{raw_file.relative}|{identity}".encode()).hexdigest()[:24]
    return ["staging", "raw", raw_file.dataset, f"{name}.parquet"]


def _reused(target: str) -> FileReport | None:
    """The report of a file staged before with the same content (a rerun does not parse it again)."""
    report_path = Path(target).with_suffix(".json")
    if Path(target).exists() and report_path.exists():
        return FileReport(**json.loads(report_path.read_text()))
    return None


def _parse(engine: DuckDBEngine, raw_file: RawFile, local: Path, out: Path, workers: int) -> FileReport:
    """Stage one raw file into `out` (on one thread of its own when several are parsed side by side)."""
    con = engine.connect(threads=1 if workers > 1 else 0, share=workers)
    try:
        return stage_raw_file(con, local, raw_file.relative, load_catalog().datasets[raw_file.dataset], out)
    finally:
        con.close()


def stage_files(
    engine: DuckDBEngine, lake: LocalLake, raw_layer: RawLayer, todo: list[tuple[RawFile, str]]
) -> list[tuple[str, FileReport]]:
    """Stage the batch's raw files, in their order; reuse the staged copy of a content seen before.

    A file's parse is mostly one thread's work, so files are parsed side by side (one per core, each on one
    thread with its share of the engine's memory): at 10 M rows about twice as fast as one file at a time on two
    threads. Fetching (`localize`) and writing to the lake stay on this thread, so remote clients are not shared.
    """
    parts = [_staged_parts(raw_file, identity) for raw_file, identity in todo]
    reports: list[FileReport | None] = [_reused(lake.path(*p)) for p in parts]
    pending = [(i, raw_file, raw_layer.localize(raw_file)) for i, (raw_file, _) in enumerate(todo) if not reports[i]]
    if pending:
        folder = Path(lake.path(*parts[0])).parent
        folder.mkdir(parents=True, exist_ok=True)
        workers = min(engine.workers(), len(pending))
        with (
            tempfile.TemporaryDirectory(dir=folder, prefix=".parsing-") as scratch,
            ThreadPoolExecutor(workers) as pool,
        ):
            outs = [Path(scratch, f"{i}.parquet") for i, _, _ in pending]
            parsed = pool.map(lambda job, out: _parse(engine, job[1], job[2], out, workers), pending, outs)
            for (i, _, _), out, report in zip(pending, outs, parsed, strict=True):
                with lake.atomic_write(*parts[i]) as temporary:
                    os.replace(out, temporary)
                Path(lake.path(*parts[i])).with_suffix(".json").write_text(json.dumps(report.to_dict()))
                reports[i] = report
    return [(lake.path(*p), report) for p, report in zip(parts, reports, strict=True)]


def _write_rejected_files(lake, engine, dataset: str, batch: str, rejected: list[FileReport], run_id: str) -> None:
    con = engine.connect()
    try:
        columns = "path VARCHAR, reason VARCHAR, size_bytes BIGINT, run_id VARCHAR"
        con.execute(f"CREATE OR REPLACE TEMP TABLE rejected ({columns})")
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
        for (raw_file, identity), (staged, report) in zip(
            todo, stage_files(engine, lake, raw_layer, todo), strict=True
        ):
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
