"""Leak scan: every detector over every text column of the curated files and the warehouse tables.

Restricted tables (name contains "pii") are the one place raw PII may live and are not scanned; the policy's
`leak_scan.allow` lists (column, entity) pairs that are not PII by construction (e.g. dates in lineage paths).
Any other match fails a blocking asset check, so nothing downstream of a leak is built. The check's metadata
holds counts per table, column and entity only, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from enrollment_platform.assets.common import DATASETS, batch_of, key, read_parquet
from enrollment_platform.assets.curated import batch_changes, state_version
from enrollment_platform.assets.deduped import curated_parts
from enrollment_platform.assets.warehouse import warehouse_assets
from enrollment_platform.config import load_catalog, load_pii_policy
from enrollment_platform.pii.detectors import Detector, default_detector
from enrollment_platform.pii.scan import Fetch, is_text, scan_columns
from enrollment_platform.pii.shortcuts import detector_digest
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.warehouse import Warehouse
from enrollment_platform.resources.warehouse.base import BatchChanges
from enrollment_platform.transforms.sql import quote_ident

CHECK_NAME = "no_pii_leak"


@dataclass(frozen=True)
class Leak:
    table: str
    column: str
    entity: str
    matches: int


def is_restricted(name: str) -> bool:
    """Restricted tables, the only ones allowed raw PII, have `pii` in their name."""
    return "pii" in name.lower()


def allowed_pairs(policy: Mapping[str, Any]) -> dict[str, set[str]]:
    allow = (policy.get("leak_scan") or {}).get("allow") or {}
    return {column: set(entities) for column, entities in allow.items()}


def scan_relation(
    fetch: Fetch, table: str, relation: str, columns: list[tuple[str, str]], detector: Detector
) -> list[Leak]:
    """Leaks in the text columns of one relation, minus the allowed (column, entity) pairs."""
    allow = allowed_pairs(load_pii_policy())
    text_columns = [(name, data_type) for name, data_type in columns if is_text(data_type)]
    found = scan_columns(fetch, relation, text_columns, detector)
    return [
        Leak(table, column, entity, matches)
        for column, counts in found.items()
        for entity, matches in sorted(counts.items())
        if entity not in allow.get(column, set())
    ]


def scan_parquet(engine: DuckDBEngine, label: str, paths: list[str], detector: Detector | None = None) -> list[Leak]:
    """Leaks in Parquet files (one logical table, e.g. a curated dataset)."""
    if not paths:
        return []
    relation = read_parquet(paths)
    con = engine.connect()
    try:
        columns = [(row[0], row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
        return scan_relation(
            lambda sql: con.execute(sql).fetchall(), label, relation, columns, detector or default_detector()
        )
    finally:
        con.close()


def scan_curated(lake: LocalLake, engine: DuckDBEngine, dataset: str, detector: Detector | None = None) -> list[Leak]:
    if is_restricted(dataset):
        return []
    return scan_parquet(engine, f"curated/{dataset}", lake.list("curated", dataset), detector)


def clean_marker(scanned: str, version: str, detector: Detector) -> list[str]:
    """A lake object saying a curated state version (or a warehouse table loaded from one, `warehouse.<table>`)
    was scanned with this detector and held no PII."""
    return ["staging", "leak_scanned", scanned, f"{version}-{detector_digest(detector)[:16]}"]


def _started_clean(lake: LocalLake, scanned: str, changes: BatchChanges | None, detector: Detector) -> bool:
    """Whether the version a batch's changes start from was scanned clean with this detector."""
    if changes is None or not changes.base_version:
        return False
    return lake.exists(*clean_marker(scanned, changes.base_version, detector))


def _mark_clean(lake: LocalLake, scanned: str, version: str, detector: Detector, leaks: list[Leak]) -> None:
    if version and not leaks:
        with lake.atomic_write(*clean_marker(scanned, version, detector)) as marker:
            open(marker, "w").close()


def scan_curated_batch(
    lake: LocalLake, engine: DuckDBEngine, dataset: str, batch: str, detector: Detector | None = None
) -> tuple[list[Leak], str]:
    """Leaks in the curated state after a batch, and what was scanned. When the version the batch started from was
    scanned clean with the same detector, only the batch's new and changed rows are scanned (the other rows are
    those of that version); otherwise the whole state. A clean result marks the new version."""
    detector = detector or default_detector()
    changes = batch_changes(lake, dataset, curated_parts(dataset), batch)
    if _started_clean(lake, dataset, changes, detector):
        leaks = scan_parquet(engine, f"curated/{dataset}", [changes.rows], detector)
        scanned = f"curated/{dataset}: the batch's new and changed rows (version {changes.base_version} was clean)"
    else:
        leaks, scanned = scan_curated(lake, engine, dataset, detector), f"curated/{dataset}"
    version = state_version(lake.path(*curated_parts(dataset))) if lake.exists(*curated_parts(dataset)) else ""
    _mark_clean(lake, dataset, version, detector, leaks)
    return leaks, scanned


def scan_warehouse_table(
    warehouse: Warehouse, table: str, detector: Detector | None = None, only_keys: tuple[str, str] | None = None
) -> list[Leak]:
    """Leaks in one warehouse table, through read-only queries; restricted tables are skipped. The scan speaks
    DuckDB SQL: a PostgreSQL or Redshift warehouse hands over the table's text columns as a DuckDB view.

    `only_keys` (key column, Parquet file): scan only the rows whose key is one of the file's."""
    if is_restricted(table):
        return []
    columns = warehouse.columns(table)
    fetched = [name for name, data_type in columns if is_text(data_type)]
    where = ""
    if only_keys:
        key_column, keys = only_keys
        fetched += [] if key_column in fetched else [key_column]
        where = f"{quote_ident(key_column)} IN (SELECT {quote_ident(key_column)} FROM {read_parquet(keys)})"
    with warehouse.scan_view(table, fetched, where) as (fetch, relation):
        return scan_relation(fetch, table, relation, columns, detector or default_detector())


def _curated_source(table: str) -> tuple[str, str] | None:
    """(dataset, natural key) of the curated state a star table is loaded from; None for other tables."""
    spec = load_catalog().warehouse.get(table)
    return (spec.dataset, spec.natural_key) if spec else None


def scan_warehouse_batch(
    lake: LocalLake, warehouse: Warehouse, table: str, batch: str | None, detector: Detector | None = None
) -> tuple[list[Leak], str]:
    """Leaks in a star table after a batch's load, and what was scanned. The table's text is a function of the
    curated version it holds (`Warehouse.loaded_version`), so when it holds the version the batch led to and the
    version before was scanned clean in it with the same detector, only the rows of the batch's new and changed
    keys are scanned; otherwise the whole table. A clean result marks the version the table holds."""
    detector = detector or default_detector()
    source = _curated_source(table)
    if source is None or is_restricted(table):
        return scan_warehouse_table(warehouse, table, detector), table
    dataset, natural_key = source
    loaded = warehouse.loaded_version(table)
    changes = batch_changes(lake, dataset, curated_parts(dataset), batch) if batch else None
    scope = f"warehouse.{table}"
    if changes and loaded == changes.state_version and _started_clean(lake, scope, changes, detector):
        leaks = scan_warehouse_table(warehouse, table, detector, only_keys=(natural_key, changes.rows))
        scanned = f"{table}: the rows of the batch's new and changed keys (version {changes.base_version} was clean)"
    else:
        leaks, scanned = scan_warehouse_table(warehouse, table, detector), table
    _mark_clean(lake, scope, loaded or "", detector, leaks)
    return leaks, scanned


def scan_warehouse(warehouse: Warehouse, detector: Detector | None = None) -> list[Leak]:
    """Leaks in every table of the warehouse except the restricted ones."""
    return [leak for table in warehouse.tables() for leak in scan_warehouse_table(warehouse, table, detector)]


def check_result(leaks: list[Leak], scanned: str) -> dg.AssetCheckResult:
    matches: dict[str, dict[str, int]] = {}
    for leak in leaks:
        matches.setdefault(f"{leak.table}.{leak.column}", {})[leak.entity] = leak.matches
    return dg.AssetCheckResult(
        passed=not leaks,
        metadata={
            "scanned": dg.MetadataValue.text(scanned),
            "matches_total": dg.MetadataValue.int(sum(leak.matches for leak in leaks)),
            "matches": dg.MetadataValue.json(matches),
        },
    )


def build_curated_leak_check(dataset: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=key("curated", dataset),
        name=CHECK_NAME,
        blocking=True,
        description="No detector matches in any text column of the curated files (counts only in metadata).",
    )
    def curated_leak_check(context, lake: LocalLake, engine: DuckDBEngine) -> dg.AssetCheckResult:
        # `context` unannotated: this module's postponed annotations would hide the type from Dagster
        leaks, scanned = scan_curated_batch(lake, engine, dataset, batch_of(context))
        return check_result(leaks, scanned)

    return curated_leak_check


def build_warehouse_leak_check(table: str) -> dg.AssetChecksDefinition:
    """The check of the warehouse table asset `warehouse/<table>`."""

    @dg.asset_check(
        asset=key("warehouse", table),
        name=CHECK_NAME,
        blocking=True,
        description=f"No detector matches in any text column of {table} (counts only in metadata).",
    )
    def warehouse_leak_check(context, lake: LocalLake, warehouse: Warehouse) -> dg.AssetCheckResult:
        return check_result(*scan_warehouse_batch(lake, warehouse, table, _run_batch(context)))

    return warehouse_leak_check


def _run_batch(context) -> str | None:
    """The run's batch; None when the check is invoked directly, outside a run (it then scans the whole table)."""
    try:
        return batch_of(context)
    except dg.DagsterError:  # DagsterInvalidPropertyError, not exported: no run on a directly invoked context
        return None


def _warehouse_tables() -> list[str]:
    """The warehouse table assets (`warehouse/<table>`; other keys in that module are not tables)."""
    keys = [asset_key for asset in warehouse_assets for asset_key in asset.keys]
    return [asset_key.path[-1] for asset_key in keys if asset_key.path[0] == "warehouse" and len(asset_key.path) == 2]


leak_checks = [build_curated_leak_check(d) for d in DATASETS if not is_restricted(d)]
leak_checks += [build_warehouse_leak_check(t) for t in _warehouse_tables() if not is_restricted(t)]
