"""PostgreSQL through psycopg 3: rows are staged with `COPY … FROM STDIN (FORMAT csv)` fed from the Parquet file
by pyarrow, batch by batch (never row-by-row INSERTs).

The URL is a libpq URI; a schema of its own goes in `options`, e.g.
`postgresql://user@host:5432/db?options=-csearch_path%3Dmy_schema` (tables are created in the first schema of the
search path, which must exist).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from enrollment_platform.resources.warehouse.base import SLOW_QUERIES, QueryLog, QueryStats, Session, Warehouse
from enrollment_platform.resources.warehouse.dialects import PostgresDialect
from enrollment_platform.resources.warehouse.model import LIST_SEPARATOR, TableDef, is_list
from enrollment_platform.transforms.sql import column_list, quote_ident

BATCH_ROWS = 65_536
STAT_STATEMENTS = "pg_stat_statements"
NOT_INSTALLED = (
    "pg_stat_statements is not installed in this database: run CREATE EXTENSION pg_stat_statements, with "
    "shared_preload_libraries = 'pg_stat_statements' in postgresql.conf (server restart)"
)
CUMULATIVE_NOTE = "pg_stat_statements: statements of this database, cumulative since pg_stat_statements_reset()"
TABLE_SIZES = (
    "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
)
EXTENSION_SCHEMA = (
    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
    "WHERE e.extname = 'pg_stat_statements'"
)


def slow_statements_query(schema: str) -> str:
    """The slowest statements of this database by mean execution time (one parameter: how many)."""
    return (
        "SELECT queryid::text, query, calls, mean_exec_time, total_exec_time "
        f"FROM {quote_ident(schema)}.pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND calls > 0 "
        "ORDER BY mean_exec_time DESC LIMIT %s"
    )


def lists_as_text(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Every list column joined into text with LIST_SEPARATOR (NULL stays NULL, an empty list becomes '')."""
    arrays = [
        pc.binary_join(column.cast(pa.list_(pa.string())), LIST_SEPARATOR) if is_list(column.type) else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def csv_chunks(parquet: str, batch_rows: int = BATCH_ROWS) -> Iterator[bytes]:
    """The file's rows as CSV for `COPY … (FORMAT csv)`: every non-null value quoted, so '' stays apart from NULL."""
    options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    for batch in pq.ParquetFile(parquet).iter_batches(batch_size=batch_rows):
        sink = pa.BufferOutputStream()
        pacsv.write_csv(lists_as_text(batch), sink, options)
        yield sink.getvalue().to_pybytes()


def read_csv_text(data: bytes, columns: list[str]) -> pa.Table:
    """CSV from `COPY … TO STDOUT (FORMAT csv, HEADER)` as string columns (unquoted empty = NULL)."""
    return pacsv.read_csv(
        pa.py_buffer(data),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(columns, pa.string()),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )


class PostgresWarehouse(Warehouse):
    """A PostgreSQL database (psycopg 3), the warehouse whose roles and grants the access policy compiles to."""

    url: str
    dialect: ClassVar[PostgresDialect] = PostgresDialect()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        connection = psycopg.connect(self.url)
        try:
            yield connection
        finally:
            connection.close()

    def query(self, sql: str, parameters: list | None = None) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as connection:
            cursor = connection.execute(sql, parameters)
            return cursor.fetchall() if cursor.description else []

    def _table_sizes(self) -> dict[str, int]:
        """pg_total_relation_size: the table with its indexes and TOAST."""
        return {name: int(size) for name, size in self.query(TABLE_SIZES)}

    def slow_queries(self, limit: int = SLOW_QUERIES) -> QueryLog:
        """pg_stat_statements where it is installed and loaded; otherwise a QueryLog saying what is missing."""
        installed = self.query(EXTENSION_SCHEMA)
        if not installed:
            return QueryLog(STAT_STATEMENTS, False, NOT_INSTALLED)
        try:
            rows = self.query(slow_statements_query(installed[0][0]), [limit])
        except psycopg.Error as error:  # e.g. created but not in shared_preload_libraries
            return QueryLog(STAT_STATEMENTS, False, f"pg_stat_statements cannot be read: {str(error).strip()}")
        queries = tuple(
            QueryStats(qid, text, int(calls), float(mean), float(total)) for qid, text, calls, mean, total in rows
        )
        return QueryLog(STAT_STATEMENTS, True, CUMULATIVE_NOTE, queries, cumulative=True)

    def _stage(self, session: Session, table: TableDef, parquet: str) -> None:
        with session.cursor.copy(self.dialect.copy_in(table)) as copy:
            for chunk in csv_chunks(parquet):
                copy.write(chunk)

    def _read_text(self, table: str, columns: list[str]) -> pa.Table:
        sql = f"COPY (SELECT {column_list(columns)} FROM {quote_ident(table)}) TO STDOUT (FORMAT csv, HEADER)"
        with (
            psycopg.connect(self.url, autocommit=True) as connection,
            connection.cursor() as cursor,
            cursor.copy(sql) as copy,
        ):
            data = b"".join(bytes(chunk) for chunk in copy)
        return read_csv_text(data, columns)
