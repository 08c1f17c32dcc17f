"""The warehouse: the star schema (dimensions with surrogate keys, the enrollment fact), the restricted PII table
and dq_results, behind one interface with three connectors (DuckDB file, PostgreSQL, Redshift).

- `model.py`: the one definition of each table (config `warehouse:` + the curated Parquet schema);
- `dialects.py`, `types.py`: the SQL per dialect from that definition;
- `base.py`: the interface and the load every connector runs; `embedded.py`, `postgres.py`, `redshift.py`: the
  connectors; `factory.py`: the connector for ENROLLMENT_WAREHOUSE_URL.
"""

from enrollment_platform.resources.warehouse.base import LoadResult, Session, Warehouse
from enrollment_platform.resources.warehouse.embedded import DuckDBWarehouse, duckdb_path
from enrollment_platform.resources.warehouse.factory import warehouse_for
from enrollment_platform.resources.warehouse.postgres import PostgresWarehouse
from enrollment_platform.resources.warehouse.redshift import RedshiftWarehouse

__all__ = [
    "DuckDBWarehouse",
    "LoadResult",
    "PostgresWarehouse",
    "RedshiftWarehouse",
    "Session",
    "Warehouse",
    "duckdb_path",
    "warehouse_for",
]
