"""The warehouse: the star schema (dimensions with surrogate keys, the enrollment fact) and dq_results.

Loads are idempotent upserts keyed on natural keys, in one transaction per table: an existing natural key
keeps its surrogate key, a new one gets the next number, a key no longer curated is removed. Loading the same
curated data twice leaves every table exactly as it was.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb

from enrollment_platform.config import DimensionSpec
from enrollment_platform.transforms.sql import column_list, quote_ident, quote_literal


@dataclass(frozen=True)
class LoadResult:
    table: str
    rows: int
    inserted: int
    updated: int
    deleted: int


def duckdb_path(url: str) -> str:
    """`duckdb:///rel/path.duckdb` or `duckdb:////abs/path.duckdb` -> the file path."""
    prefix = "duckdb:///"
    if not url.startswith(prefix):
        raise ValueError(f"not a DuckDB warehouse URL: {url!r} (expected duckdb:///path/to/file.duckdb)")
    return url[len(prefix) :]


class DuckDBWarehouse(dg.ConfigurableResource):
    """The embedded warehouse: one DuckDB file. It has no users or grants (see README, Security)."""

    path: str

    @contextmanager
    def connect(self):
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(self.path)
        try:
            yield con
        finally:
            con.close()

    def query(self, sql: str, parameters: list | None = None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, parameters or []).fetchall()

    def tables(self) -> list[str]:
        return [row[0] for row in self.query("SELECT table_name FROM information_schema.tables ORDER BY 1")]

    def load_dimension(self, spec: DimensionSpec, parquet: str) -> LoadResult:
        staged = f"""
            SELECT * EXCLUDE (_source_file, _source_row, _flags),
                _source_file AS source_file, _source_row AS source_row,
                array_to_string(_flags, '; ') AS dq_flags
            FROM read_parquet({quote_literal(parquet)})
        """
        return self._upsert(spec, staged)

    def load_table(self, spec: DimensionSpec, parquet: str) -> LoadResult:
        """Upsert a plain table (no lineage or flags columns), e.g. the restricted PII table."""
        return self._upsert(spec, f"SELECT * FROM read_parquet({quote_literal(parquet)})")

    def load_fact(self, spec: DimensionSpec, parquet: str) -> LoadResult:
        """Stage the curated fact rows, swap natural references for the dimensions' surrogate keys, upsert."""
        joins, keys, replaced = [], [], []
        for alias, (key_column, (dimension, via)) in enumerate(spec.references.items()):
            joins.append(
                f"LEFT JOIN {quote_ident(dimension)} d{alias} ON d{alias}.{quote_ident(via)} = f.{quote_ident(via)}"
            )
            keys.append(f"d{alias}.{quote_ident(key_column)} AS {quote_ident(key_column)}")
            replaced.append(via)
        staged = f"""
            SELECT {", ".join(keys)}, f.* EXCLUDE ({column_list(replaced)}, _source_file, _source_row, _flags),
                f._source_file AS source_file, f._source_row AS source_row,
                array_to_string(f._flags, '; ') AS dq_flags
            FROM read_parquet({quote_literal(parquet)}) f {" ".join(joins)}
        """
        return self._upsert(spec, staged)

    def _upsert(self, spec: DimensionSpec, staged_sql: str) -> LoadResult:
        table, natural, surrogate = (
            quote_ident(spec.table),
            quote_ident(spec.natural_key),
            quote_ident(spec.surrogate_key),
        )
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"CREATE OR REPLACE TEMP TABLE staged AS {staged_sql}")
                con.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} AS SELECT 0::BIGINT AS {surrogate}, * FROM staged LIMIT 0"
                )
                self._add_new_columns(con, spec.table)
                columns = [r[0] for r in con.execute("DESCRIBE staged").fetchall()]
                con.execute(f"""
                    CREATE OR REPLACE TEMP TABLE keyed AS
                    SELECT coalesce(t.{surrogate},
                                    (SELECT coalesce(max({surrogate}), 0) FROM {table})
                                    + row_number() OVER (ORDER BY t.{surrogate} IS NOT NULL, s.{natural})
                           ) AS {surrogate}, s.*
                    FROM staged s LEFT JOIN {table} t USING ({natural})
                """)
                inserted = con.execute(
                    f"SELECT count(*) FROM keyed k ANTI JOIN {table} t USING ({natural})"
                ).fetchone()[0]
                deleted = con.execute(f"SELECT count(*) FROM {table} t ANTI JOIN keyed k USING ({natural})").fetchone()[
                    0
                ]
                changed = f"({self._row(columns, 'k')}) IS DISTINCT FROM ({self._row(columns, 't')})"
                updated = con.execute(
                    f"SELECT count(*) FROM keyed k JOIN {table} t USING ({natural}) WHERE {changed}"
                ).fetchone()[0]
                assignments = ", ".join(
                    f"{quote_ident(c)} = k.{quote_ident(c)}" for c in columns if c != spec.natural_key
                )
                all_columns = [spec.surrogate_key, *columns]
                con.execute(f"""
                    MERGE INTO {table} t USING keyed k ON t.{natural} = k.{natural}
                    WHEN MATCHED AND {changed} THEN UPDATE SET {assignments}
                    WHEN NOT MATCHED BY TARGET THEN INSERT ({column_list(all_columns)})
                        VALUES ({", ".join(f"k.{quote_ident(c)}" for c in all_columns)})
                    WHEN NOT MATCHED BY SOURCE THEN DELETE
                """)
                rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return LoadResult(spec.table, rows, inserted, updated, deleted)

    @staticmethod
    def _row(columns: list[str], alias: str) -> str:
        return "row(" + ", ".join(f"{alias}.{quote_ident(c)}" for c in columns) + ")"

    @staticmethod
    def _add_new_columns(con: duckdb.DuckDBPyConnection, table: str) -> None:
        """Schema evolution: a column the curated data gained is added to the table (never dropped)."""
        existing = {r[0] for r in con.execute(f"DESCRIBE {quote_ident(table)}").fetchall()}
        for name, type_, *_ in con.execute("DESCRIBE staged").fetchall():
            if name not in existing:
                con.execute(f"ALTER TABLE {quote_ident(table)} ADD COLUMN {quote_ident(name)} {type_}")

    def append_results(self, table: str, parquet: str, run_id: str) -> int:
        """Replace this run's rows of a run log table (dq_results) with the Parquet file's rows."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(
                    f"CREATE TABLE IF NOT EXISTS {quote_ident(table)} AS "
                    f"SELECT * FROM read_parquet({quote_literal(parquet)}) LIMIT 0"
                )
                con.execute(f"DELETE FROM {quote_ident(table)} WHERE run_id = ?", [run_id])
                con.execute(
                    f"INSERT INTO {quote_ident(table)} BY NAME SELECT * FROM read_parquet({quote_literal(parquet)})"
                )
                count = con.execute(f"SELECT count(*) FROM {quote_ident(table)} WHERE run_id = ?", [run_id]).fetchone()[
                    0
                ]
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return count
