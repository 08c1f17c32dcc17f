"""The warehouse interface the assets call, and the load every connector runs with its own dialect.

Loads are idempotent upserts keyed on natural keys, in one transaction per table: an existing natural key keeps
its surrogate key, a new one gets the next number, a changed row is updated, a key no longer curated is removed.
Loading the same curated data twice leaves every table exactly as it was and reports 0 inserted/updated/deleted.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import dagster as dg
import duckdb
import pyarrow as pa

from enrollment_platform.config import DimensionSpec
from enrollment_platform.resources.warehouse.dialects import Dialect
from enrollment_platform.resources.warehouse.model import (
    LOAD_STATE,
    STATE_VERSION,
    TableDef,
    log_table,
    read_schema,
    star_table,
)
from enrollment_platform.transforms.sql import column_list, quote_ident, quote_literal

Fetch = Callable[[str], list[tuple]]
log = logging.getLogger(__name__)
SLOW_QUERIES = 10  # how many statements `slow_queries` reports


@dataclass(frozen=True)
class LoadResult:
    table: str
    rows: int
    inserted: int
    updated: int
    deleted: int
    # "state": the whole curated state; "batch": only the batch's changes; "held": nothing, the table already held
    # the version the batch leads to (a re-run of a batch whose run stopped after this load)
    loaded_from: str = "state"


@dataclass(frozen=True)
class BatchChanges:
    """What one batch changed in a curated state: its rows (with the state's columns) and the keys it removed,
    and the state versions before and after it (`STATE_VERSION` footers). A table last loaded from the version
    before takes only these; any other table is loaded from the whole state."""

    rows: str
    removed: str
    base_version: str
    state_version: str
    state_rows: int
    # a fact's key columns whose dimension lost keys in the batch: rows still holding such a key lose it (NULL)
    dangling_references: tuple[str, ...] = ()


class _OutOfStep(Exception):
    """The batch's changes do not apply to the table as it is: load the whole state instead."""


@dataclass(frozen=True)
class TableStats:
    """A table's exact row count and its size in bytes (None where the warehouse cannot tell)."""

    table: str
    rows: int
    size_bytes: int | None


@dataclass(frozen=True)
class QueryStats:
    """One statement's timings as the warehouse reports them; `query_id` is stable across observations."""

    query_id: str
    query: str
    calls: int
    mean_ms: float
    total_ms: float


@dataclass(frozen=True)
class QueryLog:
    """The slowest statements and where they come from. `available` is False, with a `note` saying why, when the
    source is missing (e.g. pg_stat_statements not installed); `cumulative` when the figures add up since the
    source was last reset rather than covering a recent window."""

    source: str
    available: bool
    note: str
    queries: tuple[QueryStats, ...] = ()
    cumulative: bool = False


class Session:
    """The DB-API cursor a load runs its statements through, with the dialect that speaks to it."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self.cursor = cursor
        self.dialect = dialect

    def execute(self, sql: str, parameters: list | None = None) -> Session:
        if parameters is None:
            self.cursor.execute(sql)
        else:
            self.cursor.execute(sql, parameters)
        return self

    def fetchall(self) -> list[tuple]:
        return self.cursor.fetchall()

    def fetchone(self) -> tuple | None:
        return self.cursor.fetchone()


def scanned_rows(con: duckdb.DuckDBPyConnection, relation: str, columns: list[str], where: str) -> str:
    """`relation`, or with a `where` filter the given columns of its matching rows in a temporary table (read
    once, not once per query of the scan)."""
    if not where:
        return relation
    selected = f"SELECT {column_list(columns)} FROM {relation} WHERE {where}"
    con.execute(f"CREATE TEMPORARY TABLE {SCANNED_ROWS} AS {selected}")
    return SCANNED_ROWS


SCANNED_ROWS = "_scanned_rows"


class Warehouse(dg.ConfigurableResource):
    """One interface, three connectors (DuckDB, PostgreSQL, Redshift): each supplies a connection, a way to stage
    a Parquet file and read-only queries; the statements come from its dialect."""

    dialect: ClassVar[Dialect]

    # --- what a connector supplies ---------------------------------------------------------------------------

    @abstractmethod
    def _connection(self) -> AbstractContextManager[Any]:
        """An open connection, closed on exit."""

    def _cursor(self, connection: Any) -> Any:
        return connection.cursor()

    def _begin(self, connection: Any) -> None:
        """Start the transaction (psycopg and redshift_connector start one implicitly, DuckDB does not)."""

    @abstractmethod
    def _stage(self, session: Session, table: TableDef, parquet: str) -> None:
        """Fill the staging table with the rows of the Parquet file."""

    @abstractmethod
    def query(self, sql: str, parameters: list | None = None) -> list[tuple]:
        """Rows of a read-only query in this warehouse's SQL."""

    def _read_text(self, table: str, columns: list[str]) -> pa.Table:
        """The given columns of a table, as text, for the leak scan (default: fetch and transpose)."""
        rows = self.query(f"SELECT {column_list(columns)} FROM {quote_ident(table)}") if columns else []
        values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
        return pa.table({c: pa.array(v, pa.string()) for c, v in zip(columns, values, strict=True)})

    def _schema(self, parquet: str) -> pa.Schema:
        return read_schema(parquet)

    @abstractmethod
    def _table_sizes(self) -> dict[str, int]:
        """Bytes on disk of each table of the current schema."""

    @abstractmethod
    def slow_queries(self, limit: int = SLOW_QUERIES) -> QueryLog:
        """The `limit` slowest statements by mean time, from the warehouse's own statistics."""

    # --- the interface ---------------------------------------------------------------------------------------

    def tables(self) -> list[str]:
        return [row[0] for row in self.query(self.dialect.list_tables())]

    def loaded_version(self, table: str) -> str | None:
        """The curated state version a table was last loaded from; None when unknown (never recorded, or the
        record cannot be read)."""
        try:
            rows = self.query(self.dialect.read_load_state(), [table])
        except Exception:  # e.g. no load has recorded a version yet (no such table) or no right to read it
            return None
        return rows[0][0] if rows else None

    def columns(self, table: str) -> list[tuple[str, str]]:
        """(name, data type) of each column of a table, in order."""
        return [(row[0], row[1]) for row in self.query(self.dialect.describe(), [table])]

    def table_stats(self) -> list[TableStats]:
        """Every table of the current schema with its exact row count and its size in bytes."""
        tables = self.tables()
        if not tables:
            return []
        counts = " UNION ALL ".join(f"SELECT {quote_literal(t)}, count(*) FROM {quote_ident(t)}" for t in tables)
        rows = dict(self.query(counts))
        sizes = self._table_sizes()
        return [TableStats(t, int(rows[t]), sizes.get(t)) for t in tables]

    @contextmanager
    def scan_view(self, table: str, text_columns: list[str], where: str = "") -> Iterator[tuple[Fetch, str]]:
        """A DuckDB `fetch(sql)` and relation holding the table's text columns (the leak scan speaks DuckDB SQL);
        `where` (DuckDB SQL over those columns) keeps only some rows, gathered once for all the scan's queries."""
        con = duckdb.connect()
        try:
            relation = quote_ident(table)
            if text_columns:
                con.register(table, self._read_text(table, text_columns))
                relation = scanned_rows(con, relation, text_columns, where)
            yield (lambda sql: con.execute(sql).fetchall()), relation
        finally:
            con.close()

    def load_dimension(self, spec: DimensionSpec, parquet: str, changes: BatchChanges | None = None) -> LoadResult:
        """Upsert a dimension from its curated file (lineage columns renamed, flags joined into text)."""
        return self._upsert(star_table(spec, self._schema(parquet)), parquet, changes)

    def load_fact(self, spec: DimensionSpec, parquet: str, changes: BatchChanges | None = None) -> LoadResult:
        """Upsert the fact, its natural references swapped for the dimensions' surrogate keys."""
        return self._upsert(star_table(spec, self._schema(parquet)), parquet, changes)

    def load_table(self, spec: DimensionSpec, parquet: str, changes: BatchChanges | None = None) -> LoadResult:
        """Upsert a plain table (no lineage or flags columns), e.g. the restricted PII table."""
        return self._upsert(star_table(spec, self._schema(parquet), lineage=False), parquet, changes)

    def append_results(self, table: str, parquet: str, run_id: str) -> int:
        """Replace this run's rows of a run log table (dq_results) with the Parquet file's rows."""
        definition, sql = log_table(table, self._schema(parquet)), self.dialect
        with self._transaction() as session:
            self._prepare(session, definition, parquet)
            session.execute(sql.delete_run(definition), [run_id])
            session.execute(sql.insert_run(definition))
            count = session.execute(sql.count_run(definition), [run_id]).fetchone()[0]
        return count

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction for statements other than a load (the access policy: roles, grants, policies, views):
        committed on exit, rolled back on error."""
        with self._transaction() as session:
            yield session

    # --- the load --------------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._connection() as connection:
            self._begin(connection)
            try:
                yield Session(self._cursor(connection), self.dialect)
                connection.commit()
            except BaseException:
                connection.rollback()
                raise

    def _prepare(self, session: Session, table: TableDef, parquet: str) -> bool:
        """Stage the file; create the table if missing and add the columns it gained. Returns whether the table
        has only the columns the file gives it."""
        self._create_staged(session, table, parquet)
        session.execute(self.dialect.create_table(table))
        return self._add_new_columns(session, table)

    def _create_staged(self, session: Session, table: TableDef, parquet: str) -> None:
        """The staging relation of `table` holding the file's rows: a temporary table, filled by `_stage`."""
        session.execute(self.dialect.create_staging(table))
        self._stage(session, table, parquet)

    def _upsert(self, table: TableDef, parquet: str, changes: BatchChanges | None = None) -> LoadResult:
        """Load the batch's changes when the table is in step with the state they apply to, else the whole state."""
        if changes is not None:
            try:
                return self._upsert_changes(table, changes)
            except _OutOfStep as reason:  # rolled back: the whole state makes the table right whatever it held
                log.warning("%s: the batch's changes do not apply (%s): loading the whole state", table.name, reason)
        return self._upsert_state(table, parquet)

    def _upsert_state(self, table: TableDef, parquet: str) -> LoadResult:
        """The table made equal to the whole curated state: new keys numbered, changed rows updated, keys no longer
        curated deleted. An empty table takes every row with one INSERT."""
        sql = self.dialect
        with self._transaction() as session:
            only_known_columns = self._prepare(session, table, parquet)
            existing = session.execute(sql.count_rows(table)).fetchone()[0]
            session.execute(sql.create_new_keys(table))
            if existing:
                session.execute(sql.create_keyed(table))
                counts = sql.count_changes(table), sql.delete_missing(table)
                inserted, updated, deleted = self._apply_changes(session, table, *counts, only_known_columns)
            else:
                session.execute(sql.insert_keyed(table))
            rows = session.execute(sql.count_rows(table)).fetchone()[0]
        if not existing:
            inserted, updated, deleted = rows, 0, 0
        self._record_version(table, self._version_of(parquet))
        return LoadResult(table.name, rows, inserted, updated, deleted)

    def _upsert_changes(self, table: TableDef, changes: BatchChanges) -> LoadResult:
        """Only the batch's rows and removed keys; _OutOfStep (rolled back) unless the table was last loaded from
        the state version the batch started from and ends with as many rows as the new state. Nothing when it
        already holds the version the batch leads to (`_held`)."""
        sql = self.dialect
        recorded = self._recorded_version(table)
        if changes.state_version not in ("", changes.base_version) and recorded == changes.state_version:
            return self._held(table, changes)  # (a batch that changed nothing is loaded as such: in step, empty)
        if not changes.base_version or recorded != changes.base_version:
            raise _OutOfStep(f"the table holds version {recorded!r}, the batch starts from {changes.base_version!r}")
        with self._transaction() as session:
            only_known_columns = self._prepare(session, table, changes.rows)
            removed = table.removed_keys()
            self._create_staged(session, removed, changes.removed)
            session.execute(sql.create_new_keys(table))
            session.execute(sql.create_keyed(table))
            counts = sql.count_batch_changes(table), sql.delete_removed(table)
            inserted, updated, deleted = self._apply_changes(session, table, *counts, only_known_columns)
            updated += self._clear_dangling(session, table, changes.dangling_references)
            rows = session.execute(sql.count_rows(table)).fetchone()[0]
            if rows != changes.state_rows:
                raise _OutOfStep(f"{rows} rows after the batch, the curated state has {changes.state_rows}")
        self._record_version(table, changes.state_version)
        return LoadResult(table.name, rows, inserted, updated, deleted, "batch")

    def _held(self, table: TableDef, changes: BatchChanges) -> LoadResult:
        """The table already holds the version the batch leads to: nothing to load, if its rows agree."""
        with self._transaction() as session:
            rows = session.execute(self.dialect.count_rows(table)).fetchone()[0]
        if rows != changes.state_rows:
            raise _OutOfStep(
                f"it holds the batch's version with {rows} rows, the curated state has {changes.state_rows}"
            )
        return LoadResult(table.name, rows, 0, 0, 0, "held")

    @staticmethod
    def _clear_dangling(session: Session, table: TableDef, keys: tuple[str, ...]) -> int:
        """Rows referencing a dimension key that no longer exists get NULL there, as a load of the whole state
        gives them (its lookup finds no dimension row); returns how many rows changed."""
        sql, changed = session.dialect, 0
        for reference in (r for r in table.references if r.key in keys):
            dangling = session.execute(sql.count_dangling(table, reference)).fetchone()[0]
            if dangling:
                session.execute(sql.clear_dangling(table, reference))
            changed += dangling
        return changed

    @staticmethod
    def _apply_changes(
        session: Session, table: TableDef, count: str, delete: str, only_known_columns: bool
    ) -> tuple[int, int, int]:
        """New and changed rows merged, `delete` run when `count` says there are rows to delete."""
        sql = session.dialect
        session.execute(sql.create_changes(table))
        inserted, updated, deleted = session.execute(count).fetchone()
        if deleted:
            session.execute(delete)
        if inserted or updated:
            for statement in sql.apply_changes(table, only_known_columns):
                session.execute(statement)
        return inserted, updated, deleted

    def _version_of(self, parquet: str) -> str:
        metadata = self._schema(parquet).metadata or {}
        return metadata.get(STATE_VERSION.encode(), b"").decode()

    def _recorded_version(self, table: TableDef) -> str | None:
        """The state version the table was last loaded from (None: unknown, so the whole state is loaded)."""
        sql = self.dialect
        try:
            with self._transaction() as session:
                session.execute(sql.create_load_state())
                row = session.execute(sql.read_load_state(), [table.name]).fetchone()
        except Exception as error:  # e.g. a loading role without rights on _load_state: correct, only slower
            log.warning("%s: cannot read %s (%s): loading the whole curated state", table.name, LOAD_STATE, error)
            return None
        return row[0] if row else None

    def _record_version(self, table: TableDef, version: str) -> None:
        """Which state version the table now holds; recorded after the load committed, so a crash or a refusal in
        between leaves an older version recorded, and the next load takes the whole state (never a wrong delta)."""
        sql = self.dialect
        try:
            with self._transaction() as session:
                session.execute(sql.create_load_state())
                session.execute(sql.delete_load_state(), [table.name])
                session.execute(sql.insert_load_state(), [table.name, version])
        except Exception as error:
            log.warning("%s: cannot record its state version in %s (%s)", table.name, LOAD_STATE, error)

    @staticmethod
    def _add_new_columns(session: Session, table: TableDef) -> bool:
        """Schema evolution: a column the curated data gained is added to the table (never dropped). Returns
        whether the table has no other columns than the definition's."""
        existing = {row[0] for row in session.execute(session.dialect.existing_columns(), [table.name]).fetchall()}
        for column in table.table_columns:
            if column.name not in existing:
                session.execute(session.dialect.add_column(table, column))
        return existing <= {column.name for column in table.table_columns}
