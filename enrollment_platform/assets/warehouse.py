"""Warehouse layer: the star schema (dimensions, enrollment fact), the restricted PII table and dq_results,
loaded from the curated state; then the bookmark of the batch's raw files, which advances only after every load
has committed."""

from dataclasses import dataclass, replace
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa

from enrollment_platform import bookmarks
from enrollment_platform.assets.common import DATASETS, batch_of, key, metadata_values, read_parquet, write_query
from enrollment_platform.assets.curated import batch_changes
from enrollment_platform.assets.deduped import curated_parts
from enrollment_platform.assets.redacted import restricted_path
from enrollment_platform.config import DimensionSpec, load_catalog, load_pii_policy
from enrollment_platform.partitions import ingest_date_partitions, single_run_backfill
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.warehouse import LoadResult, Warehouse
from enrollment_platform.resources.warehouse.base import BatchChanges
from enrollment_platform.retries import EXTERNAL_IO_RETRY, retry_transient_only
from enrollment_platform.transforms.sql import quote_ident


def warehouse_asset(name: str, deps: list[dg.AssetKey], description: str, kinds=("duckdb", "table")):
    """@dg.asset for one warehouse object, partitioned like the layers it loads from."""
    return dg.asset(
        key=key("warehouse", name),
        deps=deps,
        group_name="warehouse",
        description=description,
        kinds=set(kinds),
        partitions_def=ingest_date_partitions,
        backfill_policy=single_run_backfill,
        retry_policy=EXTERNAL_IO_RETRY,
    )


BATCH_LOAD = "the batch's changes"
HELD = "nothing: the table already held the batch's version"
LOADED_FROM = {"batch": BATCH_LOAD, "held": HELD}
EARLIER_LOADS = 10  # a held table's materializations searched for the load that brought it the batch's version


def _load_metadata(context, result: LoadResult, changes: BatchChanges | None) -> dict:
    metadata = {
        "rows": dg.MetadataValue.int(result.rows),
        "inserted": dg.MetadataValue.int(result.inserted),
        "updated": dg.MetadataValue.int(result.updated),
        "deleted": dg.MetadataValue.int(result.deleted),
        "loaded_from": LOADED_FROM.get(result.loaded_from, "the whole curated state"),
    }
    if changes is not None and result.loaded_from in LOADED_FROM:
        metadata["state_version"] = changes.state_version
    if result.loaded_from == "held" and (earlier := _batch_load_of(context, changes.state_version)):
        metadata |= {f"batch_{figure}": dg.MetadataValue.int(earlier[figure]) for figure in ("inserted", "deleted")}
        metadata["batch_loaded_by_run"] = earlier["run_id"]
    return metadata


def _batch_load_of(context, version: str) -> dict | None:
    """The figures of the earlier load that brought this table the batch's changes (a re-run of a batch whose run
    stopped after it finds the table holding them), with its run id; None when it is not among the last ones."""
    records = context.instance.fetch_materializations(context.asset_key, limit=EARLIER_LOADS).records
    for record in records:
        values = metadata_values(record.asset_materialization.metadata)
        if values.get("loaded_from") == BATCH_LOAD and values.get("state_version") == version:
            return values | {"run_id": record.run_id}
    return None


@dataclass(frozen=True)
class DimensionLoad:
    """What the load of a dimension's current version did: in this run, or, where this run found the table already
    holding the batch's version, in the run that loaded it."""

    from_batch: bool  # it took exactly its batch's changes (not the whole state)
    inserted: int
    deleted: int

    @classmethod
    def of(cls, metadata: dict) -> "DimensionLoad":
        values = metadata_values(metadata)
        if values.get("loaded_from") == HELD:  # the earlier batch load's figures, when they were found
            held = "batch_inserted" in values
            return cls(held, values.get("batch_inserted") or 0, values.get("batch_deleted") or 0)
        return cls(values.get("loaded_from") == BATCH_LOAD, values.get("inserted") or 0, values.get("deleted") or 0)


def dimension_loads(context, spec: DimensionSpec) -> dict[str, DimensionLoad] | None:
    """The load of each dimension the fact references, by the fact's key column, as this run made it; None when one
    was not loaded in this run (e.g. a run of the fact alone)."""
    loads = {}
    for key_column, (dimension, _) in spec.references.items():
        records = context.instance.fetch_materializations(key("warehouse", dimension), limit=1).records
        if not records or records[0].run_id != context.run.run_id:
            return None
        loads[key_column] = DimensionLoad.of(records[0].asset_materialization.metadata)
    return loads


def _unresolved_references(warehouse: Warehouse, table: str, key_column: str) -> int | None:
    """Fact rows whose reference found no dimension row (NULL key); None when the table cannot be read."""
    unresolved = f"SELECT count(*) FROM {quote_ident(table)} WHERE {quote_ident(key_column)} IS NULL"
    try:
        return warehouse.query(unresolved)[0][0]
    except Exception:  # e.g. no such table yet: the load takes the whole state, which creates it
        return None


def fact_changes(
    lake: LocalLake, warehouse: Warehouse, spec: DimensionSpec, batch: str, loads: dict[str, DimensionLoad] | None
) -> BatchChanges | None:
    """The batch's changes, when loading only them leaves every other fact row right; else None (whole state).

    A dimension that took exactly its batch's changes kept the surrogate key of every natural key it had, so a fact
    row the batch did not bring can change in two ways only: a key it holds was deleted (the load then clears it,
    see `dangling_references`), or it holds no key yet (NULL) and names one of the natural keys the dimension just
    gained, which only the curated state can tell (the fact keeps no natural reference). That case, and a
    dimension loaded from its whole state or not in this run, take the whole state."""
    changes = batch_changes(lake, spec.dataset, curated_parts(spec.dataset), batch)
    if loads is None or changes is None:
        return None
    dangling = []
    for key_column, load in loads.items():
        if not load.from_batch:
            return None
        unresolved = load.inserted and _unresolved_references(warehouse, spec.table, key_column) != 0
        if unresolved and _new_keys_named_before(lake, warehouse, spec, key_column, load.inserted, changes):
            return None
        if load.deleted:
            dangling.append(key_column)
    return replace(changes, dangling_references=tuple(dangling))


def _new_keys_named_before(
    lake: LocalLake, warehouse: Warehouse, spec: DimensionSpec, key_column: str, inserted: int, changes: BatchChanges
) -> bool:
    """Whether a curated row the batch did not bring names one of the natural keys the dimension just gained (its
    `inserted` largest surrogate keys: new keys are numbered after the largest one). Only such a row can hold a
    NULL key that the new dimension rows resolve."""
    dimension, via = spec.references[key_column]
    key, natural = quote_ident(key_column), quote_ident(via)
    try:
        new_keys = warehouse.query(
            f"SELECT {natural} FROM {quote_ident(dimension)} "
            f"WHERE {key} > (SELECT max({key}) FROM {quote_ident(dimension)}) - {int(inserted)}"
        )
    except Exception:  # e.g. no such dimension: assume the worst, the fact takes the whole state
        return True
    fact_key = quote_ident(spec.natural_key)
    with duckdb.connect() as con:
        con.register("new_keys", pa.table({"k": pa.array([row[0] for row in new_keys], pa.string())}))
        named = con.execute(
            f"SELECT count(*) FROM {read_parquet(lake.path(*curated_parts(spec.dataset)))} e "
            f"WHERE e.{natural} IN (SELECT k FROM new_keys) "
            f"AND NOT EXISTS (SELECT 1 FROM {read_parquet(changes.rows)} b WHERE b.{fact_key} = e.{fact_key})"
        ).fetchall()[0][0]
    return named > 0


def _no_state(path: str) -> dg.MaterializeResult | None:
    if Path(path).exists():
        return None
    return dg.MaterializeResult(metadata={"rows": dg.MetadataValue.int(0), "note": "no curated data yet"})


def build_table_asset(spec: DimensionSpec) -> dg.AssetsDefinition:
    is_fact = bool(spec.references)
    deps = [key("curated", spec.dataset), *(key("warehouse", dim) for dim, _ in spec.references.values())]

    @warehouse_asset(
        spec.table,
        deps,
        f"{spec.table}: {'fact' if is_fact else 'dimension'} keyed on {spec.natural_key}, "
        f"surrogate key {spec.surrogate_key}; idempotent upsert from the curated state.",
    )
    @retry_transient_only
    def table_asset(context: dg.AssetExecutionContext, lake: LocalLake, warehouse: Warehouse) -> dg.MaterializeResult:
        parquet = lake.path(*curated_parts(spec.dataset))
        if skipped := _no_state(parquet):
            return skipped
        batch = batch_of(context)
        if is_fact:
            changes = fact_changes(lake, warehouse, spec, batch, dimension_loads(context, spec))
            result = warehouse.load_fact(spec, parquet, changes)
        else:
            changes = batch_changes(lake, spec.dataset, curated_parts(spec.dataset), batch)
            result = warehouse.load_dimension(spec, parquet, changes)
        return dg.MaterializeResult(metadata=_load_metadata(context, result, changes))

    return table_asset


def build_restricted_asset(table: str, dataset: str, natural_key: str) -> dg.AssetsDefinition:
    @warehouse_asset(
        table, [key("curated", dataset)], f"{table}: raw PII of {dataset}, restricted to the PII-admin role."
    )
    @retry_transient_only
    def restricted_asset(
        context: dg.AssetExecutionContext, lake: LocalLake, warehouse: Warehouse
    ) -> dg.MaterializeResult:
        parquet = lake.path(*restricted_path(table))
        if skipped := _no_state(parquet):
            return skipped
        spec = DimensionSpec(table, dataset, natural_key, f"{table}_key")
        changes = batch_changes(lake, table, restricted_path(table), batch_of(context))
        result = warehouse.load_table(spec, parquet, changes)
        return dg.MaterializeResult(metadata=_load_metadata(context, result, changes))

    return restricted_asset


@warehouse_asset(
    "dq_results",
    [key("validated", dataset) for dataset in DATASETS],
    "One row per rule and run: evaluated, failed, score, outcome.",
)
@retry_transient_only
def dq_results_table(
    context: dg.AssetExecutionContext, lake: LocalLake, engine: DuckDBEngine, warehouse: Warehouse
) -> dg.MaterializeResult:
    run_id = context.run.run_id
    files = [f for f in lake.list("dq_results") if f"run_id={run_id}" in f]
    if not files:
        raise dg.Failure(f"no dq_results for run {run_id}: did the validated assets run?", allow_retries=False)
    staged = ["staging", "dq_results", f"{run_id}.parquet"]
    combined = write_query(engine, lake, f"SELECT * FROM {read_parquet(files)}", *staged)
    loaded = warehouse.append_results("dq_results", lake.path(*staged), run_id)
    from enrollment_platform.monitoring.dq_trend import dq_trend_metadata  # the pass-rate chart of the last runs

    return dg.MaterializeResult(
        metadata={
            "rules": dg.MetadataValue.int(combined),
            "rows_loaded": dg.MetadataValue.int(loaded),
            **dq_trend_metadata(lake, run_id),
        }
    )


def build_warehouse_assets() -> list[dg.AssetsDefinition]:
    assets = [build_table_asset(spec) for spec in load_catalog().warehouse.values()]
    assets += [
        build_restricted_asset(table, spec["dataset"], spec["key"])
        for table, spec in load_pii_policy().get("restricted", {}).items()
    ]
    assets.append(dq_results_table)
    return assets


warehouse_assets = build_warehouse_assets()


@dg.asset(
    key=key("state", "raw_bookmarks"),
    deps=[asset.key for asset in warehouse_assets],
    group_name="warehouse",
    description="Marks the batch's raw files processed, after every warehouse load has committed.",
    kinds={"parquet"},
    partitions_def=ingest_date_partitions,
    backfill_policy=single_run_backfill,
)
def raw_bookmarks(context: dg.AssetExecutionContext, lake: LocalLake) -> dg.MaterializeResult:
    committed = bookmarks.commit(lake, batch_of(context), list(DATASETS), context.run.run_id)
    return dg.MaterializeResult(metadata={"files_committed": dg.MetadataValue.int(committed)})


warehouse_assets.append(raw_bookmarks)
