"""The access policy on Redshift, statement by statement, through the Redshift resource with a recording connection
(no cluster here): roles, role grants, column grants, RLS and masking policies, one transaction; a catalog already in
line runs nothing; a removed role is detached, revoked and dropped."""

from __future__ import annotations

import pytest
import yaml

from enrollment_platform.resources.warehouse import RedshiftWarehouse
from enrollment_platform.security import redshift
from enrollment_platform.security.access import resolve
from enrollment_platform.security.policy import AccessPolicy, known_tables, load_policy, parse_policy
from enrollment_platform.security.schema import StarSchema, star_schema_from_lake
from enrollment_platform_tests.test_security_policy import write_lake
from enrollment_platform_tests.test_warehouse_redshift import RecordingConnection as WarehouseRecordingConnection

POLICY = """
name: redshift-test
managed_role_prefixes: [rs_]
pii_columns: {student_dim: [first_name, last_name, full_name, email_token, ssn_token, notes]}
roles:
  rs_engineer:
    pii: true
    schema: [CREATE]
    members: [loader]
    tables: {course_dim: [SELECT, INSERT, UPDATE, DELETE], enrollment_fact: [SELECT, INSERT, UPDATE, DELETE]}
  rs_analyst:
    tables:
      course_dim: [SELECT]
      enrollment_fact: [SELECT]
      student_dim: {privileges: [SELECT], columns: [student_key, student_id, birth_year, phone_last4]}
    masks: {student_dim.phone_last4: {function: partial, keep_last: 2}}
  rs_cs:
    extends: rs_analyst
    row_filters: [{column: course_dim.department, in: [Computer Science]}]
  rs_pii: {pii: true, tables: {student_pii: [SELECT]}}
"""
TABLES = [("course_dim",), ("enrollment_fact",), ("student_dim",), ("student_pii",)]
FACT_POLICY = "rs_rls_enrollment_fact_7ea89ddb"
MASK_POLICY = "rs_mask_partial_7326cce6"
COLUMNS = '("birth_year", "phone_last4", "student_id", "student_key")'

FIRST_APPLY = [
    'CREATE ROLE "rs_analyst"',
    'CREATE ROLE "rs_cs"',
    'CREATE ROLE "rs_engineer"',
    'CREATE ROLE "rs_pii"',
    'GRANT ROLE "rs_engineer" TO "loader"',
    'GRANT USAGE ON SCHEMA "public" TO ROLE "rs_analyst"',
    'GRANT USAGE ON SCHEMA "public" TO ROLE "rs_cs"',
    'GRANT USAGE, CREATE ON SCHEMA "public" TO ROLE "rs_engineer"',
    'GRANT USAGE ON SCHEMA "public" TO ROLE "rs_pii"',
    'GRANT SELECT ON TABLE "course_dim" TO ROLE "rs_analyst"',
    'GRANT SELECT ON TABLE "enrollment_fact" TO ROLE "rs_analyst"',
    'GRANT SELECT ON TABLE "course_dim" TO ROLE "rs_cs"',
    'GRANT SELECT ON TABLE "enrollment_fact" TO ROLE "rs_cs"',
    'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE "course_dim" TO ROLE "rs_engineer"',
    'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE "enrollment_fact" TO ROLE "rs_engineer"',
    'GRANT SELECT ON TABLE "student_pii" TO ROLE "rs_pii"',
    f'GRANT SELECT {COLUMNS} ON TABLE "student_dim" TO ROLE "rs_analyst"',
    f'GRANT SELECT {COLUMNS} ON TABLE "student_dim" TO ROLE "rs_cs"',
    'CREATE RLS POLICY "rs_rls_all_rows" USING (true)',
    f'CREATE RLS POLICY "{FACT_POLICY}" WITH ("course_key" BIGINT) USING ("course_key" IN '
    '(SELECT "course_key" FROM "course_dim" WHERE "department" IN (\'Computer Science\')))',
    f'GRANT SELECT ON TABLE "course_dim" TO RLS POLICY "{FACT_POLICY}"',
    f'CREATE MASKING POLICY "{MASK_POLICY}" WITH ("value" VARCHAR(65535)) '
    'USING (CASE WHEN "value" IS NULL THEN NULL ELSE \'****\' || RIGHT("value", 2) END)',
    'ATTACH RLS POLICY "rs_rls_all_rows" ON TABLE "enrollment_fact" TO ROLE "rs_analyst"',
    'ATTACH RLS POLICY "rs_rls_all_rows" ON TABLE "enrollment_fact" TO ROLE "rs_engineer"',
    f'ATTACH RLS POLICY "{FACT_POLICY}" ON TABLE "enrollment_fact" TO ROLE "rs_cs"',
    f'ATTACH MASKING POLICY "{MASK_POLICY}" ON "student_dim"("phone_last4") TO ROLE "rs_analyst" PRIORITY 10',
    f'ATTACH MASKING POLICY "{MASK_POLICY}" ON "student_dim"("phone_last4") TO ROLE "rs_cs" PRIORITY 10',
    'ALTER TABLE "enrollment_fact" ROW LEVEL SECURITY ON CONJUNCTION TYPE OR',
]


class RecordingConnection(WarehouseRecordingConnection):
    """The warehouse tests' redshift_connector stand-in, answering the catalog queries an apply starts with."""

    def __init__(self, canned: dict[str, list[tuple]], fail_on: str | None = None) -> None:
        defaults = {
            "SELECT table_name FROM information_schema.tables": TABLES,
            "SELECT current_schema()": [("public",)],
        }
        super().__init__(defaults | canned, fail_on)

    def after_introspection(self) -> list[str]:
        """What ran after the last catalog query of the apply."""
        last = max(i for i, sql in enumerate(self.log) if sql == redshift.MASKING_ATTACHED)
        return self.log[last + 1 :]


def compact_policy() -> AccessPolicy:
    tables, restricted = known_tables()
    return parse_policy(yaml.safe_load(POLICY), tables, restricted)


@pytest.fixture
def schema(tmp_path) -> StarSchema:
    return star_schema_from_lake(write_lake(tmp_path / "lake"))


def warehouse(connection: RecordingConnection) -> RedshiftWarehouse:
    return RedshiftWarehouse(
        host="cluster.abc123.eu-west-1.redshift.amazonaws.com",
        database="enrollment",
        user="admin",
        iam_role="arn:aws:iam::123456789012:role/enrollment-redshift-copy",
        lake_root="/lake",
        lake_s3_uri="s3://enrollment-lake/prod",
    ).with_connection(lambda: connection)


def catalog(policy: AccessPolicy, schema: StarSchema, members: list[tuple[str, str]] | None = None) -> dict:
    """The SVV_* rows of a database where `policy` was applied (what the catalog views would answer)."""
    state, _ = redshift.desired_state(policy, resolve(policy, schema, {t for (t,) in TABLES}), schema)
    return {
        redshift.ROLES: [(r,) for r in state.roles],
        redshift.MEMBERS: members if members is not None else sorted(state.members),
        redshift.SCHEMA_GRANTS: sorted(state.grants.schema),
        redshift.TABLE_GRANTS: sorted(state.grants.tables),
        redshift.COLUMN_GRANTS: sorted(state.grants.columns),
        redshift.RLS_POLICIES: [(p,) for p in state.rls_policies],
        redshift.RLS_ATTACHED: sorted(state.rls_attached),
        redshift.RLS_TABLES: [(t,) for t in state.rls_tables],
        redshift.MASKING_POLICIES: [(p,) for p in state.masking_policies],
        redshift.MASKING_ATTACHED: [(p, t, f'["{c}"]', r, prio) for p, t, c, r, prio in sorted(state.masking_attached)],
    }


def test_the_policy_compiles_to_redshift_statements_run_in_one_transaction(schema):
    connection = RecordingConnection({})
    result = redshift.apply(warehouse(connection), compact_policy(), schema)
    assert result.changes == FIRST_APPLY
    assert connection.after_introspection() == [*FIRST_APPLY, "COMMIT"]
    assert result.target == "redshift" and result.enforced
    assert result.warnings == [
        "Redshift: course_dim is the lookup table of a row-level security policy, and Redshift allows no RLS on a "
        "lookup table; the roles filtered through it see every row of course_dim itself"
    ]
    assert set(redshift.INTROSPECTION) <= set(connection.log)


def test_a_catalog_already_in_line_runs_nothing(schema):
    policy = compact_policy()
    connection = RecordingConnection(catalog(policy, schema))
    result = redshift.apply(warehouse(connection), policy, schema)
    assert result.changes == []
    assert connection.after_introspection() == ["COMMIT"]


def test_a_removed_role_is_detached_revoked_and_dropped_and_members_follow_the_file(schema):
    """Without rs_cs no role filters rows any more: every RLS attachment goes, RLS is turned off, rs_cs dropped."""
    before = compact_policy()
    members = [("rs_engineer", "loader"), ("rs_engineer", "old_loader")]
    connection = RecordingConnection(catalog(before, schema, members))
    result = redshift.apply(warehouse(connection), before.without("rs_cs"), schema)
    assert result.changes == [
        'REVOKE ROLE "rs_engineer" FROM "old_loader"',
        f'DETACH MASKING POLICY "{MASK_POLICY}" ON "student_dim"("phone_last4") FROM ROLE "rs_cs"',
        'DETACH RLS POLICY "rs_rls_all_rows" ON TABLE "enrollment_fact" FROM ROLE "rs_analyst"',
        'DETACH RLS POLICY "rs_rls_all_rows" ON TABLE "enrollment_fact" FROM ROLE "rs_engineer"',
        f'DETACH RLS POLICY "{FACT_POLICY}" ON TABLE "enrollment_fact" FROM ROLE "rs_cs"',
        'DROP RLS POLICY "rs_rls_all_rows"',
        f'DROP RLS POLICY "{FACT_POLICY}"',
        'REVOKE USAGE ON SCHEMA "public" FROM ROLE "rs_cs"',
        'REVOKE SELECT ON TABLE "course_dim" FROM ROLE "rs_cs"',
        'REVOKE SELECT ON TABLE "enrollment_fact" FROM ROLE "rs_cs"',
        f'REVOKE SELECT {COLUMNS} ON TABLE "student_dim" FROM ROLE "rs_cs"',
        'ALTER TABLE "enrollment_fact" ROW LEVEL SECURITY OFF',
        'DROP ROLE "rs_cs" FORCE',
    ]
    assert result.dropped_roles == ["rs_cs"]
    assert connection.after_introspection()[-1] == "COMMIT"


def test_a_changed_filter_is_a_new_policy_and_unmanaged_roles_are_left_alone(schema):
    before = compact_policy()
    rows = catalog(before, schema)
    rows[redshift.ROLES] += [("dba_team",)]
    rows[redshift.TABLE_GRANTS] += [("dba_team", "course_dim", "SELECT")]
    document = yaml.safe_load(POLICY)
    document["roles"]["rs_cs"]["row_filters"][0]["in"] = ["Mathematics"]
    tables, restricted = known_tables()
    result = redshift.apply(warehouse(RecordingConnection(rows)), parse_policy(document, tables, restricted), schema)
    created = [c for c in result.changes if c.startswith("CREATE RLS POLICY")]
    assert len(created) == 1 and "IN ('Mathematics')" in created[0]
    new_name = created[0].split('"')[1]
    assert result.changes == [
        f'DETACH RLS POLICY "{FACT_POLICY}" ON TABLE "enrollment_fact" FROM ROLE "rs_cs"',
        f'DROP RLS POLICY "{FACT_POLICY}"',
        created[0],
        f'GRANT SELECT ON TABLE "course_dim" TO RLS POLICY "{new_name}"',
        f'ATTACH RLS POLICY "{new_name}" ON TABLE "enrollment_fact" TO ROLE "rs_cs"',
    ]
    assert not any("dba_team" in c for c in result.changes)


def test_a_failing_statement_rolls_the_whole_apply_back(schema):
    connection = RecordingConnection({}, fail_on="ATTACH RLS POLICY")
    with pytest.raises(RuntimeError, match="simulated Redshift error"):
        redshift.apply(warehouse(connection), compact_policy(), schema)
    ran = connection.after_introspection()
    assert ran[-1] == "ROLLBACK" and "COMMIT" not in ran
    assert ran[0] == 'CREATE ROLE "rs_analyst"'


def test_the_packaged_policy_on_redshift(schema):
    """Every default role, the analysts' masks as masking policies, the department filter as an RLS policy."""
    connection = RecordingConnection(
        {"SELECT table_name FROM information_schema.tables": [(t,) for t in schema.tables]}
    )
    result = redshift.apply(warehouse(connection), load_policy(), schema)
    changes = result.changes
    roles = ["enrollment_analyst", "enrollment_cs_analyst", "enrollment_engineer", "enrollment_pii_admin"]
    assert [c for c in changes if c.startswith("CREATE ROLE")] == [f'CREATE ROLE "{r}"' for r in sorted(roles)]
    masks = [c for c in changes if c.startswith("ATTACH MASKING POLICY")]
    assert len(masks) == 4  # phone_last4 and notes, for both analyst roles
    assert all('TO ROLE "enrollment_analyst"' in m or 'TO ROLE "enrollment_cs_analyst"' in m for m in masks)
    assert {m.split(" ON ")[1].split(" TO ")[0] for m in masks} == {
        '"student_dim"("phone_last4")',
        '"enrollment_fact"("notes")',
    }
    pii_grants = [c for c in changes if '"student_pii"' in c]
    assert pii_grants == [
        'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE "student_pii" TO ROLE "enrollment_engineer"',
        'GRANT SELECT ON TABLE "student_pii" TO ROLE "enrollment_pii_admin"',
    ]
    assert 'ALTER TABLE "enrollment_fact" ROW LEVEL SECURITY ON CONJUNCTION TYPE OR' in changes
    assert not any("ssn_token" in c for c in changes if "enrollment_analyst" in c)
