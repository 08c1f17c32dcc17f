"""Raw layer: the inventory of each dataset's files, each staged as all-text Parquet with lineage.

A file is staged once per content fingerprint (path, size, modification time); unchanged files are not read
again. A file that holds no table at all is listed as rejected, with its reason, in the quarantine zone.
"""

import json
from pathlib import Path

import dagster as dg

from enrollment_platform.assets.common import DATASETS, count_rows, key, markdown_table, read_parquet
from enrollment_platform.config import load_catalog
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.raw import LocalRawLayer, RawFile
from enrollment_platform.transforms.read_raw import FileReport, file_fingerprint, stage_raw_file
from enrollment_platform.transforms.sql import quote_ident


def staged_raw_files(lake: LocalLake, dataset: str) -> list[str]:
    """The staged Parquet files of every raw file currently in the dataset's raw folders."""
    return lake.list("staging", "raw", dataset)


def staged_raw_source(lake: LocalLake, dataset: str) -> str:
    """SQL source over the staged raw files; an empty table of the right shape when there are none."""
    files = staged_raw_files(lake, dataset)
    if files:
        return read_parquet(files)
    columns = ", ".join(f"NULL::VARCHAR AS {quote_ident(c)}" for c in load_catalog().datasets[dataset].columns)
    return (
        f"(SELECT {columns}, NULL::VARCHAR AS _source_file, NULL::BIGINT AS _source_row, "
        "NULL::VARCHAR AS _raw_line, NULL::VARCHAR[] AS _load_errors LIMIT 0)"
    )


def _stage(engine: DuckDBEngine, lake: LocalLake, raw_file: RawFile, dataset: str) -> tuple[str, FileReport]:
    fingerprint = file_fingerprint(raw_file.path)
    target = lake.path("staging", "raw", dataset, f"{fingerprint}.parquet")
    report_path = Path(target).with_suffix(".json")
    if Path(target).exists() and report_path.exists():
        return target, FileReport(**json.loads(report_path.read_text()))
    spec = load_catalog().datasets[dataset]
    con = engine.connect()
    try:
        with lake.atomic_write("staging", "raw", dataset, f"{fingerprint}.parquet") as temporary:
            report = stage_raw_file(con, raw_file.path, raw_file.relative, spec, Path(temporary))
    finally:
        con.close()
    report_path.write_text(json.dumps(report.to_dict()))
    return target, report


def _rejected_files_table(lake: LocalLake, engine: DuckDBEngine, dataset: str, rejected: list[FileReport], run_id: str):
    con = engine.connect()
    try:
        con.execute("CREATE TABLE rejected (path VARCHAR, reason VARCHAR, size_bytes BIGINT, run_id VARCHAR)")
        if rejected:
            con.executemany(
                "INSERT INTO rejected VALUES (?, ?, ?, ?)",
                [(r.path, "; ".join(r.messages), r.size_bytes, run_id) for r in rejected],
            )
        with lake.atomic_write("quarantine", dataset, "rejected_files.parquet") as temporary:
            con.execute(f"COPY rejected TO '{temporary}' (FORMAT parquet)")
    finally:
        con.close()


def build_raw_asset(dataset: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=key("raw", dataset),
        group_name="raw",
        description=f"Inventory of the raw {dataset} files (CSV, JSON lines, Parquet), each staged as text.",
        kinds={"duckdb", "parquet"},
    )
    def raw_asset(
        context: dg.AssetExecutionContext, raw_layer: LocalRawLayer, lake: LocalLake, engine: DuckDBEngine
    ) -> dg.MaterializeResult:
        inventory = raw_layer.inventory(load_catalog())
        staged, reports = [], []
        for raw_file in inventory.files[dataset]:
            path, report = _stage(engine, lake, raw_file, dataset)
            staged.append(path)
            reports.append(report)
            if report.status != "ok":
                context.log.warning(f"{report.path}: {'; '.join(report.messages)}")
        for stale in set(staged_raw_files(lake, dataset)) - set(staged):
            Path(stale).unlink()
            Path(stale).with_suffix(".json").unlink(missing_ok=True)
        rejected = [r for r in reports if r.status == "rejected"]
        _rejected_files_table(lake, engine, dataset, rejected, context.run_id)
        con = engine.connect()
        rows_in = count_rows(con, staged)
        con.close()
        return dg.MaterializeResult(
            metadata={
                "rows_in": dg.MetadataValue.int(rows_in),
                "files": dg.MetadataValue.int(len(reports)),
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
