"""The data catalog: one interface (`Catalog`), a local twin (`LocalCatalog`, JSON files in the lake) and an AWS
twin (`GlueCatalog`, the Glue Data Catalog). Registering a table behaves like a Glue crawler: the schema comes
from the files, drift against the catalogued table is detected once, for both twins, and handled per the
`schema_drift` policy (config/schema_drift.yaml, $ENROLLMENT_SCHEMA_DRIFT)."""

from enrollment_platform.resources.catalog.base import Catalog, Registration
from enrollment_platform.resources.catalog.drift import Drift, Rename, SchemaDriftError, TypeChange, detect_drift
from enrollment_platform.resources.catalog.glue import CatalogAccessError, GlueCatalog
from enrollment_platform.resources.catalog.local import LocalCatalog
from enrollment_platform.resources.catalog.model import Column, Partition, TableDefinition
from enrollment_platform.resources.catalog.schema import hive_type, merge_columns, parquet_columns, raw_columns

__all__ = [
    "Catalog",
    "CatalogAccessError",
    "Column",
    "Drift",
    "GlueCatalog",
    "LocalCatalog",
    "Partition",
    "Registration",
    "Rename",
    "SchemaDriftError",
    "TableDefinition",
    "TypeChange",
    "detect_drift",
    "hive_type",
    "merge_columns",
    "parquet_columns",
    "raw_columns",
]
