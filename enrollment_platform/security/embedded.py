"""The embedded DuckDB warehouse has no users, roles or grants: nothing can be enforced there.

So that the policy's shape can be tried locally, every role gets a preview view per table it may read,
`<table>__<role>`: the role's columns, masked values and rows. Anyone with the file reads every table as it is;
the views are a preview, never access control. Applying warns so whenever the policy filters rows (someone
relying on a row filter must not believe it holds here). Views are compared by a fingerprint in their COMMENT:
a second apply changes nothing, a role removed from the policy loses its views.
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

from enrollment_platform.resources.warehouse.dialects import DuckDBDialect
from enrollment_platform.resources.warehouse.model import warehouse_type
from enrollment_platform.security.access import ApplyResult, missing_tables, resolve, view_name, view_select
from enrollment_platform.security.policy import AccessPolicy
from enrollment_platform.security.schema import StarSchema
from enrollment_platform.transforms.sql import quote_ident, quote_literal

q = quote_ident
MARKER = "enrollment-platform access policy preview (not enforced)"
VIEWS = "SELECT view_name, comment FROM duckdb_views() WHERE NOT internal AND schema_name = current_schema()"
NOT_ENFORCED = (
    "DuckDB has no users, roles or grants: the access policy is NOT enforced in the embedded warehouse, and its row "
    "filters ({filters}) hold nowhere. The views <table>__<role> only preview what each role would see; use a "
    "PostgreSQL or Redshift warehouse to enforce the policy."
)


def sql_type(data_type: pa.DataType) -> str:
    return DuckDBDialect().column_type(warehouse_type(data_type))


def fingerprint(definition: str) -> str:
    return hashlib.sha256(definition.encode()).hexdigest()[:16]


def desired_views(policy: AccessPolicy, schema: StarSchema, present: set[str]) -> dict[str, str]:
    """view -> CREATE VIEW, for every role and table it may read."""
    views = {}
    for access in resolve(policy, schema, present):
        if access.reads:
            view = view_name(access.table, access.role)
            views[view] = f"CREATE VIEW {q(view)} AS {view_select(access, schema, sql_type)}"
    return views


def plan(desired: dict[str, str], current: dict[str, str | None]) -> list[str]:
    """Drop our views that changed or are no longer wanted, create the missing ones; nothing when all match."""
    ours = {view: text for view, text in current.items() if text and text.startswith(MARKER)}
    stale = sorted(v for v, text in ours.items() if text != f"{MARKER} {fingerprint(desired.get(v, ''))}")
    statements = [f"DROP VIEW {q(v)}" for v in stale]
    for view, definition in sorted(desired.items()):
        if view not in ours or view in stale:
            statements += [
                definition,
                f"COMMENT ON VIEW {q(view)} IS {quote_literal(f'{MARKER} {fingerprint(definition)}')}",
            ]
    return statements


def filters_text(policy: AccessPolicy) -> str:
    return "; ".join(
        f"{role.name}: {f.table}.{f.column} IN {list(f.values)}"
        for role in policy.roles.values()
        for f in role.row_filters
    )


def apply(warehouse, policy: AccessPolicy, schema: StarSchema) -> ApplyResult:
    """Create the preview views; the result is never `enforced`, and warns when the policy filters rows."""
    present = set(warehouse.tables())
    desired = desired_views(policy, schema, present)
    warnings = [NOT_ENFORCED.format(filters=filters_text(policy))] if policy.has_row_filters else []
    result = ApplyResult("duckdb", False, warnings=warnings, missing_tables=missing_tables(policy, schema, present))
    with warehouse.session() as session:
        statements = plan(desired, dict(session.execute(VIEWS).fetchall()))
        for statement in statements:
            session.execute(statement)
    result.changes = statements
    return result
