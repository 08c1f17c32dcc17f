"""The embedded warehouse: one DuckDB file, which reads the curated Parquet files itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import duckdb

from enrollment_platform.resources.warehouse.base import Fetch, Session, Warehouse
from enrollment_platform.resources.warehouse.dialects import DuckDBDialect
from enrollment_platform.resources.warehouse.model import TableDef
from enrollment_platform.transforms.sql import quote_ident


def duckdb_path(url: str) -> str:
    """`duckdb:///rel/path.duckdb` or `duckdb:////abs/path.duckdb` -> the file path."""
    prefix = "duckdb:///"
    if not url.startswith(prefix):
        raise ValueError(f"not a DuckDB warehouse URL: {url!r} (expected duckdb:///path/to/file.duckdb)")
    return url[len(prefix) :]


class DuckDBWarehouse(Warehouse):
    """The embedded warehouse: one DuckDB file. It has no users or grants (see README, Security)."""

    path: str
    dialect: ClassVar[DuckDBDialect] = DuckDBDialect()

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(self.path)
        try:
            yield con
        finally:
            con.close()

    def query(self, sql: str, parameters: list | None = None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, parameters or []).fetchall()

    @contextmanager
    def scan_view(self, table: str, text_columns: list[str]) -> Iterator[tuple[Fetch, str]]:
        """The table itself: the leak scan's SQL is DuckDB's."""
        yield self.query, quote_ident(table)

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.connect() as con:
            yield con

    def _cursor(self, connection: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        return connection  # a DuckDB cursor would be a second connection, outside the transaction

    def _begin(self, connection: duckdb.DuckDBPyConnection) -> None:
        connection.begin()

    def _stage(self, session: Session, table: TableDef, parquet: str) -> None:
        session.execute(self.dialect.insert_parquet(table, parquet))
