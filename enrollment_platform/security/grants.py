"""Privileges as sets, and the GRANT/REVOKE statements that turn the current set into the desired one.

PostgreSQL and Redshift both read what the managed roles hold from their catalogs into a `Grants`, compute the
desired `Grants` from the policy, and run `changes(desired, current)`: nothing when they are equal (a second apply is
a no-op), a REVOKE for whatever a managed role holds that the file no longer grants.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from enrollment_platform.transforms.sql import quote_ident

ORDER = ("USAGE", "CREATE", "SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@dataclass
class Grants:
    """What managed roles hold in one schema."""

    schema: set[tuple[str, str]] = field(default_factory=set)  # (role, privilege)
    tables: set[tuple[str, str, str]] = field(default_factory=set)  # (role, table or view, privilege)
    columns: set[tuple[str, str, str, str]] = field(default_factory=set)  # (role, table, column, privilege)

    def only(self, keep: Callable[[str], bool]) -> Grants:
        """The grants of the roles `keep` accepts."""
        return Grants(
            {g for g in self.schema if keep(g[0])},
            {g for g in self.tables if keep(g[0])},
            {g for g in self.columns if keep(g[0])},
        )

    def without_relations(self, relations: set[str]) -> Grants:
        """Leave out grants on these relations (views about to be dropped take their grants with them)."""
        return Grants(
            set(self.schema),
            {g for g in self.tables if g[1] not in relations},
            {g for g in self.columns if g[1] not in relations},
        )


@dataclass(frozen=True)
class GrantSql:
    """How a dialect names a grantee (`"r"` in PostgreSQL, `ROLE "r"` in Redshift) and a schema."""

    schema_name: str
    grantee_keyword: str = ""

    def grantee(self, role: str) -> str:
        return f"{self.grantee_keyword}{quote_ident(role)}"

    def schema(self, verb: str, role: str, privileges: list[str]) -> str:
        return (
            f"{verb} {', '.join(privileges)} ON SCHEMA {quote_ident(self.schema_name)} {_to(verb)} {self.grantee(role)}"
        )

    def table(self, verb: str, role: str, table: str, privileges: list[str]) -> str:
        return f"{verb} {', '.join(privileges)} ON TABLE {quote_ident(table)} {_to(verb)} {self.grantee(role)}"

    def columns(self, verb: str, role: str, table: str, privilege: str, columns: list[str]) -> str:
        names = ", ".join(quote_ident(c) for c in columns)
        return f"{verb} {privilege} ({names}) ON TABLE {quote_ident(table)} {_to(verb)} {self.grantee(role)}"


def _to(verb: str) -> str:
    return "TO" if verb == "GRANT" else "FROM"


def ordered(privileges) -> list[str]:
    return sorted(privileges, key=lambda p: (ORDER.index(p) if p in ORDER else len(ORDER), p))


def changes(desired: Grants, current: Grants, sql: GrantSql) -> tuple[list[str], list[str]]:
    """(revokes, grants) turning `current` into `desired`, one statement per role and object."""
    revokes = statements("REVOKE", current, desired, sql)
    grants = statements("GRANT", desired, current, sql)
    return revokes, grants


def statements(verb: str, having: Grants, lacking: Grants, sql: GrantSql) -> list[str]:
    """A `verb` statement for every privilege in `having` and not in `lacking`."""
    schema: dict[str, list[str]] = defaultdict(list)
    for role, privilege in having.schema - lacking.schema:
        schema[role].append(privilege)
    tables: dict[tuple[str, str], list[str]] = defaultdict(list)
    for role, table, privilege in having.tables - lacking.tables:
        tables[(role, table)].append(privilege)
    columns: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for role, table, column, privilege in having.columns - lacking.columns:
        columns[(role, table, privilege)].append(column)
    return [
        *(sql.schema(verb, role, ordered(p)) for role, p in sorted(schema.items())),
        *(sql.table(verb, role, table, ordered(p)) for (role, table), p in sorted(tables.items())),
        *(sql.columns(verb, role, table, priv, sorted(c)) for (role, table, priv), c in sorted(columns.items())),
    ]
