"""The access policy as AWS Lake Formation requests on the curated tables (Glue Data Catalog `curated_<dataset>`,
from the curated crawler), as boto3 request dicts, and a sender.

For each role with a `lake_principal` (an IAM role ARN under `lake_formation.principal_prefix`) and each curated table
it may use:
- every column, no row filter: `grant_permissions` on `Table` (SELECT, DESCRIBE, and INSERT/DELETE for writers:
  Lake Formation has no UPDATE, an update is an insert and a delete);
- some columns: `TableWithColumns` with `ColumnWildcard.ExcludedColumnNames` (a rule written as what to leave out,
  e.g. the PII columns) or `ColumnNames` (a rule listing what to keep); masked columns are left out, since Lake
  Formation cannot mask;
- a row filter: a data-cells filter (`create_data_cells_filter`, named like the role) with a PartiQL row filter and
  the columns, and SELECT on it. PartiQL filters have no sub-queries: a filter through a dimension
  (enrollments of Computer Science courses) is resolved to the dimension's natural keys, `course_id IN ('C1', …)`,
  from the curated data when the policy is applied, so it is applied again on every run.

Revocations: whatever a principal under the prefix holds on the database's tables that the policy no longer grants
is revoked (`revoke_permissions`), and filters named like a managed role that are no longer wanted are deleted.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from enrollment_platform.security.access import ApplyResult, Scope, TableAccess, resolve
from enrollment_platform.security.policy import AccessPolicy, PolicyError, Value
from enrollment_platform.security.schema import StarSchema, lake_sources

Lookup = Callable[[str, str, tuple[Value, ...]], list[Value]]  # (dimension, column, values) -> its natural keys
GRANT_OPERATIONS = ("grant_permissions", "revoke_permissions")
NO_ROWS = "{column} IS NULL AND {column} IS NOT NULL"


@dataclass(frozen=True)
class Request:
    """One Lake Formation API call: the boto3 client method and its keyword arguments."""

    operation: str
    params: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"operation": self.operation, "params": dict(self.params)}


@dataclass(frozen=True)
class Target:
    """Where the curated tables are: the Glue database and the catalog (account) id."""

    database: str
    catalog_id: str

    def prefix(self, policy: AccessPolicy) -> str:
        if not policy.lake_principal_prefix:
            raise PolicyError("lake_formation.principal_prefix is not set: roles with lake_principal need it")
        return policy.lake_principal_prefix.format(account=self.catalog_id, database=self.database)

    def principal(self, policy: AccessPolicy, role: str) -> str | None:
        suffix = policy.roles[role].lake_principal
        return None if suffix is None else self.prefix(policy) + suffix

    def table(self, name: str) -> dict[str, Any]:
        return {"Table": {"CatalogId": self.catalog_id, "DatabaseName": self.database, "Name": name}}


@dataclass
class Desired:
    grants: dict[tuple[str, str], tuple[dict, set[str]]] = field(default_factory=dict)  # key -> (resource, perms)
    filters: dict[tuple[str, str], dict] = field(default_factory=dict)  # (table, name) -> TableData

    def grant(self, principal: str, resource: dict, permissions: set[str]) -> None:
        key = (principal, canonical(resource))
        _, held = self.grants.setdefault(key, (resource, set()))
        held |= permissions


def canonical(resource: Mapping[str, Any]) -> str:
    """A resource as a comparable text: catalog ids dropped, lists sorted, `TableWithColumns` with every column
    written as the `Table` it is (Lake Formation lists a table-wide SELECT either way)."""
    value = copy.deepcopy(dict(resource))
    columns = value.get("TableWithColumns")
    if columns and "ColumnWildcard" in columns and not columns["ColumnWildcard"].get("ExcludedColumnNames"):
        value = {"Table": {k: v for k, v in columns.items() if k in ("CatalogId", "DatabaseName", "Name")}}
    for inner in value.values():
        if isinstance(inner, dict):
            inner.pop("CatalogId", None)
            inner.pop("TableCatalogId", None)
            for k, v in list(inner.items()):
                inner[k] = sorted(v) if isinstance(v, list) else v
    return json.dumps(value, sort_keys=True)


# --- the policy as grants and filters ---------------------------------------------------------------------------------


def desired(policy: AccessPolicy, schema: StarSchema, target: Target, lookup: Lookup) -> Desired:
    wanted = Desired()
    for access in resolve(policy, schema):
        principal = target.principal(policy, access.role)
        curated = schema.curated_table(access.table)
        if principal and curated:
            add_access(wanted, access, principal, curated, schema, target, lookup)
    return wanted


def lake_permissions(access: TableAccess) -> set[str]:
    """DESCRIBE, and the write permissions (Lake Formation has no UPDATE: an insert and a delete)."""
    permissions = {"DESCRIBE"}
    if access.writes & {"INSERT", "UPDATE"}:
        permissions.add("INSERT")
    if access.writes & {"DELETE", "UPDATE"}:
        permissions.add("DELETE")
    return permissions


def add_access(
    wanted: Desired,
    access: TableAccess,
    principal: str,
    curated: str,
    schema: StarSchema,
    target: Target,
    lookup: Lookup,
) -> None:
    table_resource = target.table(curated)
    base = lake_permissions(access)
    if not access.reads:
        wanted.grant(principal, table_resource, base)
        return
    columns = column_spec(access, schema)
    if access.scopes:
        data = {
            "TableCatalogId": target.catalog_id,
            "DatabaseName": target.database,
            "TableName": curated,
            "Name": access.role,
            "RowFilter": {"FilterExpression": row_filter(access, schema, lookup)},
            **(columns or {"ColumnWildcard": {}}),
        }
        wanted.filters[(curated, access.role)] = data
        cells = {k: data[k] for k in ("TableCatalogId", "DatabaseName", "TableName", "Name")}
        wanted.grant(principal, {"DataCellsFilter": cells}, {"SELECT"})
    elif columns:
        wanted.grant(principal, {"TableWithColumns": {**table_resource["Table"], **columns}}, {"SELECT"})
    else:
        base = base | {"SELECT"}
    wanted.grant(principal, table_resource, base)


def column_spec(access: TableAccess, schema: StarSchema) -> dict[str, Any] | None:
    """The curated columns the role may select (masked ones left out), as Lake Formation names them; None: all."""
    every = schema.curated_columns(access.table)
    visible = {schema.curated_column(access.table, c) for c in access.plain_columns} - {None}
    hidden = [c for c in every if c not in visible]
    if not hidden:
        return None
    if access.by_exclusion:
        return {"ColumnWildcard": {"ExcludedColumnNames": sorted(hidden)}}
    return {"ColumnNames": sorted(visible)}


def partiql_literal(value: Value) -> str:
    return "'" + value.replace("'", "''") + "'" if isinstance(value, str) else repr(value)


def scope_partiql(scope: Scope, table: str, schema: StarSchema, lookup: Lookup) -> str:
    """`department IN ('…')`, or for a filter through a dimension `course_id IN (<the dimension's keys>)`."""
    column = schema.curated_column(table, scope.column)
    values = scope.filter.values
    if scope.lookup is not None:
        values = tuple(lookup(scope.lookup, scope.filter.column, scope.filter.values))
        if not values:
            return NO_ROWS.format(column=column)
    return f"{column} IN ({', '.join(partiql_literal(v) for v in values)})"


def row_filter(access: TableAccess, schema: StarSchema, lookup: Lookup) -> str:
    return " AND ".join(scope_partiql(s, access.table, schema, lookup) for s in access.scopes)


# --- what is there now -----------------------------------------------------------------------------------------------


def pages(call: Callable[..., dict], key: str, **params: Any) -> Iterator[dict]:
    """Every item of a paginated list call (NextToken)."""
    while True:
        response = call(**params)
        yield from response.get(key, [])
        token = response.get("NextToken")
        if not token:
            return
        params = {**params, "NextToken": token}


def in_database(resource: Mapping[str, Any], database: str) -> bool:
    return any(isinstance(v, dict) and v.get("DatabaseName") == database for v in resource.values())


def current_permissions(client, policy: AccessPolicy, target: Target) -> list[dict]:
    """The grants managed principals hold on the database's tables."""
    prefix = target.prefix(policy)
    return [
        entry
        for entry in pages(client.list_permissions, "PrincipalResourcePermissions", CatalogId=target.catalog_id)
        if entry["Principal"]["DataLakePrincipalIdentifier"].startswith(prefix)
        and in_database(entry["Resource"], target.database)
    ]


def current_filters(client, policy: AccessPolicy, target: Target, tables: list[str]) -> dict[tuple[str, str], dict]:
    """The data-cells filters named like a managed role on these tables."""
    found = {}
    for table in tables:
        listed = pages(client.list_data_cells_filter, "DataCellsFilters", Table=target.table(table)["Table"])
        for data in listed:
            if policy.is_managed(data["Name"]):
                found[(table, data["Name"])] = data
    return found


# --- the plan and the sender ------------------------------------------------------------------------------------------


def same_filter(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    def comparable(data: Mapping[str, Any]) -> str:
        return canonical({"DataCellsFilter": {k: v for k, v in data.items() if k != "VersionId"}})

    return comparable(a) == comparable(b)


def plan(
    wanted: Desired, permissions: list[dict], filters: dict[tuple[str, str], dict], target: Target
) -> list[Request]:
    """Filters created or updated, grants added, grants revoked, filters deleted: nothing when all is in place."""
    held: dict[str, list[tuple[str, dict, set[str]]]] = {}
    for entry in permissions:
        principal = entry["Principal"]["DataLakePrincipalIdentifier"]
        key = canonical(entry["Resource"])
        held.setdefault(key, []).append((principal, entry["Resource"], set(entry["Permissions"])))
    requests = [
        *(
            Request("create_data_cells_filter", {"TableData": d})
            for k, d in sorted(wanted.filters.items())
            if k not in filters
        ),
        *(
            Request("update_data_cells_filter", {"TableData": d})
            for k, d in sorted(wanted.filters.items())
            if k in filters and not same_filter(d, filters[k])
        ),
    ]
    for (principal, key), (resource, permissions) in sorted(wanted.grants.items()):
        present = set().union(*(p for who, _, p in held.get(key, []) if who == principal))
        if permissions - present:
            requests.append(permission_request("grant_permissions", target, principal, resource, permissions - present))
    for key, entries in sorted(held.items()):
        for principal, resource, present in entries:
            extra = present - wanted.grants.get((principal, key), ({}, set()))[1]
            if extra:
                requests.append(permission_request("revoke_permissions", target, principal, resource, extra))
    requests += [
        Request("delete_data_cells_filter", {k: d[k] for k in ("TableCatalogId", "DatabaseName", "TableName", "Name")})
        for k, d in sorted(filters.items())
        if k not in wanted.filters
    ]
    return requests


def permission_request(
    operation: str, target: Target, principal: str, resource: dict, permissions: set[str]
) -> Request:
    return Request(
        operation,
        {
            "CatalogId": target.catalog_id,
            "Principal": {"DataLakePrincipalIdentifier": principal},
            "Resource": resource,
            "Permissions": sorted(permissions),
            "PermissionsWithGrantOption": [],
        },
    )


def send(client, requests: list[Request]) -> None:
    """Send each request with a boto3 Lake Formation client, in order."""
    for request in requests:
        getattr(client, request.operation)(**request.params)


def apply(client, policy: AccessPolicy, schema: StarSchema, target: Target, lookup: Lookup) -> ApplyResult:
    """Bring Lake Formation in line with the policy; the requests sent are reported (as JSON texts)."""
    wanted = desired(policy, schema, target, lookup)
    tables = sorted({schema.curated_table(t) for t in schema.tables} - {None})
    requests = plan(
        wanted, current_permissions(client, policy, target), current_filters(client, policy, target, tables), target
    )
    send(client, requests)
    return ApplyResult("lakeformation", True, changes=[json.dumps(r.to_dict(), sort_keys=True) for r in requests])


# --- the deployment --------------------------------------------------------------------------------------------------


def curated_lookup(lake, schema: StarSchema) -> Lookup:
    """A lookup reading the dimension's curated Parquet: the natural keys of its rows with `column IN values`."""

    def keys(dimension: str, column: str, values: tuple[Value, ...]) -> list[Value]:
        natural = schema.tables[dimension].natural_key
        source = schema.curated_column(dimension, column)
        data = pq.read_table(lake.path(*lake_sources(lake)[dimension]), columns=[natural, source])
        chosen = data.filter(pc.is_in(data[source], value_set=pa.array(list(values))))
        return sorted(set(chosen[natural].to_pylist()) - {None})

    return keys


def target_from_env(environ: Mapping[str, str] | None = None) -> Target | None:
    """The Lake Formation target in `aws` (ENROLLMENT_ENV=aws and ENROLLMENT_GLUE_DATABASE), else None."""
    environ = os.environ if environ is None else environ
    database = environ.get("ENROLLMENT_GLUE_DATABASE", "")
    if environ.get("ENROLLMENT_ENV", "local") != "aws" or not database:
        return None
    import boto3

    return Target(database, boto3.client("sts").get_caller_identity()["Account"])
