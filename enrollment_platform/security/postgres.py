"""The access policy on PostgreSQL, applied for real, in one transaction, in the warehouse's schema.

- roles: `CREATE ROLE … NOLOGIN` (with a COMMENT saying the policy manages it), `GRANT role TO member`;
- `GRANT USAGE [, CREATE] ON SCHEMA`, table GRANTs, column GRANTs (`GRANT SELECT (a, b) ON t`) where a role may
  not see every column;
- masking: PostgreSQL has no masking policy, so a role with masks gets no privilege on the masked column and reads
  it through the view `<table>__<role>` (security_barrier, the view owner's rights, limited to the role's rows);
- row filters: `ENABLE` + `FORCE ROW LEVEL SECURITY` (the owner must not bypass them) and one policy per role with
  access to the table, named like the role: its filter, or `true` for a role that sees every row.

Idempotent: the catalog is read first (pg_roles, pg_auth_members, the ACLs of the schema, its relations and their
columns, pg_class.relrowsecurity, pg_policy, view comments) and only the differences run; a second apply runs
nothing. Whatever a managed role (policy.managed_prefixes) holds that the file does not grant is revoked; a managed
role no longer in the file loses everything in the schema and is dropped (kept, and reported, when it still holds
something elsewhere). Policies and views carry a COMMENT with a fingerprint of their definition: a changed
definition is dropped and created again.

Apply as a superuser or the tables' owner, with CREATEROLE (or with the roles created beforehand).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import psycopg
import pyarrow as pa

from enrollment_platform.resources.warehouse.base import Session
from enrollment_platform.resources.warehouse.dialects import PostgresDialect
from enrollment_platform.resources.warehouse.model import warehouse_type
from enrollment_platform.security.access import (
    ApplyResult,
    TableAccess,
    missing_tables,
    resolve,
    row_predicate,
    view_name,
    view_select,
)
from enrollment_platform.security.grants import Grants, GrantSql, changes
from enrollment_platform.security.policy import AccessPolicy
from enrollment_platform.security.schema import StarSchema
from enrollment_platform.transforms.sql import quote_ident, quote_literal

q = quote_ident
MARKER = "managed by the enrollment-platform access policy"
NAMESPACE = "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"

ROLES = "SELECT rolname FROM pg_roles"
MEMBERS = (
    "SELECT r.rolname, m.rolname FROM pg_auth_members a "
    "JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member"
)
SCHEMA_GRANTS = (
    "SELECT r.rolname, a.privilege_type FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a "
    "JOIN pg_roles r ON r.oid = a.grantee WHERE n.nspname = current_schema() AND a.grantee <> n.nspowner"
)
TABLE_GRANTS = (
    "SELECT r.rolname, c.relname, a.privilege_type FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
    f"JOIN pg_roles r ON r.oid = a.grantee WHERE c.relnamespace = {NAMESPACE} AND c.relkind IN ('r', 'p', 'v') "
    "AND a.grantee <> c.relowner"
)
COLUMN_GRANTS = (
    "SELECT r.rolname, c.relname, t.attname, a.privilege_type FROM pg_attribute t "
    "JOIN pg_class c ON c.oid = t.attrelid CROSS JOIN LATERAL aclexplode(t.attacl) a "
    f"JOIN pg_roles r ON r.oid = a.grantee WHERE c.relnamespace = {NAMESPACE} AND c.relkind IN ('r', 'p', 'v') "
    "AND t.attnum > 0 AND NOT t.attisdropped"
)
ROW_SECURITY = (
    "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
    f"WHERE relnamespace = {NAMESPACE} AND relkind IN ('r', 'p')"
)
POLICIES = (
    "SELECT c.relname, p.polname, obj_description(p.oid, 'pg_policy') FROM pg_policy p "
    f"JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = {NAMESPACE}"
)
VIEWS = (
    f"SELECT relname, obj_description(oid, 'pg_class') FROM pg_class WHERE relnamespace = {NAMESPACE} AND relkind = 'v'"
)


def fingerprint(definition: str) -> str:
    return hashlib.sha256(definition.encode()).hexdigest()[:16]


def comment(definition: str) -> str:
    return quote_literal(f"{MARKER}; definition {fingerprint(definition)}")


def comment_fingerprint(text: str | None) -> str | None:
    """The fingerprint in a comment we wrote, or None for any other comment."""
    if not text or not text.startswith(MARKER):
        return None
    return text.rsplit(" ", 1)[-1]


@dataclass
class State:
    """Roles, grants, row security, policies and views of the schema: desired (definitions) or current
    (fingerprints from the comments)."""

    roles: set[str] = field(default_factory=set)
    members: set[tuple[str, str]] = field(default_factory=set)  # (role, member)
    member_roles: set[str] = field(default_factory=set)  # roles whose members the file lists
    grants: Grants = field(default_factory=Grants)
    row_security: dict[str, tuple[bool, bool]] = field(default_factory=dict)  # table -> (enabled, forced)
    policies: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, name) -> definition | fingerprint
    foreign_policies: set[str] = field(default_factory=set)  # tables with policies this file does not manage
    views: dict[str, str] = field(default_factory=dict)  # view -> definition | fingerprint
    all_roles: set[str] = field(default_factory=set)


# --- desired ------------------------------------------------------------------------------------------------------


def sql_type(data_type: pa.DataType) -> str:
    return PostgresDialect().column_type(warehouse_type(data_type))


def desired_state(policy: AccessPolicy, accesses: list[TableAccess], schema: StarSchema) -> State:
    state = State(roles=set(policy.roles))
    for role in policy.roles.values():
        if role.members is not None:
            state.member_roles.add(role.name)
            state.members |= {(role.name, member) for member in role.members}
        state.grants.schema |= {(role.name, p) for p in {"USAGE", *role.schema}}
    for access in accesses:
        add_access(state, access, schema)
    for table in {a.table for a in accesses if a.scopes}:
        state.row_security[table] = (True, True)
        for access in (a for a in accesses if a.table == table):
            state.policies[(table, access.role)] = policy_sql(access, schema)
    return state


def add_access(state: State, access: TableAccess, schema: StarSchema) -> None:
    role, table = access.role, access.table
    state.grants.tables |= {(role, table, p) for p in access.writes}
    if not access.reads:
        return
    if access.all_columns and not access.masks:
        state.grants.tables.add((role, table, "SELECT"))
    else:
        state.grants.columns |= {(role, table, c, "SELECT") for c in access.plain_columns}
    if access.masks:
        view = view_name(table, role)
        state.views[view] = f"CREATE VIEW {q(view)} WITH (security_barrier) AS {view_select(access, schema, sql_type)}"
        state.grants.tables.add((role, view, "SELECT"))


def policy_sql(access: TableAccess, schema: StarSchema) -> str:
    """The role's policy on a table with row security: its rows, or every row (`true`)."""
    rows = row_predicate(access, schema) or "true"
    target = f"CREATE POLICY {q(access.role)} ON {q(access.table)} AS PERMISSIVE"
    if access.writes:
        return f"{target} FOR ALL TO {q(access.role)} USING ({rows}) WITH CHECK ({rows})"
    return f"{target} FOR SELECT TO {q(access.role)} USING ({rows})"


# --- current -------------------------------------------------------------------------------------------------------


def current_state(session: Session, policy: AccessPolicy) -> State:
    """What the catalog says about the managed roles in the current schema."""
    managed = policy.is_managed
    all_roles = {row[0] for row in session.execute(ROLES).fetchall()}
    grants = Grants(
        {(r, p) for r, p in session.execute(SCHEMA_GRANTS).fetchall()},
        {(r, t, p) for r, t, p in session.execute(TABLE_GRANTS).fetchall()},
        {(r, t, c, p) for r, t, c, p in session.execute(COLUMN_GRANTS).fetchall()},
    ).only(managed)
    policies, foreign = {}, set()
    for table, name, text in session.execute(POLICIES).fetchall():
        if managed(name):
            policies[(table, name)] = comment_fingerprint(text) or ""
        else:
            foreign.add(table)
    views = {v: fp for v, text in session.execute(VIEWS).fetchall() if (fp := comment_fingerprint(text))}
    return State(
        roles={r for r in all_roles if managed(r)},
        members={(r, m) for r, m in session.execute(MEMBERS).fetchall() if managed(r)},
        grants=grants,
        row_security={t: (e, f) for t, e, f in session.execute(ROW_SECURITY).fetchall() if e or f},
        policies=policies,
        foreign_policies=foreign,
        views=views,
        all_roles=all_roles,
    )


# --- the plan -----------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    statements: list[str]
    drop_roles: list[str]


def plan(policy: AccessPolicy, desired: State, current: State, schema_name: str) -> Plan:
    """The statements turning `current` into `desired`, in an order that always works; nothing when equal."""
    check_members(policy, current)
    stale_views = {v for v, fp in current.views.items() if fingerprint(desired.views.get(v, "")) != fp}
    stale_policies = {k for k, fp in current.policies.items() if fingerprint(desired.policies.get(k, "")) != fp}
    revokes, grants = changes(desired.grants, current.grants.without_relations(stale_views), GrantSql(schema_name))
    statements = [
        *(create_role(policy, r) for r in sorted(desired.roles - current.roles)),
        *(f"DROP VIEW {q(v)}" for v in sorted(stale_views)),
        *(f"DROP POLICY {q(name)} ON {q(table)}" for table, name in sorted(stale_policies)),
        *membership(desired, current),
        *revokes,
        *create_views(desired, current, stale_views),
        *grants,
        *row_security(desired, current),
        *create_policies(desired, current, stale_policies),
    ]
    return Plan(statements, sorted(current.roles - desired.roles))


def check_members(policy: AccessPolicy, current: State) -> None:
    for role in policy.roles.values():
        unknown = [m for m in role.members or () if m not in current.all_roles]
        if unknown:
            raise ValueError(f"roles.{role.name}.members: no database user or role {', '.join(unknown)}")


def create_role(policy: AccessPolicy, role: str) -> str:
    """CREATE ROLE that tolerates a concurrent apply creating the same role (roles are cluster-wide)."""
    note = quote_literal(f"{MARKER} {policy.name!r}: {policy.roles[role].description}"[:1000])
    return (
        f"DO $$BEGIN CREATE ROLE {q(role)} NOLOGIN; COMMENT ON ROLE {q(role)} IS {note}; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END$$"
    )


def membership(desired: State, current: State) -> list[str]:
    """GRANT/REVOKE role TO member, for the roles whose `members` the file lists."""
    revoke = sorted((r, m) for r, m in current.members - desired.members if r in desired.member_roles)
    grant = sorted(desired.members - current.members)
    return [*(f"REVOKE {q(r)} FROM {q(m)}" for r, m in revoke), *(f"GRANT {q(r)} TO {q(m)}" for r, m in grant)]


def create_views(desired: State, current: State, stale: set[str]) -> list[str]:
    statements = []
    for view, definition in sorted(desired.views.items()):
        if view not in current.views or view in stale:
            statements += [definition, f"COMMENT ON VIEW {q(view)} IS {comment(definition)}"]
    return statements


def row_security(desired: State, current: State) -> list[str]:
    """Enable and force row security where the file filters rows; turn it off where it no longer does, on tables
    whose only policies were ours."""
    statements = []
    for table in sorted(desired.row_security):
        enabled, forced = current.row_security.get(table, (False, False))
        statements += [] if enabled else [f"ALTER TABLE {q(table)} ENABLE ROW LEVEL SECURITY"]
        statements += [] if forced else [f"ALTER TABLE {q(table)} FORCE ROW LEVEL SECURITY"]
    ours = {table for table, _ in current.policies}
    for table in sorted(set(current.row_security) - set(desired.row_security)):
        if table in ours and table not in current.foreign_policies:
            statements += [
                f"ALTER TABLE {q(table)} NO FORCE ROW LEVEL SECURITY",
                f"ALTER TABLE {q(table)} DISABLE ROW LEVEL SECURITY",
            ]
    return statements


def create_policies(desired: State, current: State, stale: set[tuple[str, str]]) -> list[str]:
    statements = []
    for (table, name), definition in sorted(desired.policies.items()):
        if (table, name) not in current.policies or (table, name) in stale:
            statements += [definition, f"COMMENT ON POLICY {q(name)} ON {q(table)} IS {comment(definition)}"]
    return statements


# --- apply ---------------------------------------------------------------------------------------------------------


def apply(warehouse, policy: AccessPolicy, schema: StarSchema) -> ApplyResult:
    """Apply the policy to the PostgreSQL warehouse in one transaction; the statements that ran are reported."""
    present = set(warehouse.tables())
    accesses = resolve(policy, schema, present)
    result = ApplyResult("postgresql", True, missing_tables=missing_tables(policy, schema, present))
    with warehouse.session() as session:
        schema_name = session.execute("SELECT current_schema()").fetchone()[0]
        steps = plan(policy, desired_state(policy, accesses, schema), current_state(session, policy), schema_name)
        for statement in steps.statements:
            session.execute(statement)
        result.changes = list(steps.statements)
        for role in steps.drop_roles:
            reason = drop_role(session, role)
            if reason is None:
                result.dropped_roles.append(role)
                result.changes.append(f"DROP ROLE {q(role)}")
            else:
                result.kept_roles.append(role)
                result.warnings.append(kept_message(role, reason))
    return result


def kept_message(role: str, reason: str) -> str:
    return (
        f"role {role} is no longer in the policy: its access in this schema is revoked, but it was not dropped "
        f"({reason}), e.g. because it still holds privileges or objects elsewhere in the cluster"
    )


def drop_role(session: Session, role: str) -> str | None:
    """DROP ROLE; when the database refuses (the role still holds something outside this schema), the reason, and
    the rest of the apply (its revocations) stands."""
    session.execute("SAVEPOINT drop_role")
    try:
        session.execute(f"DROP ROLE {q(role)}")
    except psycopg.Error as error:
        session.execute("ROLLBACK TO SAVEPOINT drop_role")
        return str(error).strip().splitlines()[0]
    session.execute("RELEASE SAVEPOINT drop_role")
    return None
