"""The access policy as Lake Formation requests on the curated tables.

Grants and revocations go to moto (`mock_aws`: grant_permissions, list_permissions, revoke_permissions). moto has
no data-cells filters (and enforces nothing), so the filter requests are recorded by a thin client wrapper, which
also lists what was created so a second apply can see it, and their payloads are asserted.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import replace

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from enrollment_platform.security import lakeformation as lf
from enrollment_platform.security.policy import PolicyError, load_policy
from enrollment_platform.security.schema import lake_sources, star_schema_from_lake
from enrollment_platform_tests.test_security_policy import courses, write_lake

ACCOUNT = "123456789012"
DATABASE = "enrollment_dev"
TARGET = lf.Target(DATABASE, ACCOUNT)
PREFIX = f"arn:aws:iam::{ACCOUNT}:role/{DATABASE}-access-"
ANALYST, CS, ENGINEER = f"{PREFIX}analyst", f"{PREFIX}cs-analyst", f"{PREFIX}engineer"
STUDENT_PII_COLUMNS = ["email_token", "first_name", "full_name", "last_name", "notes", "phone_last4", "ssn_token"]


def table(name: str) -> dict:
    return {"Table": {"CatalogId": ACCOUNT, "DatabaseName": DATABASE, "Name": name}}


def excluding(name: str, columns: list[str]) -> dict:
    spec = {"CatalogId": ACCOUNT, "DatabaseName": DATABASE, "Name": name}
    return {"TableWithColumns": {**spec, "ColumnWildcard": {"ExcludedColumnNames": columns}}}


def cells(name: str, role: str = "enrollment_cs_analyst") -> dict:
    return {"DataCellsFilter": {"TableCatalogId": ACCOUNT, "DatabaseName": DATABASE, "TableName": name, "Name": role}}


class FilterRecordingClient:
    """A moto Lake Formation client plus the data-cells-filter calls moto lacks: recorded, and listed back
    (the methods take boto3's own argument names)."""

    def __init__(self, client) -> None:
        self.client, self.calls, self.filters = client, [], {}

    def __getattr__(self, name: str):
        return getattr(self.client, name)

    def create_data_cells_filter(self, TableData: dict) -> dict:
        self.calls.append(("create_data_cells_filter", copy.deepcopy(TableData)))
        self.filters[(TableData["TableName"], TableData["Name"])] = copy.deepcopy(TableData)
        return {}

    def update_data_cells_filter(self, TableData: dict) -> dict:
        self.calls.append(("update_data_cells_filter", copy.deepcopy(TableData)))
        self.filters[(TableData["TableName"], TableData["Name"])] = copy.deepcopy(TableData)
        return {}

    def delete_data_cells_filter(self, **params) -> dict:
        self.calls.append(("delete_data_cells_filter", params))
        del self.filters[(params["TableName"], params["Name"])]
        return {}

    def list_data_cells_filter(self, Table: dict, **_) -> dict:
        return {"DataCellsFilters": [f for (t, _), f in self.filters.items() if t == Table["Name"]]}


@pytest.fixture
def lake(tmp_path):
    return write_lake(tmp_path / "lake")


@pytest.fixture
def schema(lake):
    return star_schema_from_lake(lake)


@pytest.fixture
def client() -> Iterator[FilterRecordingClient]:
    with mock_aws():
        yield FilterRecordingClient(boto3.client("lakeformation", region_name="eu-west-1"))


def held(client) -> dict[tuple[str, str], set[str]]:
    """(principal, canonical resource) -> permissions, as moto lists them."""
    listed = client.list_permissions(CatalogId=ACCOUNT)["PrincipalResourcePermissions"]
    return {
        (e["Principal"]["DataLakePrincipalIdentifier"], lf.canonical(e["Resource"])): set(e["Permissions"])
        for e in listed
    }


def apply(client, lake, schema, policy=None) -> list[dict]:
    policy = policy or load_policy()
    result = lf.apply(client, policy, schema, TARGET, lf.curated_lookup(lake, schema))
    return [json.loads(change) for change in result.changes]


def test_the_department_filter_becomes_data_cells_filters_with_partiql_row_filters(lake, schema):
    wanted = lf.desired(load_policy(), schema, TARGET, lf.curated_lookup(lake, schema))
    requests = lf.plan(wanted, [], {}, TARGET)
    filters = [r.to_dict() for r in requests if r.operation == "create_data_cells_filter"]
    common = {"TableCatalogId": ACCOUNT, "DatabaseName": DATABASE, "Name": "enrollment_cs_analyst"}
    assert filters == [
        {
            "operation": "create_data_cells_filter",
            "params": {
                "TableData": {
                    **common,
                    "TableName": "curated_courses",
                    "RowFilter": {"FilterExpression": "department IN ('Computer Science')"},
                    "ColumnWildcard": {},
                }
            },
        },
        {
            "operation": "create_data_cells_filter",
            "params": {
                "TableData": {
                    **common,
                    "TableName": "curated_enrollments",
                    # PartiQL has no sub-query: the Computer Science courses, resolved from the curated courses
                    "RowFilter": {"FilterExpression": "course_id IN ('C1', 'C2')"},
                    # the analysts see notes masked; Lake Formation cannot mask, so the column is left out
                    "ColumnWildcard": {"ExcludedColumnNames": ["notes"]},
                }
            },
        },
    ]
    assert requests[0].operation == requests[1].operation == "create_data_cells_filter"  # before their grants
    cs = {"DataLakePrincipalIdentifier": CS}
    cs_grants = [r.params for r in requests if r.operation == "grant_permissions" and r.params["Principal"] == cs]
    assert {"Resource": cells("curated_enrollments"), "Permissions": ["SELECT"]}.items() <= cs_grants[1].items()
    assert cs_grants[0]["Resource"] == cells("curated_courses")
    assert all(g["PermissionsWithGrantOption"] == [] and g["CatalogId"] == ACCOUNT for g in cs_grants)


def test_the_grants_reach_lake_formation(client, lake, schema):
    apply(client, lake, schema)
    grants = held(client)
    assert grants[(ENGINEER, lf.canonical(table("curated_enrollments")))] == {"SELECT", "INSERT", "DELETE", "DESCRIBE"}
    assert grants[(ANALYST, lf.canonical(table("curated_courses")))] == {"SELECT", "DESCRIBE"}
    assert grants[(ANALYST, lf.canonical(table("curated_students")))] == {"DESCRIBE"}
    assert grants[(ANALYST, lf.canonical(excluding("curated_students", STUDENT_PII_COLUMNS)))] == {"SELECT"}
    assert grants[(ANALYST, lf.canonical(excluding("curated_enrollments", ["notes"])))] == {"SELECT"}
    assert grants[(CS, lf.canonical(cells("curated_enrollments")))] == {"SELECT"}
    assert (CS, lf.canonical(table("curated_courses"))) in grants
    assert grants[(CS, lf.canonical(table("curated_courses")))] == {"DESCRIBE"}  # rows only through the filter
    assert not any(principal.endswith("pii-admin") for principal, _ in grants)  # the restricted zone is not curated
    assert not any("dq_results" in resource or "student_pii" in resource for _, resource in grants)
    assert [name for name, _ in client.calls] == ["create_data_cells_filter", "create_data_cells_filter"]


def test_applying_again_sends_nothing(client, lake, schema):
    apply(client, lake, schema)
    before = held(client)
    assert apply(client, lake, schema) == []
    assert held(client) == before


def test_a_removed_role_is_revoked_and_its_filters_deleted(client, lake, schema):
    apply(client, lake, schema)
    outsider = {"DataLakePrincipalIdentifier": f"arn:aws:iam::{ACCOUNT}:role/enrollment-dev-glue-jobs"}
    client.grant_permissions(
        CatalogId=ACCOUNT, Principal=outsider, Resource=table("curated_courses"), Permissions=["SELECT"]
    )
    changes = apply(client, lake, schema, load_policy().without("enrollment_cs_analyst"))
    revoked = [c["params"] for c in changes if c["operation"] == "revoke_permissions"]
    assert {r["Principal"]["DataLakePrincipalIdentifier"] for r in revoked} == {CS}
    assert len(revoked) == 8  # 2 filters, 4 tables' DESCRIBE, 2 column grants
    assert [c["operation"] for c in changes][-2:] == ["delete_data_cells_filter", "delete_data_cells_filter"]
    assert [c["params"]["TableName"] for c in changes if c["operation"] == "delete_data_cells_filter"] == [
        "curated_courses",
        "curated_enrollments",
    ]
    grants = held(client)
    assert not any(principal == CS for principal, _ in grants)
    assert (outsider["DataLakePrincipalIdentifier"], lf.canonical(table("curated_courses"))) in grants  # not ours
    assert any(principal == ANALYST for principal, _ in grants)


def test_a_new_course_of_the_department_updates_the_filter(client, lake, schema):
    apply(client, lake, schema)
    rows = courses().to_pylist()
    more = [*rows, {**rows[0], "course_id": "C5", "_source_row": 5}]  # a second Computer Science course, C5
    pq.write_table(pa.Table.from_pylist(more, schema=courses().schema), lake.path(*lake_sources(lake)["course_dim"]))
    changes = apply(client, lake, schema)
    assert [c["operation"] for c in changes] == ["update_data_cells_filter"]
    assert changes[0]["params"]["TableData"]["RowFilter"] == {"FilterExpression": "course_id IN ('C1', 'C2', 'C5')"}


def test_a_filter_that_matches_no_key_matches_no_row(lake, schema):
    wanted = lf.desired(load_policy(), schema, TARGET, lambda dimension, column, values: [])
    expression = wanted.filters[("curated_enrollments", "enrollment_cs_analyst")]["RowFilter"]["FilterExpression"]
    assert expression == "course_id IS NULL AND course_id IS NOT NULL"


def test_the_target_comes_from_the_aws_deployment_settings(monkeypatch):
    assert lf.target_from_env({"ENROLLMENT_ENV": "local", "ENROLLMENT_GLUE_DATABASE": DATABASE}) is None
    assert lf.target_from_env({"ENROLLMENT_ENV": "aws"}) is None
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        assert lf.target_from_env({"ENROLLMENT_ENV": "aws", "ENROLLMENT_GLUE_DATABASE": DATABASE}) == TARGET


def test_a_role_with_a_lake_principal_needs_the_prefix(schema):
    policy = replace(load_policy(), lake_principal_prefix="")
    with pytest.raises(PolicyError, match=r"lake_formation\.principal_prefix is not set"):
        lf.desired(policy, schema, TARGET, lambda *_: [])
