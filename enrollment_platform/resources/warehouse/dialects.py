"""The SQL of a warehouse load, per dialect, from one table definition (model.TableDef).

An upsert keyed on the natural key, in one transaction (the connector owns BEGIN/COMMIT/ROLLBACK):

1. `create_staging`, then the connector fills it from the curated Parquet file (DuckDB reads the file, PostgreSQL
   gets `COPY … FROM STDIN`, Redshift `COPY … FROM 's3://…' FORMAT AS PARQUET`);
2. `create_table` if missing, `add_column` for each column the curated data gained (never dropped);
3. `create_keyed`: the staged rows shaped as the table (lineage renamed, lists joined, a fact's natural references
   swapped for the dimensions' surrogate keys), an existing natural key keeping its surrogate key and new keys
   numbered after the largest one in natural-key order;
4. `create_changes`: the new and changed rows; `count_changes`: inserted, updated, deleted;
5. `delete_missing` (keys no longer curated), `merge` (update changed rows, insert new ones), `count_rows`.

PostgreSQL 15 has MERGE without `WHEN NOT MATCHED BY SOURCE`, Redshift's MERGE takes no extra condition on
WHEN MATCHED: the same DELETE + MERGE of the changed rows works in all three. Dialects differ in types, NULL-safe
comparison (Redshift has no IS DISTINCT FROM), text collation (PostgreSQL sorts keys with COLLATE "C", as DuckDB
and Redshift do), how a list is joined into text, and the parameter placeholder.
"""

from __future__ import annotations

import pyarrow as pa

from enrollment_platform.resources.warehouse import types
from enrollment_platform.resources.warehouse.model import (
    LIST_SEPARATOR,
    LOAD_STATE,
    Reference,
    TableDef,
    TargetColumn,
    warehouse_type,
)
from enrollment_platform.transforms.sql import column_list, quote_ident, quote_literal

q = quote_ident


class Dialect:
    """Statements shared by every dialect; subclasses override what differs."""

    name = "sql"
    placeholder = "%s"
    type_map: types.TypeMap = types.POSTGRES
    staged_row: str | None = None  # a column numbering the staging relation's rows, where it has one

    # --- types and expressions -------------------------------------------------------------------------------

    def column_type(self, data_type: pa.DataType) -> str:
        return types.sql_type(self.type_map, data_type, self.name)

    def staging_type(self, data_type: pa.DataType) -> str:
        return self.column_type(data_type)

    def differs(self, left: str, right: str) -> str:
        """NULL-safe `left` differs from `right`."""
        return f"{left} IS DISTINCT FROM {right}"

    def sort_key(self, expression: str) -> str:
        return expression

    def list_text(self, table: TableDef, column: TargetColumn) -> str:
        """The staged list column as text, items joined with LIST_SEPARATOR."""
        return f"array_to_string(s.{q(column.source)}, {quote_literal(LIST_SEPARATOR)})"

    def list_joins(self, table: TableDef) -> list[str]:
        """Extra FROM items `list_text` needs (Redshift unnests SUPER arrays)."""
        return []

    # --- schema ------------------------------------------------------------------------------------------------

    def create_staging(self, table: TableDef) -> str:
        columns = ", ".join(f"{q(c.name)} {self.staging_type(c.type)}" for c in table.staged)
        return f"CREATE TEMP TABLE {q(table.staging)} ({columns})"

    def create_table(self, table: TableDef) -> str:
        columns = ", ".join(f"{q(c.name)} {self.column_type(c.type)}" for c in table.table_columns)
        return f"CREATE TABLE IF NOT EXISTS {q(table.name)} ({columns})"

    def existing_columns(self) -> str:
        """The column names of one table of the current schema (one parameter: the table name)."""
        return (
            "SELECT column_name FROM information_schema.columns "
            f"WHERE table_schema = current_schema() AND table_name = {self.placeholder} ORDER BY ordinal_position"
        )

    def add_column(self, table: TableDef, column: TargetColumn) -> str:
        return f"ALTER TABLE {q(table.name)} ADD COLUMN {q(column.name)} {self.column_type(column.type)}"

    def list_tables(self) -> str:
        return (
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' "
            f"AND table_name <> {quote_literal(LOAD_STATE)} ORDER BY 1"
        )

    def describe(self) -> str:
        """(column name, data type) of one table (one parameter: the table name)."""
        return (
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = current_schema() AND table_name = {self.placeholder} ORDER BY ordinal_position"
        )

    # --- upsert ------------------------------------------------------------------------------------------------

    def _value(self, table: TableDef, column: TargetColumn) -> str:
        if column.reference is not None:
            return f"d{column.reference}.{q(column.name)}"
        if column.joins_list:
            return self.list_text(table, column)
        return f"s.{q(column.source)}"

    def create_new_keys(self, table: TableDef) -> str:
        """The staged natural keys the table lacks, numbered after its largest surrogate key in natural-key order
        (only these are sorted: a narrow sort, whatever the width of the rows)."""
        natural, surrogate = q(table.natural_key), q(table.surrogate_key)
        match = q(self.staged_row or table.natural_key)  # what `keyed_rows` meets the new keys by
        return (
            f"CREATE TEMP TABLE {q(table.new_keys)} AS "
            f"SELECT s.{match} AS {match}, "
            f"m.top + row_number() OVER (ORDER BY {self.sort_key(f's.{natural}')}) AS {surrogate} "
            f"FROM {q(table.staging)} s "
            f"CROSS JOIN (SELECT coalesce(max({surrogate}), 0) AS top FROM {q(table.name)}) m "
            f"WHERE NOT EXISTS (SELECT 1 FROM {q(table.name)} t WHERE t.{natural} = s.{natural})"
        )

    def keyed_rows(self, table: TableDef) -> str:
        """The staged rows shaped as the table, each with its surrogate key (kept, or new from `new_keys`)."""
        natural, surrogate = q(table.natural_key), q(table.surrogate_key)
        match = q(self.staged_row or table.natural_key)
        values = ", ".join(f"{self._value(table, c)} AS {q(c.name)}" for c in table.columns)
        lookups = [
            f"LEFT JOIN {q(ref.dimension)} d{i} ON d{i}.{q(ref.via)} = s.{q(ref.via)}"
            for i, ref in enumerate(table.references)
        ]
        sources = [
            f"{q(table.staging)} s",
            f"LEFT JOIN {q(table.name)} t ON t.{natural} = s.{natural}",
            f"LEFT JOIN {q(table.new_keys)} n ON n.{match} = s.{match}",
            *lookups,
            *self.list_joins(table),
        ]
        return f"SELECT coalesce(t.{surrogate}, n.{surrogate}) AS {surrogate}, {values} FROM {' '.join(sources)}"

    def create_keyed(self, table: TableDef) -> str:
        return f"CREATE TEMP TABLE {q(table.keyed)} AS {self.keyed_rows(table)}"

    def insert_keyed(self, table: TableDef) -> str:
        """Every keyed row straight into the (empty) table, with no keyed copy in between."""
        columns = column_list(c.name for c in table.table_columns)
        return f"INSERT INTO {q(table.name)} ({columns}) SELECT {columns} FROM ({self.keyed_rows(table)}) k"

    def create_changes(self, table: TableDef) -> str:
        natural, surrogate = q(table.natural_key), q(table.surrogate_key)
        changed = " OR ".join(self.differs(f"k.{q(c)}", f"t.{q(c)}") for c in table.updatable) or "1 = 0"
        return (
            f"CREATE TEMP TABLE {q(table.changes)} AS "
            f"SELECT k.*, CASE WHEN t.{surrogate} IS NULL THEN 1 ELSE 0 END AS is_new "
            f"FROM {q(table.keyed)} k LEFT JOIN {q(table.name)} t ON t.{natural} = k.{natural} "
            f"WHERE t.{natural} IS NULL OR {changed}"
        )

    def count_changes(self, table: TableDef) -> str:
        natural = q(table.natural_key)
        return (
            f"SELECT (SELECT count(*) FROM {q(table.changes)} WHERE is_new = 1) AS inserted, "
            f"(SELECT count(*) FROM {q(table.changes)} WHERE is_new = 0) AS updated, "
            f"(SELECT count(*) FROM {q(table.name)} t LEFT JOIN {q(table.keyed)} k ON k.{natural} = t.{natural} "
            f"WHERE k.{natural} IS NULL) AS deleted"
        )

    def count_batch_changes(self, table: TableDef) -> str:
        """inserted, updated, deleted of a batch's changes: deleted are the table's rows of the removed keys."""
        natural, removed = q(table.natural_key), q(table.removed_keys().staging)
        return (
            f"SELECT (SELECT count(*) FROM {q(table.changes)} WHERE is_new = 1) AS inserted, "
            f"(SELECT count(*) FROM {q(table.changes)} WHERE is_new = 0) AS updated, "
            f"(SELECT count(*) FROM {q(table.name)} t WHERE EXISTS "
            f"(SELECT 1 FROM {removed} r WHERE r.{natural} = t.{natural})) AS deleted"
        )

    def delete_removed(self, table: TableDef) -> str:
        natural, target, removed = q(table.natural_key), q(table.name), q(table.removed_keys().staging)
        return f"DELETE FROM {target} WHERE EXISTS (SELECT 1 FROM {removed} r WHERE r.{natural} = {target}.{natural})"

    def _dangling(self, table: TableDef, reference: Reference) -> str:
        key, target, dimension = q(reference.key), q(table.name), q(reference.dimension)
        return f"{key} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {dimension} d WHERE d.{key} = {target}.{key})"

    def count_dangling(self, table: TableDef, reference: Reference) -> str:
        """Rows whose `reference` key is no longer in the dimension."""
        return f"SELECT count(*) FROM {q(table.name)} WHERE {self._dangling(table, reference)}"

    def clear_dangling(self, table: TableDef, reference: Reference) -> str:
        return f"UPDATE {q(table.name)} SET {q(reference.key)} = NULL WHERE {self._dangling(table, reference)}"

    def delete_missing(self, table: TableDef) -> str:
        natural, target = q(table.natural_key), q(table.name)
        return (
            f"DELETE FROM {target} WHERE NOT EXISTS "
            f"(SELECT 1 FROM {q(table.keyed)} k WHERE k.{natural} = {target}.{natural})"
        )

    def merge(self, table: TableDef) -> str:
        natural, target = q(table.natural_key), q(table.name)
        updates = ", ".join(f"{q(c)} = c.{q(c)}" for c in table.updatable) or f"{natural} = c.{natural}"
        columns = [c.name for c in table.table_columns]
        return (
            f"MERGE INTO {target} USING {q(table.changes)} c ON {target}.{natural} = c.{natural} "
            f"WHEN MATCHED THEN UPDATE SET {updates} "
            f"WHEN NOT MATCHED THEN INSERT ({column_list(columns)}) "
            f"VALUES ({', '.join(f'c.{q(c)}' for c in columns)})"
        )

    def apply_changes(self, table: TableDef, only_known_columns: bool) -> list[str]:
        """The statements writing the `changes` rows into the table: changed rows updated in place, new ones
        inserted. `only_known_columns`: the table has no column beyond `table_columns`."""
        return [self.merge(table)]

    def count_rows(self, table: TableDef) -> str:
        return f"SELECT count(*) FROM {q(table.name)}"

    # --- which curated state version each table holds ----------------------------------------------------------

    def create_load_state(self) -> str:
        text = self.column_type(pa.string())
        return f"CREATE TABLE IF NOT EXISTS {q(LOAD_STATE)} (table_name {text}, state_version {text})"

    def read_load_state(self) -> str:
        return f"SELECT state_version FROM {q(LOAD_STATE)} WHERE table_name = {self.placeholder}"

    def delete_load_state(self) -> str:
        return f"DELETE FROM {q(LOAD_STATE)} WHERE table_name = {self.placeholder}"

    def insert_load_state(self) -> str:
        return (
            f"INSERT INTO {q(LOAD_STATE)} (table_name, state_version) VALUES ({self.placeholder}, {self.placeholder})"
        )

    # --- run log tables (dq_results) -----------------------------------------------------------------------------

    def delete_run(self, table: TableDef) -> str:
        return f"DELETE FROM {q(table.name)} WHERE run_id = {self.placeholder}"

    def insert_run(self, table: TableDef) -> str:
        columns = [c.name for c in table.columns]
        values = ", ".join(f"{self._value(table, c)} AS {q(c.name)}" for c in table.columns)
        return (
            f"INSERT INTO {q(table.name)} ({column_list(columns)}) "
            f"SELECT {values} FROM {' '.join([f'{q(table.staging)} s', *self.list_joins(table)])}"
        )

    def count_run(self, table: TableDef) -> str:
        return f"SELECT count(*) FROM {q(table.name)} WHERE run_id = {self.placeholder}"


class DuckDBDialect(Dialect):
    """DuckDB 2.x: reads Parquet itself; lists stay lists while staged."""

    name = "duckdb"
    placeholder = "?"
    type_map = types.DUCKDB
    # new keys meet their rows by place in the staged file: an integer join, not one on 10 M key strings
    staged_row = "_staged_row"

    def staging_type(self, data_type: pa.DataType) -> str:
        if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
            return f"{self.staging_type(data_type.value_type)}[]"
        return self.column_type(data_type)

    def create_changes(self, table: TableDef) -> str:
        """As the base, but the table's side of the join is only its keys and a hash of the compared columns: the
        full width of a 10 M-row table spilled out of the join (10.2 s; this way 2.1 s). A row counts as changed
        when the hashes differ, so values that differ but hash alike (DuckDB's 64-bit hash is not cryptographic:
        about one chance in 2^64 per row) would leave that row as it was. The hash depends on the column types
        as well as the values: the table's columns have the types the load gives them, so they match; a column
        whose type differed would make every row count as updated (right, only slower)."""
        if not table.updatable:
            return super().create_changes(table)
        natural, surrogate = q(table.natural_key), q(table.surrogate_key)

        def row_hash(alias: str) -> str:
            return "hash(" + ", ".join(f"{alias}.{q(c)}" for c in table.updatable) + ")"

        current = f"SELECT {natural}, {surrogate}, {row_hash('r')} AS _row_hash FROM {q(table.name)} r"
        return (
            f"CREATE TEMP TABLE {q(table.changes)} AS "
            f"SELECT k.*, CASE WHEN t.{surrogate} IS NULL THEN 1 ELSE 0 END AS is_new "
            f"FROM {q(table.keyed)} k LEFT JOIN ({current}) t ON t.{natural} = k.{natural} "
            f"WHERE t.{natural} IS NULL OR {row_hash('k')} <> t._row_hash"
        )

    def apply_changes(self, table: TableDef, only_known_columns: bool) -> list[str]:
        """Changed rows are deleted and inserted again, where the changes carry every column of the table: DuckDB
        rewrites, at the next checkpoint, every updated column of each row group an updated row lies in (1.2 s for
        10 k changed rows scattered over a 10 M-row fact), while a delete only marks the rows. A table with
        columns the changes lack (added by hand, say) keeps their values: MERGE updates only the changes' columns."""
        if not only_known_columns:
            return super().apply_changes(table, only_known_columns)
        natural, target, changes = q(table.natural_key), q(table.name), q(table.changes)
        columns = column_list(c.name for c in table.table_columns)
        return [
            f"DELETE FROM {target} WHERE {natural} IN (SELECT {natural} FROM {changes} WHERE is_new = 0)",
            f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {changes}",
        ]

    def staged_view(self, table: TableDef, parquet: str) -> str:
        """The staging relation as a view over the file, with the staging table's column types and each row's
        place in the file (`staged_row`)."""
        columns = ", ".join(f"CAST({q(c.name)} AS {self.staging_type(c.type)}) AS {q(c.name)}" for c in table.staged)
        source = f"read_parquet({quote_literal(parquet)}, file_row_number = true)"
        row = f"file_row_number AS {q(self.staged_row)}"
        return f"CREATE OR REPLACE TEMP VIEW {q(table.staging)} AS SELECT {columns}, {row} FROM {source}"


class PostgresDialect(Dialect):
    """PostgreSQL 15: lists arrive as text (joined in Arrow before the COPY); keys sort bytewise."""

    name = "postgresql"
    type_map = types.POSTGRES

    def staging_type(self, data_type: pa.DataType) -> str:
        return self.column_type(warehouse_type(data_type))  # lists arrive joined into text, see postgres.csv_chunks

    def sort_key(self, expression: str) -> str:
        return f'{expression} COLLATE "C"'

    def list_text(self, table: TableDef, column: TargetColumn) -> str:
        return f"s.{q(column.source)}"

    def copy_in(self, table: TableDef) -> str:
        return f"COPY {q(table.staging)} ({column_list(c.name for c in table.staged)}) FROM STDIN (FORMAT csv)"


class RedshiftDialect(Dialect):
    """Amazon Redshift: COPY from S3, lists staged as SUPER, no IS DISTINCT FROM."""

    name = "redshift"
    type_map = types.REDSHIFT

    def staging_type(self, data_type: pa.DataType) -> str:
        if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
            return "SUPER"
        return self.column_type(data_type)

    def differs(self, left: str, right: str) -> str:
        one_null = f"({left} IS NULL AND {right} IS NOT NULL) OR ({left} IS NOT NULL AND {right} IS NULL)"
        return f"({left} <> {right} OR {one_null})"

    def list_text(self, table: TableDef, column: TargetColumn) -> str:
        alias = f"l_{column.source.strip('_')}"
        return f"CASE WHEN s.{q(column.source)} IS NULL THEN NULL ELSE coalesce({alias}.items, '') END"

    def list_joins(self, table: TableDef) -> list[str]:
        """One aggregate per list column: its items in order, joined (LISTAGG over the unnested SUPER array)."""
        natural = q(table.natural_key) if table.natural_key else None
        joins = []
        for column in (c for c in table.columns if c.joins_list):
            if natural is None:
                raise ValueError(f"{table.name}.{column.source}: a list column needs a natural key on Redshift")
            alias = f"l_{column.source.strip('_')}"
            joins.append(
                f"LEFT JOIN (SELECT x.{natural} AS list_key, "
                f"LISTAGG(e::VARCHAR, {quote_literal(LIST_SEPARATOR)}) WITHIN GROUP (ORDER BY i) AS items "
                f"FROM {q(table.staging)} x, x.{q(column.source)} AS e AT i GROUP BY x.{natural}) {alias} "
                f"ON {alias}.list_key = s.{natural}"
            )
        return joins

    def copy_from_s3(self, table: TableDef, uri: str, iam_role: str) -> str:
        return f"COPY {q(table.staging)} FROM {quote_literal(uri)} IAM_ROLE {quote_literal(iam_role)} FORMAT AS PARQUET"
