"""The access policy in Redshift's own syntax, run through the Redshift warehouse resource in one transaction.

- `CREATE ROLE`, `GRANT ROLE … TO user`, `GRANT … ON SCHEMA/TABLE … TO ROLE`, column grants `GRANT SELECT (a, b)`;
- row filters: `CREATE RLS POLICY … WITH (column type) USING (…)`, `GRANT SELECT ON TABLE <lookup> TO RLS POLICY`
  when it reads a dimension, `ATTACH RLS POLICY … ON TABLE … TO ROLE`, `ALTER TABLE … ROW LEVEL SECURITY ON
  CONJUNCTION TYPE OR` (a user holding several roles sees the union of their rows, as with PostgreSQL's permissive
  policies); every other role reading the table gets the all-rows policy, since RLS hides every row from a role
  with no policy;
- masks: `CREATE MASKING POLICY … WITH (value type) USING (…)`, `ATTACH MASKING POLICY … ON t(column) TO ROLE`
  (the role keeps its column grant and sees the masked value).

Redshift refuses a table with RLS on as the lookup table of another RLS policy: a dimension that filters a fact
(course_dim for enrollment_fact) keeps RLS off, and the apply says so in a warning.

Idempotent like PostgreSQL: the catalog views (SVV_ROLES, SVV_USER_GRANTS, SVV_SCHEMA_PRIVILEGES,
SVV_RELATION_PRIVILEGES, SVV_COLUMN_PRIVILEGES, SVV_RLS_POLICY, SVV_RLS_ATTACHED_POLICY, SVV_RLS_RELATION,
SVV_MASKING_POLICY, SVV_ATTACHED_MASKING_POLICY) are read first and only differences run. Policy names carry a
fingerprint of their definition, so a changed definition is a new policy and the old one is detached and dropped.
Apply as a superuser or a user with the sys:secadmin role.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import pyarrow as pa

from enrollment_platform.resources.warehouse.base import Session
from enrollment_platform.resources.warehouse.dialects import RedshiftDialect
from enrollment_platform.resources.warehouse.model import warehouse_type
from enrollment_platform.security.access import (
    ApplyResult,
    Scope,
    TableAccess,
    mask_sql,
    missing_tables,
    resolve,
    scope_sql,
)
from enrollment_platform.security.grants import Grants, GrantSql, changes
from enrollment_platform.security.policy import AccessPolicy, Mask
from enrollment_platform.security.schema import StarSchema
from enrollment_platform.transforms.sql import quote_ident

q = quote_ident

ROLES = "SELECT role_name FROM svv_roles"
MEMBERS = "SELECT role_name, user_name FROM svv_user_grants"
SCHEMA_GRANTS = (
    "SELECT identity_name, privilege_type FROM svv_schema_privileges "
    "WHERE namespace_name = current_schema() AND identity_type = 'role'"
)
TABLE_GRANTS = (
    "SELECT identity_name, relation_name, privilege_type FROM svv_relation_privileges "
    "WHERE namespace_name = current_schema() AND identity_type = 'role'"
)
COLUMN_GRANTS = (
    "SELECT identity_name, relation_name, column_name, privilege_type FROM svv_column_privileges "
    "WHERE namespace_name = current_schema() AND identity_type = 'role'"
)
RLS_POLICIES = "SELECT polname FROM svv_rls_policy"
RLS_ATTACHED = "SELECT polname, relname, grantee FROM svv_rls_attached_policy WHERE relschema = current_schema()"
RLS_TABLES = "SELECT relname FROM svv_rls_relation WHERE relschema = current_schema() AND is_rls_on"
MASKING_POLICIES = "SELECT policy_name FROM svv_masking_policy"
MASKING_ATTACHED = (
    "SELECT policy_name, table_name, output_columns, grantee, priority FROM svv_attached_masking_policy "
    "WHERE schema_name = current_schema() AND grantee_type = 'role'"
)
INTROSPECTION = (ROLES, MEMBERS, SCHEMA_GRANTS, TABLE_GRANTS, COLUMN_GRANTS, RLS_POLICIES, RLS_ATTACHED, RLS_TABLES)
INTROSPECTION += (MASKING_POLICIES, MASKING_ATTACHED)
ALL_ROWS = "rls_all_rows"
PRIORITY_STEP = 10


def sql_type(data_type: pa.DataType) -> str:
    return RedshiftDialect().column_type(warehouse_type(data_type))


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass
class State:
    roles: set[str] = field(default_factory=set)
    members: set[tuple[str, str]] = field(default_factory=set)  # (role, user)
    member_roles: set[str] = field(default_factory=set)
    grants: Grants = field(default_factory=Grants)
    rls_tables: set[str] = field(default_factory=set)
    rls_policies: dict[str, list[str]] = field(default_factory=dict)  # name -> statements creating it
    rls_attached: set[tuple[str, str, str]] = field(default_factory=set)  # (policy, table, role)
    foreign_rls: set[str] = field(default_factory=set)  # tables with attachments of policies not ours
    masking_policies: dict[str, list[str]] = field(default_factory=dict)
    # (policy, table, column, role, priority)
    masking_attached: set[tuple[str, str, str, str, int]] = field(default_factory=set)


# --- desired --------------------------------------------------------------------------------------------------------


def desired_state(policy: AccessPolicy, accesses: list[TableAccess], schema: StarSchema) -> tuple[State, list[str]]:
    """The desired state, and warnings about what Redshift cannot do as the policy says."""
    prefix = policy.managed_prefixes[0]
    state = State(roles=set(policy.roles))
    for role in policy.roles.values():
        if role.members is not None:
            state.member_roles.add(role.name)
            state.members |= {(role.name, m) for m in role.members}
        state.grants.schema |= {(role.name, p) for p in {"USAGE", *role.schema}}
    for access in accesses:
        state.grants.tables |= {(access.role, access.table, p) for p in access.writes}
        if access.reads and access.all_columns:
            state.grants.tables.add((access.role, access.table, "SELECT"))
        elif access.reads:
            state.grants.columns |= {(access.role, access.table, c, "SELECT") for c in access.columns}
    warnings = add_row_security(state, prefix, accesses, schema)
    add_masks(state, prefix, accesses, schema)
    return state, warnings


def lookup_tables(accesses: list[TableAccess]) -> set[str]:
    return {s.lookup for a in accesses for s in a.scopes if s.lookup}


def add_row_security(state: State, prefix: str, accesses: list[TableAccess], schema: StarSchema) -> list[str]:
    lookups = lookup_tables(accesses)
    filtered = {a.table for a in accesses if a.scopes} - lookups
    warnings = [
        f"Redshift: {table} is the lookup table of a row-level security policy, and Redshift allows no RLS on a "
        f"lookup table; the roles filtered through it see every row of {table} itself"
        for table in sorted({a.table for a in accesses if a.scopes} & lookups)
    ]
    all_rows = f"{prefix}{ALL_ROWS}"
    for access in (a for a in accesses if a.table in filtered):
        state.rls_tables.add(access.table)
        if access.scopes:
            name, statements = rls_policy(prefix, access.table, access.scopes, schema)
        else:
            name, statements = all_rows, [f"CREATE RLS POLICY {q(all_rows)} USING (true)"]
        state.rls_policies[name] = statements
        state.rls_attached.add((name, access.table, access.role))
    return warnings


def rls_policy(prefix: str, table: str, scopes: tuple[Scope, ...], schema: StarSchema) -> tuple[str, list[str]]:
    """A policy named after its table and a fingerprint of its definition; a lookup gets its SELECT grant."""
    columns = sorted({s.column for s in scopes})
    declared = ", ".join(f"{q(c)} {sql_type(schema.column_type(table, c))}" for c in columns)
    body = f"WITH ({declared}) USING ({' AND '.join(scope_sql(s, schema) for s in scopes)})"
    name = f"{prefix}rls_{table}_{short_hash(body)}"
    lookups = sorted({s.lookup for s in scopes if s.lookup})
    grants = [f"GRANT SELECT ON TABLE {q(t)} TO RLS POLICY {q(name)}" for t in lookups]
    return name, [f"CREATE RLS POLICY {q(name)} {body}", *grants]


def add_masks(state: State, prefix: str, accesses: list[TableAccess], schema: StarSchema) -> None:
    by_column: dict[tuple[str, str], set[str]] = {}
    attached = []
    for access in accesses:
        for mask in access.masks:
            name, statements = masking_policy(prefix, mask, sql_type(schema.column_type(mask.table, mask.column)))
            state.masking_policies[name] = statements
            by_column.setdefault((mask.table, mask.column), set()).add(name)
            attached.append((name, mask.table, mask.column, access.role))
    for name, table, column, role in attached:
        priority = PRIORITY_STEP * (sorted(by_column[(table, column)]).index(name) + 1)
        state.masking_attached.add((name, table, column, role, priority))


def masking_policy(prefix: str, mask: Mask, type_name: str) -> tuple[str, list[str]]:
    body = f"WITH ({q('value')} {type_name}) USING ({mask_sql(mask, q('value'), type_name)})"
    name = f"{prefix}mask_{mask.function}_{short_hash(body)}"
    return name, [f"CREATE MASKING POLICY {q(name)} {body}"]


# --- current --------------------------------------------------------------------------------------------------------


def first_name(text: str) -> str:
    """The column of SVV_ATTACHED_MASKING_POLICY.output_columns (a JSON-like list of names)."""
    found = re.findall(r"[A-Za-z_][A-Za-z0-9_$]*", text or "")
    return found[0] if found else ""


def current_state(session: Session, policy: AccessPolicy) -> State:
    managed = policy.is_managed
    rows = {sql: session.execute(sql).fetchall() for sql in INTROSPECTION}
    state = State(
        roles={r for (r,) in rows[ROLES] if managed(r)},
        members={(r, u) for r, u in rows[MEMBERS] if managed(r)},
        grants=Grants(
            {(r, p) for r, p in rows[SCHEMA_GRANTS]},
            {(r, t, p) for r, t, p in rows[TABLE_GRANTS]},
            {(r, t, c, p) for r, t, c, p in rows[COLUMN_GRANTS]},
        ).only(managed),
        rls_tables={t for (t,) in rows[RLS_TABLES]},
        rls_policies={p: [] for (p,) in rows[RLS_POLICIES] if managed(p)},
        masking_policies={p: [] for (p,) in rows[MASKING_POLICIES] if managed(p)},
    )
    for name, table, grantee in rows[RLS_ATTACHED]:
        if managed(name):
            state.rls_attached.add((name, table, grantee))
        else:
            state.foreign_rls.add(table)
    state.masking_attached = {
        (p, t, first_name(cols), r, int(priority)) for p, t, cols, r, priority in rows[MASKING_ATTACHED] if managed(p)
    }
    return state


# --- the plan --------------------------------------------------------------------------------------------------------


def plan(desired: State, current: State, schema_name: str) -> list[str]:
    """The statements turning `current` into `desired`; nothing when they are equal."""
    revokes, grants = changes(desired.grants, current.grants, GrantSql(schema_name, "ROLE "))
    new_rls = [
        s for name in sorted(set(desired.rls_policies) - set(current.rls_policies)) for s in desired.rls_policies[name]
    ]
    new_masks = [
        s
        for name in sorted(set(desired.masking_policies) - set(current.masking_policies))
        for s in desired.masking_policies[name]
    ]
    return [
        *(f"CREATE ROLE {q(r)}" for r in sorted(desired.roles - current.roles)),
        *membership(desired, current),
        *(detach_mask(*a) for a in sorted(current.masking_attached - desired.masking_attached)),
        *(detach_rls(*a) for a in sorted(current.rls_attached - desired.rls_attached)),
        *(f"DROP MASKING POLICY {q(p)}" for p in sorted(set(current.masking_policies) - set(desired.masking_policies))),
        *(f"DROP RLS POLICY {q(p)}" for p in sorted(set(current.rls_policies) - set(desired.rls_policies))),
        *revokes,
        *grants,
        *new_rls,
        *new_masks,
        *(attach_rls(*a) for a in sorted(desired.rls_attached - current.rls_attached)),
        *(attach_mask(*a) for a in sorted(desired.masking_attached - current.masking_attached)),
        *row_security(desired, current),
        *(f"DROP ROLE {q(r)} FORCE" for r in sorted(current.roles - desired.roles)),
    ]


def membership(desired: State, current: State) -> list[str]:
    revoke = sorted((r, u) for r, u in current.members - desired.members if r in desired.member_roles)
    grant = sorted(desired.members - current.members)
    return [
        *(f"REVOKE ROLE {q(r)} FROM {q(u)}" for r, u in revoke),
        *(f"GRANT ROLE {q(r)} TO {q(u)}" for r, u in grant),
    ]


def attach_rls(policy: str, table: str, role: str) -> str:
    return f"ATTACH RLS POLICY {q(policy)} ON TABLE {q(table)} TO ROLE {q(role)}"


def detach_rls(policy: str, table: str, role: str) -> str:
    return f"DETACH RLS POLICY {q(policy)} ON TABLE {q(table)} FROM ROLE {q(role)}"


def attach_mask(policy: str, table: str, column: str, role: str, priority: int) -> str:
    return f"ATTACH MASKING POLICY {q(policy)} ON {q(table)}({q(column)}) TO ROLE {q(role)} PRIORITY {priority}"


def detach_mask(policy: str, table: str, column: str, role: str, priority: int) -> str:
    return f"DETACH MASKING POLICY {q(policy)} ON {q(table)}({q(column)}) FROM ROLE {q(role)}"


def row_security(desired: State, current: State) -> list[str]:
    on = [
        f"ALTER TABLE {q(t)} ROW LEVEL SECURITY ON CONJUNCTION TYPE OR"
        for t in sorted(desired.rls_tables - current.rls_tables)
    ]
    ours = {table for _, table, _ in current.rls_attached}
    off = [
        f"ALTER TABLE {q(t)} ROW LEVEL SECURITY OFF"
        for t in sorted(current.rls_tables - desired.rls_tables)
        if t in ours and t not in current.foreign_rls
    ]
    return [*on, *off]


# --- apply ----------------------------------------------------------------------------------------------------------


def apply(warehouse, policy: AccessPolicy, schema: StarSchema) -> ApplyResult:
    """Apply the policy through the Redshift resource in one transaction; the statements that ran are reported."""
    present = set(warehouse.tables())
    accesses = resolve(policy, schema, present)
    desired, warnings = desired_state(policy, accesses, schema)
    result = ApplyResult("redshift", True, warnings=warnings, missing_tables=missing_tables(policy, schema, present))
    with warehouse.session() as session:
        schema_name = session.execute("SELECT current_schema()").fetchone()[0]
        statements = plan(desired, current_state(session, policy), schema_name)
        for statement in statements:
            session.execute(statement)
    result.changes = statements
    result.dropped_roles = [s.split('"')[1] for s in statements if s.startswith("DROP ROLE")]
    return result
