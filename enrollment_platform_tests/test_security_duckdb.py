"""DuckDB, the embedded warehouse, has no users: the policy is never called enforced there. Per-role preview views
show each role's shape (columns, masks, rows), and a policy with row filters warns that they hold nowhere."""

from __future__ import annotations

import logging
from dataclasses import replace

import dagster as dg
import pytest

from enrollment_platform.assets.security import access_policy
from enrollment_platform.resources.warehouse import DuckDBWarehouse
from enrollment_platform.security.apply import apply_policy
from enrollment_platform.security.policy import load_policy
from enrollment_platform.security.schema import star_schema_from_lake
from enrollment_platform_tests.test_security_policy import load_warehouse, write_lake


@pytest.fixture
def setup(tmp_path):
    lake = write_lake(tmp_path / "lake")
    warehouse = DuckDBWarehouse(path=str(tmp_path / "warehouse.duckdb"))
    load_warehouse(warehouse, lake)
    return lake, warehouse, star_schema_from_lake(lake)


def views(warehouse: DuckDBWarehouse) -> set[str]:
    return {name for (name,) in warehouse.query("SELECT view_name FROM duckdb_views() WHERE NOT internal")}


def test_duckdb_gets_preview_views_and_a_plain_warning_never_enforcement(setup):
    _, warehouse, schema = setup
    result = apply_policy(warehouse, load_policy(), schema)
    assert result.target == "duckdb" and result.enforced is False
    assert len(result.warnings) == 1
    assert "DuckDB has no users, roles or grants: the access policy is NOT enforced" in result.warnings[0]
    assert "enrollment_cs_analyst: course_dim.department IN ['Computer Science']" in result.warnings[0]
    assert "student_pii__enrollment_pii_admin" in views(warehouse)
    assert "student_pii__enrollment_analyst" not in views(warehouse)
    assert "enrollment_fact__enrollment_cs_analyst" in views(warehouse)
    # anyone with the file reads the tables themselves: that is why nothing is called enforced
    assert warehouse.query("SELECT count(*) FROM student_pii") == [(6,)]


def test_the_preview_views_show_each_roles_shape(setup):
    _, warehouse, schema = setup
    apply_policy(warehouse, load_policy(), schema)
    cs_facts = warehouse.query(
        "SELECT count(*) FROM enrollment_fact JOIN course_dim USING (course_key) WHERE department = 'Computer Science'"
    )
    assert warehouse.query('SELECT count(*) FROM "enrollment_fact__enrollment_cs_analyst"') == cs_facts == [(5,)]
    assert warehouse.query('SELECT count(*) FROM "enrollment_fact__enrollment_analyst"') == [(10,)]
    columns = [name for name, _ in warehouse.columns("student_dim__enrollment_analyst")]
    assert "ssn_token" not in columns and "first_name" not in columns and "phone_last4" in columns
    phones = warehouse.query('SELECT DISTINCT phone_last4 FROM "student_dim__enrollment_analyst"')
    assert set(phones) == {("****",), (None,)}
    assert "phone_last4" in [n for n, _ in warehouse.columns("student_dim__enrollment_engineer")]


def test_applying_again_changes_nothing_and_a_removed_role_loses_its_views(setup):
    _, warehouse, schema = setup
    apply_policy(warehouse, load_policy(), schema)
    warehouse.query("CREATE VIEW my_own_report AS SELECT count(*) AS n FROM course_dim")
    assert apply_policy(warehouse, load_policy(), schema).changes == []
    result = apply_policy(warehouse, load_policy().without("enrollment_cs_analyst"), schema)
    assert result.changes == [
        f'DROP VIEW "{table}__enrollment_cs_analyst"'
        for table in ("course_dim", "dq_results", "enrollment_fact", "instructor_dim", "student_dim")
    ]
    assert result.warnings == []  # no row filter left
    assert not any("cs_analyst" in v for v in views(warehouse))
    assert "my_own_report" in views(warehouse)  # not the policy's: left alone


def test_a_changed_view_definition_is_replaced(setup):
    _, warehouse, schema = setup
    policy = load_policy()
    apply_policy(warehouse, policy, schema)
    masks = tuple(m for m in policy.roles["enrollment_analyst"].masks if m.column != "phone_last4")
    changed = replace(
        policy, roles={**policy.roles, "enrollment_analyst": replace(policy.roles["enrollment_analyst"], masks=masks)}
    )
    result = apply_policy(warehouse, changed, schema)
    assert result.changes[0] == 'DROP VIEW "student_dim__enrollment_analyst"'
    assert result.changes[1].startswith('CREATE VIEW "student_dim__enrollment_analyst"')
    assert len(result.changes) == 3  # drop, create, comment
    # phone_last4 is PII and no longer masked: the analyst's view leaves it out
    assert "phone_last4" not in [n for n, _ in warehouse.columns("student_dim__enrollment_analyst")]


def test_the_asset_applies_the_policy_warns_and_reports_it(setup):
    lake, warehouse, _ = setup
    instance = dg.DagsterInstance.ephemeral()
    resources = {"lake": lake, "warehouse": warehouse}
    result = dg.materialize([access_policy], resources=resources, partition_key="2024-09-01", instance=instance)
    assert result.success
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["enforced"].value is False
    assert metadata["targets"].value == {"duckdb": {"enforced": False, "changes": metadata["changed"].value}}
    assert metadata["changed"].value > 0 and "NOT enforced" in metadata["warnings"].value[0]
    changes = metadata["changes"].value
    assert {c["target"] for c in changes} == {"duckdb"} and changes[0]["statement"].startswith("CREATE VIEW")
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert any(m.startswith("DuckDB has no users, roles or grants") for m in warnings)


def test_the_asset_can_be_turned_off(setup, monkeypatch):
    lake, warehouse, _ = setup
    monkeypatch.setenv("ENROLLMENT_ACCESS_POLICY", "off")
    result = dg.materialize(
        [access_policy], resources={"lake": lake, "warehouse": warehouse}, partition_key="2024-09-01"
    )
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["applied"].value is False
    assert views(warehouse) == set()
