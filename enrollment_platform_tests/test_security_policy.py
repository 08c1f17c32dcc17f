"""The access policy file: the packaged defaults, every bad entry rejected with a message naming it, and the
resolution every compiler starts from (columns without PII, masks, row filters through the star schema).

Also the small curated lake the other test_security_* files load: the pipeline's own curated schemas (students,
courses, instructors, enrollments, the restricted student_pii, dq_results) with a few rows in four departments.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enrollment_platform.config import DimensionSpec, load_access_policy, load_catalog, load_pii_policy
from enrollment_platform.resources.lake import LocalLake
from enrollment_platform.resources.warehouse import Warehouse
from enrollment_platform.security.access import resolve
from enrollment_platform.security.policy import AccessPolicy, PolicyError, known_tables, load_policy, parse_policy
from enrollment_platform.security.schema import StarSchema, lake_sources, star_schema_from_lake

# --- a small curated lake ------------------------------------------------------------------------------------------

FLAGS = pa.list_(pa.string())
WHEN = dt.datetime(2024, 9, 1, 12, 0)
DEPARTMENTS = {"C1": "Computer Science", "C2": "Computer Science", "C3": "Mathematics", "C4": "History"}
ENROLLMENT_COURSES = ["C1", "C1", "C2", "C3", "C3", "C4", "C2", "C4", "C3", "C1"]  # 5 Computer Science


def lineage(n: int, name: str) -> dict[str, pa.Array]:
    return {
        "_source_file": pa.array([f"{name}.csv"] * n),
        "_source_row": pa.array(range(1, n + 1), pa.int64()),
        "_flags": pa.array([[] for _ in range(n)], FLAGS),
    }


def students() -> pa.Table:
    ids = [f"S{i}" for i in range(1, 7)]
    return pa.table(
        {
            "student_id": ids,
            "first_name": ["Ada", "Bo", "Cy", "Di", "Ed", "Flo"],
            "last_name": ["Lovelace", "Diddley", "Young", "Prince", "Sheeran", "Rida"],
            "birth_year": pa.array([2000, 2001, 2002, 2000, 1999, 2003], pa.int32()),
            "gender": ["F", "M", "M", "F", "M", "F"],
            "email_token": [f"tok-e{i}" for i in range(6)],
            "phone_last4": ["0132", "0199", None, "4567", "1111", "2222"],
            "ssn_token": [f"tok-s{i}" for i in range(6)],
            "city": ["Boston"] * 6,
            "state": ["MA"] * 6,
            "major": ["CS", "Math", "CS", "History", "CS", "Math"],
            "notes": ["[EMAIL] asked", None, None, "ok", None, None],
            "last_modified": pa.array([WHEN] * 6, pa.timestamp("us")),
            "full_name": ["Ada Lovelace", "Bo Diddley", "Cy Young", "Di Prince", "Ed Sheeran", "Flo Rida"],
            **lineage(6, "students"),
        }
    )


def courses() -> pa.Table:
    return pa.table(
        {
            "course_id": list(DEPARTMENTS),
            "course_name": ["Algorithms", "Databases", "Algebra", "Rome"],
            "department": list(DEPARTMENTS.values()),
            "credits": pa.array([4, 3, 4, 2], pa.int64()),
            "start_date": pa.array([dt.date(2024, 9, 1)] * 4, pa.date32()),
            "end_date": pa.array([dt.date(2024, 12, 20)] * 4, pa.date32()),
            "last_modified": pa.array([WHEN] * 4, pa.timestamp("us")),
            **lineage(4, "courses"),
        }
    )


def instructors() -> pa.Table:
    return pa.table(
        {
            "instructor_id": ["I1", "I2"],
            "first_name": ["Grace", "Alan"],
            "last_name": ["Hopper", "Turing"],
            "department": ["Computer Science", "Mathematics"],
            "specialization": ["Compilers", "Logic"],
            "rating": [4.5, 4.9],
            "email_token": ["tok-i1", "tok-i2"],
            "last_modified": pa.array([WHEN] * 2, pa.timestamp("us")),
            "full_name": ["Grace Hopper", "Alan Turing"],
            **lineage(2, "instructors"),
        }
    )


def enrollments(courses_taken: list[str] = ENROLLMENT_COURSES, marks_offset: float = 0.0) -> pa.Table:
    n = len(courses_taken)
    return pa.table(
        {
            "enrollment_id": [f"E{i:02d}" for i in range(1, n + 1)],
            "student_id": [f"S{i % 6 + 1}" for i in range(n)],
            "course_id": courses_taken,
            "instructor_id": ["I1" if DEPARTMENTS[c] == "Computer Science" else "I2" for c in courses_taken],
            "enrollment_date": pa.array([dt.date(2024, 9, 2)] * n, pa.date32()),
            "term": ["FALL"] * n,
            "status": ["active"] * n,
            "marks": [60.0 + i + marks_offset for i in range(n)],
            "grade": ["B"] * n,
            "attendance_percentage": [90.0] * n,
            "payment_status": ["paid"] * n,
            "tuition_amount": [1000.0] * n,
            "notes": [f"note {i}" if i % 3 == 0 else None for i in range(n)],
            "last_modified": pa.array([WHEN] * n, pa.timestamp("us")),
            **lineage(n, "enrollments"),
        }
    )


def student_pii() -> pa.Table:
    return pa.table(
        {
            "student_id": [f"S{i}" for i in range(1, 7)],
            "first_name": ["Ada", "Bo", "Cy", "Di", "Ed", "Flo"],
            "last_name": ["Lovelace", "Diddley", "Young", "Prince", "Sheeran", "Rida"],
            "date_of_birth": pa.array([dt.date(2000, 1, i) for i in range(1, 7)], pa.date32()),
            "email": [f"s{i}@example.edu" for i in range(1, 7)],
            "phone": ["415-555-0132"] * 6,
            "ssn": ["219-09-9998", "078-05-1121", None, "123-45-6780", "321-54-9876", "555-44-3333"],
            "address": ["1 Main St"] * 6,
            "city": ["Boston"] * 6,
            "state": ["MA"] * 6,
            "postal_code": ["02110"] * 6,
        }
    )


def dq_results(run_id: str = "run-1") -> pa.Table:
    return pa.table(
        {
            "run_id": [run_id] * 2,
            "evaluated_at": pa.array([WHEN] * 2, pa.timestamp("us")),
            "dataset": ["enrollments", "students"],
            "rule_id": ["r1", "r2"],
            "rule": ['IsComplete "enrollment_id"', 'IsPrimaryKey "student_id"'],
            "severity": ["blocking", "blocking"],
            "outcome": ["passed", "passed"],
            "evaluated": pa.array([10, 6], pa.int64()),
            "failed": pa.array([0, 0], pa.int64()),
            "score": [1.0, 1.0],
            "message": ["", ""],
        }
    )


def write_lake(root: Path, enrollment_rows: pa.Table | None = None, run_id: str = "run-1") -> LocalLake:
    """The curated lake of the tables above, in the pipeline's layout (`run_id`: the run of its dq_results)."""
    lake = LocalLake(root=str(root))
    sources = lake_sources(lake)
    data = {
        "student_dim": students(),
        "course_dim": courses(),
        "instructor_dim": instructors(),
        "enrollment_fact": enrollment_rows if enrollment_rows is not None else enrollments(),
        "student_pii": student_pii(),
    }
    for table, rows in data.items():
        pq.write_table(rows, lake.path(*sources[table]))
    pq.write_table(dq_results(run_id), lake.path("staging", "dq_results", f"{run_id}.parquet"))
    return lake


def load_warehouse(warehouse: Warehouse, lake: LocalLake, run_id: str = "run-1") -> dict:
    """The warehouse loads of the pipeline's assets (dimensions, fact, restricted table, dq_results)."""
    sources, results = lake_sources(lake), {}
    for spec in sorted(load_catalog().warehouse.values(), key=lambda s: bool(s.references)):
        load = warehouse.load_fact if spec.references else warehouse.load_dimension
        results[spec.table] = load(spec, lake.path(*sources[spec.table]))
    for table, raw in load_pii_policy()["restricted"].items():
        spec = DimensionSpec(table, raw["dataset"], raw["key"], f"{table}_key")
        results[table] = warehouse.load_table(spec, lake.path(*sources[table]))
    results["dq_results"] = warehouse.append_results("dq_results", lake.path(*sources["dq_results"]), run_id)
    return results


@pytest.fixture
def lake(tmp_path) -> LocalLake:
    return write_lake(tmp_path / "lake")


@pytest.fixture
def schema(lake) -> StarSchema:
    return star_schema_from_lake(lake)


def document() -> dict:
    return copy.deepcopy(load_access_policy())


def parse(doc: dict) -> AccessPolicy:
    tables, restricted = known_tables()
    return parse_policy(doc, tables, restricted)


# --- the packaged policy -------------------------------------------------------------------------------------------


def test_the_packaged_policy_has_the_four_default_roles():
    policy = load_policy()
    assert set(policy.roles) == {
        "enrollment_analyst",
        "enrollment_engineer",
        "enrollment_pii_admin",
        "enrollment_cs_analyst",
    }
    engineer, analyst = policy.roles["enrollment_engineer"], policy.roles["enrollment_analyst"]
    assert engineer.tables["enrollment_fact"].privileges == {"SELECT", "INSERT", "UPDATE", "DELETE"}
    assert engineer.schema == {"CREATE"}
    assert {rule.privileges for rule in analyst.tables.values()} == {frozenset({"SELECT"})}
    assert "student_pii" not in analyst.tables and not analyst.pii
    assert set(policy.roles["enrollment_pii_admin"].tables) == {"student_pii"}
    cs = policy.roles["enrollment_cs_analyst"]
    assert [(f.table, f.column, f.values) for f in cs.row_filters] == [
        ("course_dim", "department", ("Computer Science",))
    ]
    assert cs.tables == analyst.tables and cs.masks == analyst.masks  # extends copies, it does not grant
    assert all(policy.is_managed(name) for name in policy.roles) and not policy.is_managed("postgres")


def test_the_analyst_gets_no_pii_column_and_sees_masked_values(schema):
    accesses = {(a.role, a.table): a for a in resolve(load_policy(), schema)}
    students = accesses[("enrollment_analyst", "student_dim")]
    pii = {"first_name", "last_name", "full_name", "email_token", "ssn_token", "notes"}
    assert not pii & set(students.columns)
    assert {"student_key", "student_id", "birth_year", "city"} <= set(students.columns)
    assert [(m.column, m.function) for m in students.masks] == [("phone_last4", "redact")]
    assert "phone_last4" in students.columns and "phone_last4" not in students.plain_columns
    assert accesses[("enrollment_engineer", "student_dim")].all_columns
    assert ("enrollment_analyst", "student_pii") not in accesses
    assert accesses[("enrollment_pii_admin", "student_pii")].all_columns


def test_a_department_filter_limits_the_dimension_and_the_facts_through_it(schema):
    accesses = {(a.role, a.table): a for a in resolve(load_policy(), schema)}
    course = accesses[("enrollment_cs_analyst", "course_dim")].scopes
    fact = accesses[("enrollment_cs_analyst", "enrollment_fact")].scopes
    assert [(s.column, s.lookup) for s in course] == [("department", None)]
    assert [(s.column, s.lookup) for s in fact] == [("course_key", "course_dim")]
    assert accesses[("enrollment_cs_analyst", "student_dim")].scopes == ()
    assert accesses[("enrollment_analyst", "enrollment_fact")].scopes == ()


def test_prefixed_renames_every_role_and_the_managed_prefixes():
    policy = load_policy().prefixed("dev_")
    assert set(policy.roles) == {f"dev_{name}" for name in load_policy().roles}
    assert policy.is_managed("dev_enrollment_old") and not policy.is_managed("enrollment_analyst")
    assert set(policy.without("dev_enrollment_cs_analyst").roles) == set(policy.roles) - {"dev_enrollment_cs_analyst"}


def test_the_policy_file_can_be_replaced_or_turned_off(tmp_path):
    doc = document()
    del doc["roles"]["enrollment_cs_analyst"]
    custom = tmp_path / "policy.yaml"
    custom.write_text(__import__("yaml").safe_dump(doc))
    assert "enrollment_cs_analyst" not in load_policy(environ={"ENROLLMENT_ACCESS_POLICY": str(custom)}).roles
    assert load_policy(environ={"ENROLLMENT_ACCESS_POLICY": "off"}) is None


# --- every bad entry names itself ------------------------------------------------------------------------------------


def set_in(doc: dict, path: list, value) -> dict:
    target = doc
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value
    return doc


ANALYST = ["roles", "enrollment_analyst"]
CS = ["roles", "enrollment_cs_analyst"]
BAD_FILES = [
    ([*ANALYST, "tables", "grades"], ["SELECT"], r"roles\.enrollment_analyst\.tables: unknown table 'grades'"),
    ([*ANALYST, "tables", "course_dim"], ["SELEKT"], r"unknown privilege\(s\) \['SELEKT'\]"),
    ([*CS, "extends"], "enrollment_ghost", r"roles\.enrollment_cs_analyst\.extends: unknown role 'enrollment_ghost'"),
    ([*ANALYST, "tables", "student_pii"], ["SELECT"], r"student_pii: a restricted table needs a role with pii: true"),
    (["roles", "reporting"], {"tables": {"course_dim": ["SELECT"]}}, r"roles\.reporting: not under a managed prefix"),
    ([*ANALYST, "masks", "student_dim.phone_last4"], "scramble", r"phone_last4: unknown mask 'scramble'"),
    ([*ANALYST, "masks", "grades.x"], "redact", r"masks\.grades\.x: unknown table 'grades'"),
    ([*ANALYST, "row_filters"], [{"column": "course_dim.department", "in": []}], r"\[0\]: `in` must be a non-empty"),
    ([*ANALYST, "row_filters"], [{"column": "department", "in": ["x"]}], r"expected table\.column, got 'department'"),
    ([*ANALYST, "extends"], "enrollment_cs_analyst", r"extends itself through enrollment_\w+ -> enrollment_\w+ -> "),
    (
        ["roles", "enrollment_engineer", "tables", "course_dim"],
        {"privileges": ["UPDATE"], "exclude": ["credits"]},
        r"tables\.course_dim: columns/exclude limit what a role selects",
    ),
    ([*ANALYST, "grants"], ["SELECT"], r"roles\.enrollment_analyst: unknown key\(s\) grants"),
    (["pii_columns", "grades"], ["x"], r"pii_columns\.grades: unknown table 'grades'"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD_FILES, ids=[m[:40] for _, _, m in BAD_FILES])
def test_a_bad_entry_is_rejected_with_a_message_naming_it(path, value, message):
    with pytest.raises(PolicyError, match=message):
        parse(set_in(document(), path, value))


BAD_COLUMNS = [
    (
        [*ANALYST, "tables", "course_dim"],
        {"privileges": ["SELECT"], "exclude": ["budget"]},
        r"roles\.enrollment_analyst\.tables\.course_dim\.exclude: unknown column\(s\) \['budget'\] of course_dim",
    ),
    ([*ANALYST, "masks", "student_dim.phone"], "redact", r"masks: unknown column\(s\) \['phone'\] of student_dim"),
    ([*ANALYST, "masks", "student_dim.birth_year"], "redact", r"birth_year: redact masks text columns .* use null"),
    (
        [*CS, "row_filters"],
        [{"column": "course_dim.faculty", "in": ["x"]}],
        r"roles\.enrollment_cs_analyst\.row_filters: unknown column\(s\) \['faculty'\] of course_dim",
    ),
    (["pii_columns", "student_dim"], ["passport"], r"pii_columns\.student_dim: unknown column\(s\) \['passport'\]"),
    (
        [*CS, "tables", "course_dim"],
        {"privileges": ["SELECT"], "columns": ["course_id"]},
        r"filters enrollment_fact through course_dim, so the role must select course_key, department",
    ),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD_COLUMNS, ids=[m[:40] for _, _, m in BAD_COLUMNS])
def test_an_unknown_or_unusable_column_is_named_when_resolved(schema, path, value, message):
    policy = parse(set_in(document(), path, value))
    with pytest.raises(PolicyError, match=message):
        resolve(policy, schema)
