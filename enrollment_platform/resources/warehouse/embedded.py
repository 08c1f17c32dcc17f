"""The embedded warehouse: one DuckDB file, which reads the curated Parquet files itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import duckdb

from enrollment_platform.resources.warehouse.base import (
    SLOW_QUERIES,
    Fetch,
    QueryLog,
    QueryStats,
    Session,
    Warehouse,
    scanned_rows,
)
from enrollment_platform.resources.warehouse.dialects import DuckDBDialect
from enrollment_platform.resources.warehouse.model import TableDef
from enrollment_platform.transforms.sql import quote_ident, quote_literal

PROFILER = "duckdb profiler"
PROBE_NOTE = (
    "DuckDB keeps no query history: each observation times one full scan of every table (a hash of every value) "
    "with DuckDB's profiler"
)


def duckdb_path(url: str) -> str:
    """`duckdb:///rel/path.duckdb` or `duckdb:////abs/path.duckdb` -> the file path."""
    prefix = "duckdb:///"
    if not url.startswith(prefix):
        raise ValueError(f"not a DuckDB warehouse URL: {url!r} (expected duckdb:///path/to/file.duckdb)")
    return url[len(prefix) :]


class DuckDBWarehouse(Warehouse):
    """The embedded warehouse: one DuckDB file. It has no users or grants (see README, Security).

    While a process holds one connection open (the in-process runner does, for a whole run), every other
    connection of the same configuration joins the open database instead of opening the file again; one of
    another configuration (e.g. read-only) fails until it is closed, and other processes cannot open the file."""

    path: str
    memory_limit: str = "2GB"  # bounds the load's share of a run's memory; larger loads spill beside the file
    dialect: ClassVar[DuckDBDialect] = DuckDBDialect()

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # rows need no insertion order (keys are numbered by an explicit sort): DuckDB then loads in parallel
        config = {"memory_limit": self.memory_limit, "preserve_insertion_order": False}
        con = duckdb.connect(self.path, config=config)
        try:
            yield con
        finally:
            con.close()

    def query(self, sql: str, parameters: list | None = None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, parameters or []).fetchall()

    @contextmanager
    def scan_view(self, table: str, text_columns: list[str], where: str = "") -> Iterator[tuple[Fetch, str]]:
        """The table itself (the leak scan's SQL is DuckDB's), or its rows matching `where`."""
        with self.connect() as con:
            relation = scanned_rows(con, quote_ident(table), text_columns, where)
            yield (lambda sql: con.execute(sql).fetchall()), relation

    def _table_sizes(self) -> dict[str, int]:
        """Bytes of the storage blocks holding each table (small tables may share a block with others)."""
        with self.connect() as con:
            block_size = con.execute(
                "SELECT block_size FROM pragma_database_size() WHERE database_name = current_database()"
            ).fetchone()[0]
            tables = [row[0] for row in con.execute(self.dialect.list_tables()).fetchall()]
            return {table: _blocks(con, table) * block_size for table in tables}

    def slow_queries(self, limit: int = SLOW_QUERIES) -> QueryLog:
        """A profiled full scan of every table, slowest first (the embedded warehouse has no query log)."""
        with self.connect() as con:
            tables = [row[0] for row in con.execute(self.dialect.list_tables()).fetchall()]
            con.execute("PRAGMA enable_profiling = 'no_output'")
            # with the default coverage (SELECT) DuckDB 2.0 reports {"result": "error"} for some scans
            con.execute("PRAGMA profiling_coverage = 'ALL'")
            try:
                timed = [_profiled(con, f"scan:{table}", probe_query(table)) for table in tables]
            finally:
                con.execute("PRAGMA disable_profiling")
        slowest = sorted(timed, key=lambda q: q.mean_ms, reverse=True)[:limit]
        return QueryLog(PROFILER, True, PROBE_NOTE, tuple(slowest))

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.connect() as con:
            yield con

    def _cursor(self, connection: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        return connection  # a DuckDB cursor would be a second connection, outside the transaction

    def _begin(self, connection: duckdb.DuckDBPyConnection) -> None:
        connection.begin()

    def _stage(self, session: Session, table: TableDef, parquet: str) -> None:
        """A view over the Parquet file: DuckDB reads it where the load needs it, no copy into a temporary table
        first (at 10 M enrollments that copy was a seventh of the fact load)."""
        session.execute(self.dialect.staged_view(table, parquet))

    def _create_staged(self, session: Session, table: TableDef, parquet: str) -> None:
        self._stage(session, table, parquet)  # the view is the staging relation: no temporary table to create


def probe_query(table: str) -> str:
    """A query that reads every column of every row of the table."""
    return f"SELECT bit_xor(hash(COLUMNS(*))) FROM {quote_ident(table)}"


def _blocks(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """How many distinct storage blocks the table's column segments occupy."""
    info = f"pragma_storage_info({quote_literal(table)})"
    return con.execute(
        f"SELECT count(DISTINCT block) FROM (SELECT block_id AS block FROM {info} WHERE block_id >= 0 "
        f"UNION ALL SELECT unnest(additional_block_ids) AS block FROM {info})"
    ).fetchone()[0]


def _profiled(con: duckdb.DuckDBPyConnection, query_id: str, sql: str) -> QueryStats:
    """Run `sql` and read its total time from DuckDB's profiler (JSON: `query.total_time`, or `latency` in 1.x)."""
    con.execute(sql).fetchall()
    profile = json.loads(con.get_profiling_information(format="json"))
    seconds = profile.get("query", {}).get("total_time", profile.get("latency"))
    milliseconds = float(seconds) * 1000
    return QueryStats(query_id, sql, 1, milliseconds, milliseconds)
