"""The tables an access policy is resolved against: each warehouse table's columns and types, exactly as the load
builds them (resources/warehouse/model.py) from the curated Parquet schemas, and how each column is named in the
curated lake (for Lake Formation, which governs the curated tables)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from enrollment_platform.config import DimensionSpec, load_catalog, load_pii_policy
from enrollment_platform.resources.warehouse.model import TableDef, log_table, read_schema, star_table
from enrollment_platform.security.policy import DQ_RESULTS

CURATED_TABLE_PREFIX = "curated_"  # the curated crawler's TablePrefix (infra/catalog.yaml)


@dataclass(frozen=True)
class StarSchema:
    """Warehouse tables by name; `datasets` maps each star table to the curated dataset it is loaded from."""

    tables: Mapping[str, TableDef]
    datasets: Mapping[str, str] = field(default_factory=dict)

    def columns(self, table: str) -> list[str]:
        """Every column of a warehouse table, in order (the surrogate key first)."""
        return [c.name for c in self.tables[table].table_columns]

    def column_type(self, table: str, column: str) -> pa.DataType:
        return next(c.type for c in self.tables[table].table_columns if c.name == column)

    def surrogate_key(self, table: str) -> str:
        key = self.tables[table].surrogate_key
        if key is None:
            raise ValueError(f"{table} has no surrogate key: it cannot be a row filter's lookup")
        return key

    def referencing(self, dimension: str) -> dict[str, str]:
        """{table: its key column} of every table holding a key of `dimension` (a fact's course_key)."""
        return {
            name: ref.key
            for name, table in self.tables.items()
            for ref in table.references
            if ref.dimension == dimension
        }

    def curated_table(self, table: str) -> str | None:
        """The Glue Data Catalog table of the curated dataset a warehouse table is loaded from (Lake Formation)."""
        dataset = self.datasets.get(table)
        return f"{CURATED_TABLE_PREFIX}{dataset}" if dataset else None

    def curated_column(self, table: str, column: str) -> str | None:
        """A warehouse column's name in the curated file: lineage renamed back, a dimension key as the natural
        reference it replaced (course_key -> course_id); None for the table's own surrogate key."""
        definition = self.tables[table]
        for target in definition.columns:
            if target.name == column:
                return target.source if target.reference is None else definition.references[target.reference].via
        return None

    def curated_columns(self, table: str) -> list[str]:
        return [c.name for c in self.tables[table].staged]


def star_schema(schemas: Mapping[str, pa.Schema]) -> StarSchema:
    """The warehouse tables built from the Arrow schemas of the files they are loaded from, keyed by table name
    (curated file for a star table, restricted file for a restricted table, staged results for dq_results)."""
    catalog, restricted = load_catalog(), load_pii_policy().get("restricted", {})
    tables: dict[str, TableDef] = {}
    for name, schema in schemas.items():
        if name in catalog.warehouse:
            tables[name] = star_table(catalog.warehouse[name], schema)
        elif name in restricted:
            spec = DimensionSpec(name, restricted[name]["dataset"], restricted[name]["key"], f"{name}_key")
            tables[name] = star_table(spec, schema, lineage=False)
        elif name == DQ_RESULTS:
            tables[name] = log_table(name, schema)
        else:
            raise ValueError(f"{name} is not a warehouse table of the config (datasets.yaml, pii_policy.yaml)")
    datasets = {name: spec.dataset for name, spec in catalog.warehouse.items() if name in tables}
    return StarSchema(tables, datasets)


def lake_sources(lake) -> dict[str, list[str]]:
    """Where each warehouse table is loaded from, as lake path parts: the documented lake layout (README, "Runs,
    batches and partitions"): `curated/<dataset>/<dataset>.parquet`, `restricted/<table>/<table>.parquet`, and the
    latest run's staged `staging/dq_results/<run>.parquet`."""
    catalog = load_catalog()
    sources = {name: ["curated", spec.dataset, f"{spec.dataset}.parquet"] for name, spec in catalog.warehouse.items()}
    for name in load_pii_policy().get("restricted", {}):
        sources[name] = ["restricted", name, f"{name}.parquet"]
    staged = lake.list("staging", DQ_RESULTS)
    if staged:
        sources[DQ_RESULTS] = ["staging", DQ_RESULTS, Path(max(staged, key=os.path.getmtime)).name]
    return sources


def star_schema_from_lake(lake) -> StarSchema:
    """The tables whose source files exist in the lake (a table with no curated data yet is left out)."""
    schemas = {
        name: read_schema(lake.path(*parts)) for name, parts in lake_sources(lake).items() if lake.exists(*parts)
    }
    return star_schema(schemas)
