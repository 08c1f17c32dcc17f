"""The policy resolved against the star schema: for every role and table, the privileges, the columns it may select,
the masked ones and the row filters that apply. Every compiler starts from this one resolution.

A row filter on `course_dim.department` limits course_dim itself (`department IN (...)`) and every table holding a
course_dim key (enrollment_fact: `course_key IN (SELECT course_key FROM course_dim WHERE department IN (...))`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from enrollment_platform.security.policy import (
    WRITE_PRIVILEGES,
    AccessPolicy,
    Mask,
    PolicyError,
    Role,
    RowFilter,
    Value,
)
from enrollment_platform.security.schema import StarSchema
from enrollment_platform.transforms.sql import quote_ident, quote_literal

q = quote_ident
REDACTED = "****"


@dataclass(frozen=True)
class Scope:
    """One row filter as it applies to one table: the table's own `column`, or its key `column` through the
    filtered dimension (`lookup` is that dimension)."""

    filter: RowFilter
    column: str
    lookup: str | None = None


@dataclass(frozen=True)
class TableAccess:
    role: str
    table: str
    privileges: frozenset[str]
    columns: tuple[str, ...]  # the columns the role may select, in table order (masked ones included)
    all_columns: bool  # every column of the table
    by_exclusion: bool  # the rule says what to leave out (Lake Formation: ExcludedColumnNames) not what to keep
    masks: tuple[Mask, ...] = ()
    scopes: tuple[Scope, ...] = ()

    @property
    def reads(self) -> bool:
        return "SELECT" in self.privileges

    @property
    def writes(self) -> frozenset[str]:
        return self.privileges & WRITE_PRIVILEGES

    def mask(self, column: str) -> Mask | None:
        return next((m for m in self.masks if m.column == column), None)

    @property
    def plain_columns(self) -> tuple[str, ...]:
        """The columns it may select unmasked."""
        return tuple(c for c in self.columns if self.mask(c) is None)


@dataclass
class ApplyResult:
    """What applying the policy to one target did."""

    target: str
    enforced: bool
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missing_tables: list[str] = field(default_factory=list)
    dropped_roles: list[str] = field(default_factory=list)
    kept_roles: list[str] = field(default_factory=list)


# --- resolution --------------------------------------------------------------------------------------------------


def missing_tables(policy: AccessPolicy, schema: StarSchema, present: set[str] | None = None) -> list[str]:
    """Tables the policy names that are not there yet (no curated data, or not loaded): applied on a later run."""
    named = {table for role in policy.roles.values() for table in role.tables}
    available = set(schema.tables) if present is None else set(schema.tables) & present
    return sorted(named - available)


def resolve(policy: AccessPolicy, schema: StarSchema, present: set[str] | None = None) -> list[TableAccess]:
    """Every (role, table) access for the tables in `schema` (and in `present`, the warehouse's tables, if given)."""
    check_pii_columns(policy, schema)
    accesses = []
    for role in policy.roles.values():
        for table in role.tables:
            if table in schema.tables and (present is None or table in present):
                accesses.append(table_access(policy, role, table, schema))
    for access in accesses:
        check_lookups(access, accesses, schema)
    return accesses


def check_pii_columns(policy: AccessPolicy, schema: StarSchema) -> None:
    for table, columns in policy.pii_columns.items():
        if table in schema.tables:
            check_columns(f"pii_columns.{table}", table, columns, schema)


def check_columns(where: str, table: str, columns, schema: StarSchema) -> None:
    known = schema.columns(table)
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise PolicyError(f"{where}: unknown column(s) {unknown} of {table} (columns: {', '.join(known)})")


def table_access(policy: AccessPolicy, role: Role, table: str, schema: StarSchema) -> TableAccess:
    rule, where = role.tables[table], f"roles.{role.name}.tables.{table}"
    every = schema.columns(table)
    check_columns(f"{where}.columns", table, rule.columns or (), schema)
    check_columns(f"{where}.exclude", table, rule.exclude, schema)
    masks = tuple(m for m in role.masks if m.table == table)
    check_columns(f"roles.{role.name}.masks", table, [m.column for m in masks], schema)
    check_mask_types(role.name, masks, schema)
    masked = {m.column for m in masks}
    hidden = set(rule.exclude) | (set() if role.pii else set(policy.pii_columns.get(table, ())) - masked)
    allowed = set(rule.columns) if rule.columns is not None else set(every)
    columns = tuple(c for c in every if c in allowed and c not in hidden)
    if not columns and "SELECT" in rule.privileges:
        raise PolicyError(f"{where}: the rule leaves no column to select")
    return TableAccess(
        role=role.name,
        table=table,
        privileges=rule.privileges,
        columns=columns if "SELECT" in rule.privileges else (),
        all_columns=columns == tuple(every),
        by_exclusion=rule.columns is None,
        masks=tuple(m for m in masks if m.column in columns),
        scopes=scopes(role, table, schema),
    )


def check_mask_types(role: str, masks: tuple[Mask, ...], schema: StarSchema) -> None:
    """`redact` and `partial` show text: they mask text columns only (`null` masks any)."""
    for mask in masks:
        data_type = schema.column_type(mask.table, mask.column)
        if mask.function != "null" and not (pa.types.is_string(data_type) or pa.types.is_large_string(data_type)):
            raise PolicyError(
                f"roles.{role}.masks.{mask.table}.{mask.column}: {mask.function} masks text columns and "
                f"{mask.column} is {data_type}; use null"
            )


def scopes(role: Role, table: str, schema: StarSchema) -> tuple[Scope, ...]:
    found = []
    for row_filter in role.row_filters:
        if row_filter.table not in schema.tables:
            continue
        check_columns(f"roles.{role.name}.row_filters", row_filter.table, [row_filter.column], schema)
        if table == row_filter.table:
            found.append(Scope(row_filter, row_filter.column))
        elif table in schema.referencing(row_filter.table):
            found.append(Scope(row_filter, schema.referencing(row_filter.table)[table], row_filter.table))
    return tuple(found)


def check_lookups(access: TableAccess, accesses: list[TableAccess], schema: StarSchema) -> None:
    """A filter through a dimension reads it with the role's own rights: the role must select its key and the
    filtered column, unmasked."""
    for scope in access.scopes:
        if scope.lookup is None:
            continue
        needed = [schema.surrogate_key(scope.lookup), scope.filter.column]
        own = next((a for a in accesses if a.role == access.role and a.table == scope.lookup), None)
        if own is None or any(c not in own.plain_columns for c in needed):
            raise PolicyError(
                f"roles.{access.role}.row_filters: {scope.filter.table}.{scope.filter.column} filters {access.table} "
                f"through {scope.lookup}, so the role must select {', '.join(needed)} of {scope.lookup} unmasked"
            )


# --- SQL shared by the SQL targets -------------------------------------------------------------------------------


def literal(value: Value) -> str:
    return quote_literal(value) if isinstance(value, str) else repr(value)


def in_list(column: str, values) -> str:
    return f"{q(column)} IN ({', '.join(literal(v) for v in values)})"


def scope_sql(scope: Scope, schema: StarSchema) -> str:
    """`department IN (...)`, or `course_key IN (SELECT course_key FROM course_dim WHERE department IN (...))`."""
    direct = in_list(scope.filter.column, scope.filter.values)
    if scope.lookup is None:
        return direct
    key = q(schema.surrogate_key(scope.lookup))
    return f"{q(scope.column)} IN (SELECT {key} FROM {q(scope.lookup)} WHERE {direct})"


def row_predicate(access: TableAccess, schema: StarSchema) -> str | None:
    """The role's rows of the table (every filter applies), or None for every row."""
    return " AND ".join(scope_sql(s, schema) for s in access.scopes) or None


def mask_sql(mask: Mask, value: str, sql_type: str) -> str:
    """The masked value of the expression `value` (a column) of type `sql_type`; NULL stays NULL."""
    if mask.function == "null":
        return f"CAST(NULL AS {sql_type})"
    shown = quote_literal(REDACTED)
    if mask.function == "partial":
        shown = f"{shown} || RIGHT({value}, {mask.keep_last})"
    return f"CASE WHEN {value} IS NULL THEN NULL ELSE {shown} END"


def view_name(table: str, role: str) -> str:
    """The per-role view of a table (masked values on PostgreSQL, a preview on DuckDB)."""
    name = f"{table}__{role}"
    if len(name) > 63:
        raise PolicyError(f"the view {name} of role {role} on {table} is longer than 63 characters: shorten the role")
    return name


def view_select(access: TableAccess, schema: StarSchema, sql_type) -> str:
    """SELECT of the columns the role may see, masked where it must, limited to its rows."""
    items = []
    for column in access.columns:
        mask = access.mask(column)
        type_name = sql_type(schema.column_type(access.table, column))
        items.append(q(column) if mask is None else f"{mask_sql(mask, q(column), type_name)} AS {q(column)}")
    where = row_predicate(access, schema)
    return f"SELECT {', '.join(items)} FROM {q(access.table)}" + (f" WHERE {where}" if where else "")
