"""The access policy on a real PostgreSQL server: each test logs in as a user holding one policy role.

The module loads the small curated lake (test_security_policy) into a schema of its own, applies the packaged policy
with every role renamed under a unique prefix (roles are cluster-wide; parallel runs never share one), with one
login user per role as its member, and removes every role, user and the schema at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import psycopg
import pytest
from psycopg import errors

from enrollment_platform.config import load_access_policy
from enrollment_platform.resources.warehouse import PostgresWarehouse
from enrollment_platform.security.apply import apply_policy
from enrollment_platform.security.policy import AccessPolicy, known_tables, parse_policy
from enrollment_platform.security.schema import StarSchema, star_schema_from_lake
from enrollment_platform_tests.test_security_policy import enrollments, load_warehouse, write_lake

pytestmark = pytest.mark.postgres

ROLES = {"analyst": "enrollment_analyst", "cs": "enrollment_cs_analyst", "engineer": "enrollment_engineer"}
ROLES |= {"pii": "enrollment_pii_admin"}
CS_FACTS = (
    "SELECT count(*) FROM enrollment_fact f JOIN course_dim c USING (course_key) "
    "WHERE c.department = 'Computer Science'"
)


@dataclass
class Secured:
    """The secured schema: the superuser's warehouse, the policy, and how to log in as each role's user."""

    base_url: str
    schema: str
    prefix: str
    policy: AccessPolicy
    star: StarSchema
    warehouse: PostgresWarehouse
    lake: object

    def url(self, user: str | None = None) -> str:
        url = self.base_url if user is None else self.base_url.replace("postgres@", f"{user}@", 1)
        return f"{url}?options=-csearch_path%3D{self.schema}"

    def user(self, short: str) -> str:
        return f"{self.prefix}{short}"

    def role(self, short: str) -> str:
        return f"{self.prefix}{ROLES[short]}"

    @contextmanager
    def login(self, short: str) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.url(self.user(short)), autocommit=True) as connection:
            yield connection

    def superuser(self, sql: str) -> list[tuple]:
        return self.warehouse.query(sql)


def policy_with_members(prefix: str) -> AccessPolicy:
    """The packaged policy, each role with a login user of the test as its member, renamed under `prefix`."""
    document = load_access_policy()
    for short, role in ROLES.items():
        document["roles"][role]["members"] = [f"{prefix}{short}"]
    tables, restricted = known_tables()
    return parse_policy(document, tables, restricted).prefixed(prefix)


def run(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


@pytest.fixture(scope="module")
def secured(postgres_url, tmp_path_factory) -> Iterator[Secured]:
    tag = uuid.uuid4().hex[:10]
    prefix, schema = f"t{tag}_", f"ep_sec_{tag}"
    users = [f"{prefix}{short}" for short in [*ROLES, "nobody"]]
    run(postgres_url, f"CREATE SCHEMA {schema}", *(f"CREATE ROLE {u} LOGIN" for u in users))
    base = postgres_url.split("?")[0]
    warehouse = PostgresWarehouse(url=f"{base}?options=-csearch_path%3D{schema}")
    lake = write_lake(tmp_path_factory.mktemp("secured_lake"))
    load_warehouse(warehouse, lake)
    policy = policy_with_members(prefix)
    star = star_schema_from_lake(lake)
    try:
        first = apply_policy(warehouse, policy, star)
        assert first.enforced and first.changes and not first.warnings
        yield Secured(base, schema, prefix, policy, star, warehouse, lake)
    finally:
        apply_policy(warehouse, policy.without(*policy.roles), star)  # drops every role the test created
        run(postgres_url, f"DROP SCHEMA IF EXISTS {schema} CASCADE", *(f"DROP ROLE IF EXISTS {u}" for u in users))


def denied(connection: psycopg.Connection, sql: str) -> str:
    """The permission error a statement raises (it must raise one)."""
    with pytest.raises(errors.InsufficientPrivilege) as raised:
        connection.execute(sql)
    return str(raised.value)


# --- the analyst --------------------------------------------------------------------------------------------------


def test_the_analyst_is_denied_pii_columns_and_reads_the_others(secured):
    with secured.login("analyst") as analyst:
        for column in ("ssn_token", "first_name", "email_token", "full_name", "phone_last4"):
            assert "permission denied for table student_dim" in denied(analyst, f"SELECT {column} FROM student_dim")
        assert "permission denied" in denied(analyst, "SELECT * FROM student_dim")
        assert analyst.execute("SELECT student_id, birth_year, city FROM student_dim ORDER BY 1").fetchall() == [
            (f"S{i}", year, "Boston") for i, year in enumerate([2000, 2001, 2002, 2000, 1999, 2003], start=1)
        ]
        assert analyst.execute("SELECT count(*) FROM enrollment_fact").fetchone() == (10,)
        assert analyst.execute("SELECT count(*) FROM dq_results").fetchone() == (2,)


def test_the_analyst_reads_masked_values_through_its_view(secured):
    view = f"student_dim__{secured.role('analyst')}"
    with secured.login("analyst") as analyst:
        masked = analyst.execute(f'SELECT student_id, phone_last4 FROM "{view}" ORDER BY 1').fetchall()
        assert masked == [("S1", "****"), ("S2", "****"), ("S3", None), ("S4", "****"), ("S5", "****"), ("S6", "****")]
        assert "first_name" not in [d.name for d in analyst.execute(f'SELECT * FROM "{view}" LIMIT 0').description]
        notes = analyst.execute(f'SELECT DISTINCT notes FROM "enrollment_fact__{secured.role("analyst")}"').fetchall()
        assert set(notes) == {("****",), (None,)}
    assert secured.superuser("SELECT phone_last4 FROM student_dim WHERE student_id = 'S1'") == [("0132",)]


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO course_dim (course_key, course_id) VALUES (99, 'C99')",
        "UPDATE enrollment_fact SET marks = 0",
        "DELETE FROM student_dim",
        "DELETE FROM dq_results",
        "TRUNCATE course_dim",
    ],
)
def test_the_analyst_cannot_write(secured, statement):
    with secured.login("analyst") as analyst:
        assert "permission denied" in denied(analyst, statement)
    assert secured.superuser("SELECT count(*) FROM course_dim") == [(4,)]


# --- the department role ---------------------------------------------------------------------------------------------


def test_the_department_role_sees_only_its_departments_enrollments(secured):
    expected = secured.superuser(CS_FACTS)[0][0]
    total = secured.superuser("SELECT count(*) FROM enrollment_fact")[0][0]
    assert 0 < expected < total
    with secured.login("cs") as cs:
        assert cs.execute("SELECT count(*) FROM enrollment_fact").fetchone() == (expected,)
        assert cs.execute(CS_FACTS).fetchone() == (expected,)
        assert cs.execute("SELECT DISTINCT department FROM course_dim").fetchall() == [("Computer Science",)]
        view = f"enrollment_fact__{secured.role('cs')}"
        assert cs.execute(f'SELECT count(*) FROM "{view}"').fetchone() == (expected,)
        assert cs.execute("SELECT count(*) FROM student_dim").fetchone() == (6,)  # not filtered by department
        assert "permission denied" in denied(cs, "SELECT ssn_token FROM student_dim")
    with secured.login("analyst") as analyst:
        assert analyst.execute("SELECT count(*) FROM enrollment_fact").fetchone() == (total,)


def test_row_security_is_forced_so_even_the_owner_goes_through_the_policies(secured):
    assert secured.superuser(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
        "WHERE relnamespace = current_schema()::regnamespace AND relrowsecurity ORDER BY 1"
    ) == [("course_dim", True, True), ("enrollment_fact", True, True)]
    owner = secured.user("nobody")
    run(secured.url(), f"GRANT USAGE ON SCHEMA {secured.schema} TO {owner}", f"ALTER TABLE course_dim OWNER TO {owner}")
    try:
        with secured.login("nobody") as connection:
            assert connection.execute("SELECT count(*) FROM course_dim").fetchone() == (0,)  # owner, yet no policy
    finally:
        run(
            secured.url(),
            "ALTER TABLE course_dim OWNER TO postgres",
            f"REVOKE USAGE ON SCHEMA {secured.schema} FROM {owner}",
        )


# --- the PII admin and the restricted table --------------------------------------------------------------------------


def test_only_the_pii_admin_reads_the_restricted_table(secured):
    with secured.login("pii") as admin:
        rows = admin.execute("SELECT student_id, ssn FROM student_pii ORDER BY 1").fetchall()
        assert rows[0] == ("S1", "219-09-9998") and len(rows) == 6
        assert "permission denied" in denied(admin, "SELECT count(*) FROM student_dim")
    for reader in ("analyst", "cs"):
        with secured.login(reader) as connection:
            assert "permission denied for table student_pii" in denied(connection, "SELECT * FROM student_pii")
    with secured.login("nobody") as connection:  # a user holding no policy role
        qualified = f"SELECT * FROM {secured.schema}.student_pii"
        assert f"permission denied for schema {secured.schema}" in denied(connection, qualified)
    grantees = secured.superuser(
        "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
        "WHERE table_schema = current_schema() AND table_name = 'student_pii' AND privilege_type = 'SELECT'"
    )
    # the pipeline's role writes it (its upsert reads the target): the only other holder
    assert {g for (g,) in grantees} - {"postgres"} == {secured.role("pii"), secured.role("engineer")}


# --- the engineer runs the pipeline's load ----------------------------------------------------------------------------


def test_the_engineer_runs_the_pipelines_load(secured, tmp_path):
    """The warehouse loads of the pipeline's assets, as the engineer's user, on tables with forced row security:
    a changed fact (one row updated, one removed, one added) is upserted, and dq_results appended."""
    changed = enrollments(["C1", "C1", "C2", "C3", "C3", "C4", "C2", "C4", "C3", "C2", "C4"], marks_offset=0.5)
    lake = write_lake(tmp_path / "lake", changed, run_id="run-2")
    as_engineer = PostgresWarehouse(url=secured.url(secured.user("engineer")))
    results = load_warehouse(as_engineer, lake, run_id="run-2")
    fact = results["enrollment_fact"]
    assert (fact.rows, fact.inserted, fact.updated, fact.deleted) == (11, 1, 10, 0)
    assert results["dq_results"] == 2
    assert secured.superuser("SELECT count(*), min(marks) FROM enrollment_fact") == [(11, 60.5)]
    assert secured.superuser("SELECT count(*) FROM dq_results") == [(4,)]
    with secured.login("cs") as cs:  # the filter holds on the new rows too
        assert cs.execute("SELECT count(*) FROM enrollment_fact").fetchone() == secured.superuser(CS_FACTS)[0]


# --- idempotence and revocation --------------------------------------------------------------------------------------

GRANTS = (
    "SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants "
    "WHERE table_schema = current_schema() ORDER BY 1, 2, 3"
)
POLICIES = "SELECT tablename, policyname, cmd, qual FROM pg_policies WHERE schemaname = current_schema() ORDER BY 1, 2"


def test_applying_the_policy_again_changes_nothing(secured):
    before = (secured.superuser(GRANTS), secured.superuser(POLICIES))
    again = apply_policy(secured.warehouse, secured.policy, secured.star)
    assert again.changes == [] and again.dropped_roles == []
    assert (secured.superuser(GRANTS), secured.superuser(POLICIES)) == before


def test_a_role_removed_from_the_file_loses_its_access_and_is_dropped(secured):
    cs_role = secured.role("cs")
    removed = apply_policy(secured.warehouse, secured.policy.without(cs_role), secured.star)
    try:
        assert removed.dropped_roles == [cs_role]
        assert any(c.startswith(f'REVOKE SELECT ON TABLE "course_dim" FROM "{cs_role}"') for c in removed.changes)
        assert secured.superuser(f"SELECT count(*) FROM pg_roles WHERE rolname = '{cs_role}'") == [(0,)]
        with secured.login("cs") as former:  # its user remains, holding nothing
            qualified = f"SELECT count(*) FROM {secured.schema}.enrollment_fact"
            assert f"permission denied for schema {secured.schema}" in denied(former, qualified)
        # in this test's schema only: other tests apply the policy to their own schemas at the same time
        in_schema = f"relnamespace = '{secured.schema}'::regnamespace"
        assert secured.superuser(
            f"SELECT count(*) FROM pg_class WHERE relname LIKE '%cs_analyst%' AND {in_schema}"
        ) == [(0,)]
        # the filter was the only one: row security is off again, the analyst still reads everything
        assert secured.superuser(f"SELECT relname FROM pg_class WHERE relrowsecurity AND {in_schema}") == []
        with secured.login("analyst") as analyst:
            assert analyst.execute("SELECT count(*) FROM enrollment_fact").fetchone()[0] > 0
    finally:
        restored = apply_policy(secured.warehouse, secured.policy, secured.star)
    assert restored.changes and apply_policy(secured.warehouse, secured.policy, secured.star).changes == []
    with secured.login("cs") as cs:
        assert cs.execute("SELECT count(*) FROM enrollment_fact").fetchone() == secured.superuser(CS_FACTS)[0]


def test_a_grant_removed_from_the_file_is_revoked_and_a_changed_filter_replaced(secured):
    analyst, cs = secured.role("analyst"), secured.role("cs")
    roles = dict(secured.policy.roles)
    rules = {t: r for t, r in roles[analyst].tables.items() if t != "dq_results"}
    roles[analyst] = replace(roles[analyst], tables=rules)
    roles[cs] = replace(
        roles[cs], row_filters=tuple(replace(f, values=("Mathematics",)) for f in roles[cs].row_filters)
    )
    changed = replace(secured.policy, roles=roles)
    try:
        result = apply_policy(secured.warehouse, changed, secured.star)
        assert f'REVOKE SELECT ON TABLE "dq_results" FROM "{analyst}"' in result.changes
        assert f'DROP POLICY "{cs}" ON "enrollment_fact"' in result.changes
        with secured.login("analyst") as connection:
            assert "permission denied for table dq_results" in denied(connection, "SELECT * FROM dq_results")
        with secured.login("cs") as connection:
            assert connection.execute("SELECT DISTINCT department FROM course_dim").fetchall() == [("Mathematics",)]
    finally:
        apply_policy(secured.warehouse, secured.policy, secured.star)
    with secured.login("analyst") as connection:
        assert connection.execute("SELECT count(*) FROM dq_results").fetchone()[0] > 0


def test_a_member_that_does_not_exist_is_named(secured):
    role = secured.role("analyst")
    roles = dict(secured.policy.roles)
    roles[role] = replace(roles[role], members=("no_such_user_x1",))
    broken = replace(secured.policy, roles=roles)
    with pytest.raises(ValueError, match=rf"roles\.{role}\.members: no database user or role no_such_user_x1"):
        apply_policy(secured.warehouse, broken, secured.star)


def test_a_removed_role_still_holding_something_elsewhere_is_kept_with_its_access_here_revoked(secured):
    cs_role, other = secured.role("cs"), f"{secured.schema}_other"
    run(secured.url(), f"CREATE SCHEMA {other}", f"GRANT USAGE ON SCHEMA {other} TO {cs_role}")
    try:
        removed = apply_policy(secured.warehouse, secured.policy.without(cs_role), secured.star)
        assert removed.kept_roles == [cs_role] and removed.dropped_roles == []
        assert f"role {cs_role} is no longer in the policy" in removed.warnings[0]
        assert "cannot be dropped because some objects depend on it" in removed.warnings[0]
        with secured.login("cs") as former:
            qualified = f"SELECT count(*) FROM {secured.schema}.course_dim"
            assert f"permission denied for schema {secured.schema}" in denied(former, qualified)
    finally:
        run(secured.url(), f"DROP SCHEMA {other}")
        restored = apply_policy(secured.warehouse, secured.policy, secured.star)
    assert not any(c.startswith("DO $$BEGIN CREATE ROLE") for c in restored.changes)  # it was kept
    with secured.login("cs") as cs:
        assert cs.execute("SELECT count(*) FROM enrollment_fact").fetchone() == secured.superuser(CS_FACTS)[0]
