"""The access policy (config/access_policy.yaml) as a checked model: roles, privileges, table and column rules,
masks and row filters. A bad entry raises a PolicyError naming it (file, role, table, column).

Table names are checked here, against the tables the config defines (star schema, restricted tables, dq_results);
column names are checked when the policy is resolved against the tables' actual columns (access.resolve).
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from enrollment_platform.config import ConfigError, load_access_policy, load_catalog, load_pii_policy

POLICY_ENV = "ENROLLMENT_ACCESS_POLICY"
DQ_RESULTS = "dq_results"
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
WRITE_PRIVILEGES = frozenset({"INSERT", "UPDATE", "DELETE"})
SCHEMA_PRIVILEGES = ("CREATE",)
MASK_FUNCTIONS = ("redact", "null", "partial")
EVERY_TABLE = "*"
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
LAKE_PRINCIPAL = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")
TOP_KEYS = {"name", "managed_role_prefixes", "pii_columns", "lake_formation", "roles"}
ROLE_KEYS = {"description", "extends", "pii", "schema", "tables", "masks", "row_filters", "members", "lake_principal"}
RULE_KEYS = {"privileges", "columns", "exclude"}

Value = str | int | float


class PolicyError(ConfigError):
    """An entry of the access policy is wrong; the message names it."""


@dataclass(frozen=True)
class TableRule:
    """What a role may do with one table: privileges, and which columns it may select."""

    table: str
    privileges: frozenset[str]
    columns: tuple[str, ...] | None = None  # the only columns it may select (None: every column)
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mask:
    """A column a role sees masked: `redact` ('****'), `null`, or `partial` (keep the last `keep_last` chars)."""

    table: str
    column: str
    function: str
    keep_last: int = 0


@dataclass(frozen=True)
class RowFilter:
    """Rows of `table` (and of the tables referencing it) limited to `column IN values`."""

    table: str
    column: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Role:
    name: str
    description: str = ""
    pii: bool = False
    schema: frozenset[str] = frozenset()
    tables: Mapping[str, TableRule] = field(default_factory=dict)
    masks: tuple[Mask, ...] = ()
    row_filters: tuple[RowFilter, ...] = ()
    members: tuple[str, ...] | None = None  # None: membership is managed elsewhere
    lake_principal: str | None = None


@dataclass(frozen=True)
class AccessPolicy:
    name: str
    managed_prefixes: tuple[str, ...]
    roles: Mapping[str, Role]
    pii_columns: Mapping[str, tuple[str, ...]]
    restricted: frozenset[str]
    lake_principal_prefix: str = ""

    def is_managed(self, role: str) -> bool:
        """Whether the platform owns a role of this name (and may revoke what it holds or drop it)."""
        return any(role.startswith(prefix) for prefix in self.managed_prefixes)

    @property
    def has_row_filters(self) -> bool:
        return any(role.row_filters for role in self.roles.values())

    def prefixed(self, prefix: str) -> AccessPolicy:
        """The same policy with every role (and managed prefix) renamed `prefix + name`: several environments, or
        test runs, in one database cluster without sharing roles."""
        roles = {prefix + name: replace(role, name=prefix + name) for name, role in self.roles.items()}
        return replace(self, roles=roles, managed_prefixes=tuple(prefix + p for p in self.managed_prefixes))

    def without(self, *names: str) -> AccessPolicy:
        """The policy with these roles removed (as if deleted from the file)."""
        missing = [n for n in names if n not in self.roles]
        if missing:
            raise PolicyError(f"no role {', '.join(map(repr, missing))} in the access policy")
        return replace(self, roles={n: r for n, r in self.roles.items() if n not in names})


# --- reading the file --------------------------------------------------------------------------------------------


def known_tables() -> tuple[list[str], frozenset[str]]:
    """The tables a policy may name (star schema, restricted tables, dq_results), and the restricted ones."""
    restricted = frozenset(load_pii_policy().get("restricted", {}))
    return [*load_catalog().warehouse, *sorted(restricted), DQ_RESULTS], restricted


def load_policy(path: str | None = None, environ: Mapping[str, str] | None = None) -> AccessPolicy | None:
    """The access policy: `path`, else $ENROLLMENT_ACCESS_POLICY, else the packaged file. None when the variable is
    `off` (the deployment manages its warehouse's roles itself)."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(POLICY_ENV, "").strip() or None
    if path and path.lower() == "off":
        return None
    tables, restricted = known_tables()
    return parse_policy(load_access_policy(path), tables, restricted, source=path or "access_policy.yaml")


def parse_policy(
    document: Mapping[str, Any], tables: Sequence[str], restricted: Collection[str], source: str = "access_policy.yaml"
) -> AccessPolicy:
    """Check and parse a policy document; `tables` are the tables it may name, `restricted` those "*" leaves out."""
    parser = _Parser(source, list(tables), frozenset(restricted))
    return parser.policy(document)


class _Parser:
    def __init__(self, source: str, tables: list[str], restricted: frozenset[str]) -> None:
        self.source, self.tables, self.restricted = source, tables, restricted

    def fail(self, where: str, message: str) -> PolicyError:
        return PolicyError(f"{self.source}: {where}: {message}")

    def table(self, where: str, name: Any) -> str:
        if name not in self.tables:
            raise self.fail(where, f"unknown table {name!r} (known: {', '.join(self.tables)})")
        return name

    def strings(self, where: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(where, f"expected a list of names, got {value!r}")
        return tuple(value)

    def column_ref(self, where: str, value: Any) -> tuple[str, str]:
        if not isinstance(value, str) or value.count(".") != 1:
            raise self.fail(where, f"expected table.column, got {value!r}")
        table, column = value.split(".")
        return self.table(where, table), column

    # --- the document ---

    def policy(self, document: Mapping[str, Any]) -> AccessPolicy:
        unknown = set(document) - TOP_KEYS
        if unknown:
            raise self.fail("top level", f"unknown key(s) {', '.join(sorted(unknown))} (known: {sorted(TOP_KEYS)})")
        prefixes = self.strings("managed_role_prefixes", document.get("managed_role_prefixes"))
        pii = {
            self.table(f"pii_columns.{t}", t): self.strings(f"pii_columns.{t}", cols)
            for t, cols in (document.get("pii_columns") or {}).items()
        }
        raw_roles = document.get("roles")
        if not isinstance(raw_roles, dict) or not raw_roles:
            raise self.fail("roles", "expected a mapping of role names to what each may do")
        roles = {name: self.resolved_role(name, raw_roles, ()) for name in raw_roles}
        for role in roles.values():
            self.check_role(role, prefixes)
        lake = document.get("lake_formation") or {}
        return AccessPolicy(
            name=str(document.get("name", "enrollment-platform")),
            managed_prefixes=prefixes,
            roles=roles,
            pii_columns=pii,
            restricted=self.restricted,
            lake_principal_prefix=str(lake.get("principal_prefix", "")),
        )

    # --- one role, with what it extends ---

    def resolved_role(self, name: str, raw_roles: Mapping[str, Any], chain: tuple[str, ...]) -> Role:
        where = f"roles.{name}"
        if name in chain:
            raise self.fail(where, f"extends itself through {' -> '.join([*chain, name])}")
        raw = raw_roles[name]
        if not isinstance(raw, dict):
            raise self.fail(where, f"expected a mapping, got {raw!r}")
        unknown = set(raw) - ROLE_KEYS
        if unknown:
            raise self.fail(where, f"unknown key(s) {', '.join(sorted(unknown))} (known: {sorted(ROLE_KEYS)})")
        own = self.own_role(name, raw)
        base_name = raw.get("extends")
        if base_name is None:
            return own
        if base_name not in raw_roles:
            raise self.fail(f"{where}.extends", f"unknown role {base_name!r}")
        base = self.resolved_role(base_name, raw_roles, (*chain, name))
        own_masks = {(m.table, m.column) for m in own.masks}
        return replace(
            own,
            pii=own.pii if "pii" in raw else base.pii,
            schema=base.schema | own.schema,
            tables={**base.tables, **own.tables},
            masks=(*(m for m in base.masks if (m.table, m.column) not in own_masks), *own.masks),
            row_filters=(*base.row_filters, *own.row_filters),
        )

    def own_role(self, name: str, raw: Mapping[str, Any]) -> Role:
        where = f"roles.{name}"
        pii = raw.get("pii", False)
        if not isinstance(pii, bool):
            raise self.fail(f"{where}.pii", f"expected true or false, got {pii!r}")
        schema = self.strings(f"{where}.schema", raw.get("schema", []))
        bad = [p for p in schema if p not in SCHEMA_PRIVILEGES]
        if bad:
            raise self.fail(f"{where}.schema", f"unknown schema privilege(s) {bad} (known: {SCHEMA_PRIVILEGES})")
        members = raw.get("members")
        principal = raw.get("lake_principal")
        if principal is not None and not (isinstance(principal, str) and LAKE_PRINCIPAL.match(principal)):
            raise self.fail(f"{where}.lake_principal", f"{principal!r} is not an IAM role name suffix")
        return Role(
            name=name,
            description=str(raw.get("description", "")),
            pii=pii,
            schema=frozenset(schema),
            tables=self.table_rules(where, raw.get("tables") or {}),
            masks=self.masks(where, raw.get("masks") or {}),
            row_filters=self.row_filters(where, raw.get("row_filters") or []),
            members=None if members is None else self.strings(f"{where}.members", members),
            lake_principal=principal,
        )

    def table_rules(self, where: str, raw: Mapping[str, Any]) -> dict[str, TableRule]:
        rules: dict[str, TableRule] = {}
        if EVERY_TABLE in raw:
            for table in self.tables:
                if table not in self.restricted:
                    rules[table] = self.table_rule(f"{where}.tables.{EVERY_TABLE}", table, raw[EVERY_TABLE])
        for table, spec in raw.items():
            if table != EVERY_TABLE:
                rules[table] = self.table_rule(f"{where}.tables.{table}", self.table(f"{where}.tables", table), spec)
        return rules

    def table_rule(self, where: str, table: str, spec: Any) -> TableRule:
        if isinstance(spec, list):
            spec = {"privileges": spec}
        if not isinstance(spec, dict) or set(spec) - RULE_KEYS:
            raise self.fail(where, f"expected a list of privileges or a mapping with {sorted(RULE_KEYS)}")
        privileges = self.strings(f"{where}.privileges", spec.get("privileges"))
        bad = [p for p in privileges if p not in PRIVILEGES]
        if bad:
            raise self.fail(f"{where}.privileges", f"unknown privilege(s) {bad} (known: {PRIVILEGES})")
        columns = spec.get("columns")
        exclude = self.strings(f"{where}.exclude", spec.get("exclude", []))
        if (columns is not None or exclude) and WRITE_PRIVILEGES & set(privileges):
            message = "columns/exclude limit what a role selects; a rule with write privileges covers whole rows"
            raise self.fail(where, message)
        return TableRule(
            table,
            frozenset(privileges),
            None if columns is None else self.strings(f"{where}.columns", columns),
            exclude,
        )

    def masks(self, where: str, raw: Mapping[str, Any]) -> tuple[Mask, ...]:
        masks = []
        for target, spec in raw.items():
            at = f"{where}.masks.{target}"
            table, column = self.column_ref(at, target)
            spec = {"function": spec} if isinstance(spec, str) else spec
            function = spec.get("function") if isinstance(spec, dict) else None
            if function not in MASK_FUNCTIONS:
                raise self.fail(at, f"unknown mask {function!r} (known: {', '.join(MASK_FUNCTIONS)})")
            keep_last = spec.get("keep_last", 0)
            if function == "partial" and not (isinstance(keep_last, int) and 0 < keep_last <= 64):
                raise self.fail(at, f"partial needs keep_last: a number of characters from 1 to 64, got {keep_last!r}")
            masks.append(Mask(table, column, function, keep_last if function == "partial" else 0))
        return tuple(masks)

    def row_filters(self, where: str, raw: Any) -> tuple[RowFilter, ...]:
        if not isinstance(raw, list):
            raise self.fail(f"{where}.row_filters", f"expected a list of {{column, in}}, got {raw!r}")
        filters = []
        for i, spec in enumerate(raw):
            at = f"{where}.row_filters[{i}]"
            if not isinstance(spec, dict) or set(spec) != {"column", "in"}:
                raise self.fail(at, f"expected {{column: table.column, in: [values]}}, got {spec!r}")
            table, column = self.column_ref(at, spec["column"])
            values = spec["in"]
            valid = isinstance(values, list) and values
            if not valid or any(isinstance(v, bool) or not isinstance(v, str | int | float) for v in values):
                raise self.fail(at, f"`in` must be a non-empty list of texts or numbers, got {values!r}")
            filters.append(RowFilter(table, column, tuple(values)))
        return tuple(filters)

    # --- checks across a role ---

    def check_role(self, role: Role, prefixes: Sequence[str]) -> None:
        where = f"roles.{role.name}"
        if not ROLE_NAME.match(role.name):
            raise self.fail(
                where, "a role name is lowercase letters, digits and _ (at most 63), starting with a letter"
            )
        if not any(role.name.startswith(p) for p in prefixes):
            raise self.fail(where, f"not under a managed prefix {list(prefixes)}: the platform could not revoke it")
        for table in role.tables:
            if table in self.restricted and not role.pii:
                raise self.fail(f"{where}.tables.{table}", "a restricted table needs a role with pii: true")
        for mask in role.masks:
            rule = role.tables.get(mask.table)
            if rule is None or "SELECT" not in rule.privileges:
                raise self.fail(f"{where}.masks.{mask.table}.{mask.column}", f"the role cannot select {mask.table}")
        for row_filter in role.row_filters:
            if row_filter.table not in role.tables:
                target = f"{row_filter.table}.{row_filter.column}"
                raise self.fail(f"{where}.row_filters", f"{target}: the role has no access to {row_filter.table}")
