"""Catalog layer: each dataset's raw and curated tables registered in the data catalog, like Glue crawlers over
the raw zone and the curated zone.

- `raw_<dataset>_<format>`: the batch's raw files of one format (a table has one SerDe; the original system keeps
  CSV and JSON lines side by side), columns from the CSV header / JSON keys (strings) or the Parquet footer,
  partitioned by `ingest_date`: one partition per `ingest_date=YYYY-MM-DD` folder (files outside such folders
  belong to no partition, as with a crawler).
- `curated_<dataset>`: the curated Parquet state, typed from its footer.

Schema drift against the catalogued table is handled by the `catalog` resource per the `schema_drift` policy.
"""

import re
from collections import defaultdict
from pathlib import PurePosixPath

import dagster as dg

from enrollment_platform.assets.common import DATASETS, batch_of, key, layer_asset, markdown_table
from enrollment_platform.assets.deduped import curated_parts
from enrollment_platform.bookmarks import read_batch
from enrollment_platform.config import load_catalog
from enrollment_platform.resources.catalog import (
    Catalog,
    Column,
    Partition,
    Registration,
    TableDefinition,
    merge_columns,
    parquet_columns,
    raw_columns,
)
from enrollment_platform.resources.lake import Lake
from enrollment_platform.resources.raw import RawFile, RawLayer
from enrollment_platform.retries import EXTERNAL_IO_RETRY, retry_transient_only
from enrollment_platform.transforms.read_raw import SUPPORTED_SUFFIXES, UnreadableFile

RAW_PARTITION_KEY = Column("ingest_date", "string")
_INGEST_FOLDER = re.compile(r"^ingest_date=(\d{4}-\d{2}-\d{2})$")


def batch_raw_files(raw_layer: RawLayer, lake: Lake, dataset: str, batch: str) -> list[RawFile]:
    """The raw files of the batch (its manifest, written by the raw asset), as the raw layer lists them now."""
    wanted = {f.relative for f in read_batch(lake, batch, dataset)}
    return [f for f in raw_layer.inventory(load_catalog()).files[dataset] if f.relative in wanted]


def raw_tables(
    raw_layer: RawLayer, dataset: str, files: list[RawFile]
) -> list[tuple[TableDefinition, list[Partition]]]:
    """One table per file format among the files, with the partitions of their `ingest_date=` folders."""
    by_format: dict[str, list[RawFile]] = defaultdict(list)
    for raw_file in files:
        by_format[SUPPORTED_SUFFIXES[PurePosixPath(raw_file.relative).suffix.lower()]].append(raw_file)
    found = []
    for data_format, group in sorted(by_format.items()):
        columns = merge_columns(_file_columns(raw_layer, f, data_format) for f in group)
        columns = tuple(c for c in columns if c.name != RAW_PARTITION_KEY.name)
        if not columns:
            continue
        folder = PurePosixPath(group[0].relative).parts[0]
        table = TableDefinition(
            name=f"raw_{dataset}_{data_format}",
            location=raw_layer.location(folder) + "/",
            data_format=data_format,
            columns=columns,
            partition_keys=(RAW_PARTITION_KEY,),
            description=f"Raw {dataset} files ({data_format}) as delivered, every column text.",
        )
        found.append((table, ingest_partitions(raw_layer, group)))
    return found


def ingest_partitions(raw_layer: RawLayer, files: list[RawFile]) -> list[Partition]:
    """A partition per `ingest_date=YYYY-MM-DD` folder the files sit in."""
    partitions: dict[tuple[str, ...], Partition] = {}
    for raw_file in files:
        parts = PurePosixPath(raw_file.relative).parts
        for index, part in enumerate(parts[:-1]):
            if match := _INGEST_FOLDER.match(part):
                location = raw_layer.location(*parts[: index + 1]) + "/"
                partitions.setdefault((match.group(1),), Partition((match.group(1),), location))
                break
    return sorted(partitions.values(), key=lambda p: p.values)


def _file_columns(raw_layer: RawLayer, raw_file: RawFile, data_format: str) -> tuple[Column, ...]:
    """A raw file's columns; none for a file that holds no table (the raw asset rejected it already)."""
    try:
        return raw_columns(raw_layer.localize(raw_file), data_format)
    except (UnreadableFile, UnicodeDecodeError, OSError, ValueError):
        return ()


def curated_table(lake: Lake, dataset: str) -> TableDefinition | None:
    """The curated Parquet state as a table, or None before the dataset has any."""
    if not lake.exists(*curated_parts(dataset)):
        return None
    return TableDefinition(
        name=f"curated_{dataset}",
        location=lake.uri(*curated_parts(dataset)[:-1]) + "/",
        data_format="parquet",
        columns=parquet_columns(lake.path(*curated_parts(dataset))),
        description=f"Curated {dataset}: canonical columns, deduplicated, validated, no raw PII (Parquet, Snappy).",
    )


def registration_metadata(registrations: list[Registration], batch: str) -> dict[str, dg.MetadataValue | str]:
    """Per table: the action, the drift found and the columns."""
    rows = [
        {"table": r.table, "action": r.action, "drift": r.drift.describe(), "partitions_added": len(r.partitions_added)}
        for r in registrations
    ]
    columns = [
        {"table": r.table, "column": c.name, "type": c.type, "absent_since": c.absent_since}
        for r in registrations
        for c in r.columns
    ]
    return {
        "batch": batch,
        "tables": dg.MetadataValue.md(markdown_table(rows, ["table", "action", "drift", "partitions_added"])),
        "columns": dg.MetadataValue.md(markdown_table(columns, limit=200)),
        "drift_found": dg.MetadataValue.bool(any(r.drift.found for r in registrations)),
        "actions": dg.MetadataValue.json({r.table: r.action for r in registrations}),
        "drift": dg.MetadataValue.json({r.table: r.drift.to_dict() for r in registrations if r.drift.changed}),
        "partitions_added": dg.MetadataValue.int(sum(len(r.partitions_added) for r in registrations)),
    }


def build_catalog_asset(dataset: str) -> dg.AssetsDefinition:
    @layer_asset(
        "catalog",
        dataset,
        f"{dataset}: the raw and curated tables in the data catalog (local JSON catalog or Glue Data Catalog), "
        "schema drift handled per the schema_drift policy.",
        deps=[key("curated", dataset)],
        kinds=("glue", "parquet"),
        retry_policy=EXTERNAL_IO_RETRY,
    )
    @retry_transient_only
    def catalog_asset(
        context: dg.AssetExecutionContext, lake: Lake, raw_layer: RawLayer, catalog: Catalog
    ) -> dg.MaterializeResult:
        batch = batch_of(context)
        spec = load_catalog().datasets[dataset]
        tables = raw_tables(raw_layer, dataset, batch_raw_files(raw_layer, lake, dataset, batch))
        curated = curated_table(lake, dataset)
        tables += [(curated, [])] if curated else []
        registrations = [catalog.register_table(t, p, spec=spec, note=batch) for t, p in tables]
        for registration in registrations:
            if registration.action == "warned":
                context.log.warning(f"{registration.table}: schema drift not applied: {registration.drift.describe()}")
        return dg.MaterializeResult(metadata=registration_metadata(registrations, batch))

    return catalog_asset


catalog_assets = [build_catalog_asset(dataset) for dataset in DATASETS]
