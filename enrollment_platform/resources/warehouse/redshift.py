"""Amazon Redshift through `redshift_connector` (not psycopg2, unlike dagster-aws' RedshiftClientResource).

Each load COPYs the curated Parquet file from the lake in S3 into a temporary staging table
(`COPY … FROM 's3://…' IAM_ROLE '…' FORMAT AS PARQUET`; COPY matches Parquet columns to the staging table by
position, which is why the staging table is declared from the file's schema) and then runs the dialect's upsert,
all in one transaction: redshift_connector opens it before the first statement, `commit()`/`rollback()` end it.

The lake location: a path under `lake_root` (what the lake resource hands out) maps to the same relative key under
`lake_s3_uri`; an `s3://` URI is used as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import PrivateAttr

from enrollment_platform.resources.warehouse.base import SLOW_QUERIES, QueryLog, QueryStats, Session, Warehouse
from enrollment_platform.resources.warehouse.dialects import RedshiftDialect
from enrollment_platform.resources.warehouse.model import TableDef, read_schema

QUERY_HISTORY = "SYS_QUERY_HISTORY"
HISTORY_HOURS = 24
BLOCK_BYTES = 1024 * 1024  # SVV_TABLE_INFO.size counts 1 MB blocks
TABLE_SIZES = 'SELECT TRIM("table"), size FROM svv_table_info WHERE "schema" = current_schema()'
SLOW_STATEMENTS = (
    "SELECT TRIM(query_text) AS query, COUNT(*) AS calls, "
    "AVG(elapsed_time::DOUBLE PRECISION) / 1000 AS mean_ms, SUM(elapsed_time::DOUBLE PRECISION) / 1000 AS total_ms "
    "FROM sys_query_history "
    "WHERE TRIM(database_name) = current_database() AND status = 'success' "
    f"AND start_time >= DATEADD(hour, -{HISTORY_HOURS}, GETDATE()) "
    "GROUP BY TRIM(query_text) ORDER BY mean_ms DESC LIMIT %s"
)
HISTORY_NOTE = (
    f"SYS_QUERY_HISTORY: successful statements of the last {HISTORY_HOURS} hours in this database that this user "
    "may see (a superuser sees everyone's), grouped by text"
)


def text_id(text: str) -> str:
    """A stable id for a statement text (SYS_QUERY_HISTORY's query_id names one execution, not the statement)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RedshiftWarehouse(Warehouse):
    """A Redshift database; loads COPY from the lake in S3 with `iam_role`."""

    host: str
    port: int = 5439
    database: str
    user: str
    password: str | None = None
    iam_role: str
    lake_root: str
    lake_s3_uri: str
    dialect: ClassVar[RedshiftDialect] = RedshiftDialect()
    _connect: Callable[[], Any] | None = PrivateAttr(default=None)

    def with_connection(self, connect: Callable[[], Any]) -> RedshiftWarehouse:
        """Open connections with `connect()` instead of redshift_connector (tests inject a recording connection)."""
        self._connect = connect
        return self

    def s3_uri_for(self, path: str) -> str:
        """The S3 URI of a lake object: `s3://…` as it is, else its path relative to `lake_root` under `lake_s3_uri`."""
        if path.startswith("s3://"):
            return path
        try:
            relative = PurePosixPath(Path(path).as_posix()).relative_to(PurePosixPath(Path(self.lake_root).as_posix()))
        except ValueError:
            message = f"{path} is not under the lake root {self.lake_root}: Redshift COPYs only from the lake"
            raise ValueError(message) from None
        return f"{self.lake_s3_uri.rstrip('/')}/{relative.as_posix()}"

    def _open(self) -> Any:
        if self._connect is not None:
            return self._connect()
        import redshift_connector

        return redshift_connector.connect(
            host=self.host, port=self.port, database=self.database, user=self.user, password=self.password
        )

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        connection = self._open()
        connection.autocommit = False  # one transaction per load, begun by the first statement
        try:
            yield connection
        finally:
            connection.close()

    def query(self, sql: str, parameters: list | None = None) -> list[tuple]:
        with self._connection() as connection:
            cursor = Session(connection.cursor(), self.dialect).execute(sql, parameters).cursor
            rows = list(cursor.fetchall()) if cursor.description else []
            connection.rollback()  # read-only: end the implicit transaction
            return rows

    def _table_sizes(self) -> dict[str, int]:
        """SVV_TABLE_INFO.size (1 MB blocks) in bytes."""
        return {name: int(size) * BLOCK_BYTES for name, size in self.query(TABLE_SIZES)}

    def slow_queries(self, limit: int = SLOW_QUERIES) -> QueryLog:
        """The slowest statements of the last hours from SYS_QUERY_HISTORY (elapsed_time is in microseconds)."""
        rows = self.query(SLOW_STATEMENTS, [limit])
        queries = tuple(
            QueryStats(text_id(text), text, int(calls), float(mean), float(total)) for text, calls, mean, total in rows
        )
        return QueryLog(QUERY_HISTORY, True, HISTORY_NOTE, queries)

    def _schema(self, parquet: str) -> pa.Schema:
        return read_schema(parquet if Path(parquet).is_file() else self.s3_uri_for(parquet))

    def _stage(self, session: Session, table: TableDef, parquet: str) -> None:
        session.execute(self.dialect.copy_from_s3(table, self.s3_uri_for(parquet), self.iam_role))
