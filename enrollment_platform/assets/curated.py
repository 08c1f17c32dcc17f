"""Curated layer: the published Parquet/Snappy files analysts and the warehouse read, and the reconciliation
`rows_in = rows_out + rows_quarantined + rows_duplicate` that proves no row was dropped silently."""

from dataclasses import asdict, dataclass

import dagster as dg

from enrollment_platform.assets.common import DATASETS, count_rows, key, staged, write_query
from enrollment_platform.assets.raw import staged_raw_files
from enrollment_platform.assets.validated import quarantine_path
from enrollment_platform.config import load_catalog
from enrollment_platform.resources.engine import DuckDBEngine
from enrollment_platform.resources.lake import LocalLake


@dataclass(frozen=True)
class Reconciliation:
    rows_in: int
    rows_out: int
    rows_quarantined: int
    rows_duplicate: int

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.rows_out + self.rows_quarantined + self.rows_duplicate

    def to_dict(self) -> dict:
        return {**asdict(self), "balanced": self.balanced}


def curated_path(dataset: str) -> list[str]:
    return ["curated", dataset, f"{dataset}.parquet"]


def reconcile(lake: LocalLake, engine: DuckDBEngine, dataset: str) -> Reconciliation:
    """Count every row of the dataset where it ended up, from the files themselves."""
    con = engine.connect()
    try:
        return Reconciliation(
            rows_in=count_rows(con, staged_raw_files(lake, dataset)),
            rows_out=count_rows(con, lake.path(*curated_path(dataset))),
            rows_quarantined=count_rows(con, lake.path(*quarantine_path(lake, dataset))),
            rows_duplicate=count_rows(con, staged(lake, "deduped", dataset), "_duplicate_reason IS NOT NULL"),
        )
    finally:
        con.close()


def build_curated_asset(dataset: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=key("curated", dataset),
        deps=[key("redacted", dataset)],
        group_name="curated",
        description=f"{dataset}: the curated Parquet (Snappy) files, written atomically, no raw PII.",
        kinds={"duckdb", "parquet"},
    )
    def curated_asset(lake: LocalLake, engine: DuckDBEngine) -> dg.MaterializeResult:
        primary_key = load_catalog().datasets[dataset].primary_key
        source = f"SELECT * FROM read_parquet('{staged(lake, 'redacted', dataset)}')"
        write_query(engine, lake, source, *curated_path(dataset), order_by=f'"{primary_key}"')
        counts = reconcile(lake, engine, dataset)
        metadata = {name: dg.MetadataValue.int(value) for name, value in asdict(counts).items()}
        metadata["reconciled"] = dg.MetadataValue.bool(counts.balanced)
        metadata["path"] = dg.MetadataValue.path(lake.path(*curated_path(dataset)))
        if not counts.balanced:
            raise dg.Failure(
                f"{dataset}: rows_in {counts.rows_in} != rows_out {counts.rows_out} + rows_quarantined "
                f"{counts.rows_quarantined} + rows_duplicate {counts.rows_duplicate}: rows were lost",
                metadata=metadata,
            )
        return dg.MaterializeResult(metadata=metadata)

    return curated_asset


def build_reconciliation_check(dataset: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=key("curated", dataset),
        name="reconciliation",
        blocking=True,
        description="rows_in = rows_out + rows_quarantined + rows_duplicate, counted from the files.",
    )
    def reconciliation_check(lake: LocalLake, engine: DuckDBEngine) -> dg.AssetCheckResult:
        counts = reconcile(lake, engine, dataset)
        return dg.AssetCheckResult(passed=counts.balanced, metadata=counts.to_dict())

    return reconciliation_check


curated_assets = [build_curated_asset(dataset) for dataset in DATASETS]
curated_checks = [build_reconciliation_check(dataset) for dataset in DATASETS]
