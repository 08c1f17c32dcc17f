"""The HMAC key behind PII tokens: local resolution, AWS Secrets Manager (moto), and the startup error when a
deployment that needs a key has none; keyed tokens are stable per key and differ between keys."""

from __future__ import annotations

import hashlib
import hmac

import dagster as dg
import duckdb
import pytest
from moto import mock_aws

from enrollment_platform.config import load_catalog, load_pii_policy
from enrollment_platform.pii.duckdb_functions import register_pii_functions
from enrollment_platform.pii.keys import PiiKeyError
from enrollment_platform.resources.pii import LocalPiiKey, SecretsManagerPiiKey
from enrollment_platform.transforms.redact import redact_sql

KEY_ENV = "ENROLLMENT_PII_KEY"
KEY_A, KEY_B = b"a" * 16 + b"-first-test-key", b"b" * 16 + b"-other-test-key"


def test_the_environment_key_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY_A.decode())
    assert LocalPiiKey(home=str(tmp_path)).key() == KEY_A
    assert not (tmp_path / "secrets").exists()


def test_locally_a_key_is_generated_once_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    first = LocalPiiKey(home=str(tmp_path)).key()
    assert len(first) >= 32 and LocalPiiKey(home=str(tmp_path)).key() == first
    assert (tmp_path / "secrets" / "pii_hmac.key").stat().st_mode & 0o077 == 0


def test_a_missing_key_is_an_error_where_generation_is_not_allowed(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(PiiKeyError, match=f"{KEY_ENV} is not set"):
        LocalPiiKey(home=str(tmp_path), allow_generated=False).key()
    assert not (tmp_path / "secrets").exists()


def test_a_short_key_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(PiiKeyError, match="at least 16"):
        LocalPiiKey(home=str(tmp_path)).key()


def test_a_missing_key_stops_the_run_before_any_asset(tmp_path, monkeypatch):
    """The key is checked when the run's resources start, not when the first PII asset needs it."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    from enrollment_platform.definitions import build_assets_and_checks, local_resources
    from enrollment_platform_tests.conftest import local_settings

    settings = local_settings(tmp_path / "home", tmp_path / "no_raw")
    resources = {**local_resources(settings), "pii_key": LocalPiiKey(home=str(settings.home), allow_generated=False)}
    assets, _ = build_assets_and_checks()
    result = dg.materialize(assets, resources=resources, raise_on_error=False)
    assert not result.success
    assert result.get_asset_materialization_events() == []
    failures = [e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"]
    assert failures and f"{KEY_ENV} is not set" in str(failures[0].event_specific_data.error)


@mock_aws
def test_secrets_manager_key(monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.create_secret(Name="enrollment/pii-key", SecretString=KEY_A.decode())
    client.create_secret(Name="enrollment/binary-key", SecretBinary=KEY_B)
    client.create_secret(Name="enrollment/short-key", SecretString="tiny")
    assert SecretsManagerPiiKey(secret_id="enrollment/pii-key", region_name="us-east-1").key() == KEY_A
    assert SecretsManagerPiiKey(secret_id="enrollment/binary-key", region_name="us-east-1").key() == KEY_B
    with pytest.raises(PiiKeyError, match="'enrollment/missing' could not be read"):
        SecretsManagerPiiKey(secret_id="enrollment/missing", region_name="us-east-1").key()
    with pytest.raises(PiiKeyError, match="at least 16"):
        SecretsManagerPiiKey(secret_id="enrollment/short-key", region_name="us-east-1").key()


@mock_aws
def test_a_missing_secret_fails_resource_startup():
    resource = SecretsManagerPiiKey(secret_id="enrollment/missing", region_name="us-east-1")
    with pytest.raises(PiiKeyError):
        resource.setup_for_execution(dg.build_init_resource_context())


# --- tokens ---------------------------------------------------------------------------------------------------


SQL_TYPES = {"date": "DATE", "timestamp": "TIMESTAMP", "int": "BIGINT", "double": "DOUBLE"}


def _tokens(dataset: str, row: dict[str, str], key: bytes) -> dict[str, str]:
    """The token columns of one row through the dataset's redaction SQL, in a fresh connection (a run of its own)."""
    spec = load_catalog().datasets[dataset]
    con = duckdb.connect()
    register_pii_functions(con)
    try:
        columns = [f"{name} {SQL_TYPES.get(c.type, 'VARCHAR')}" for name, c in spec.columns.items()]
        columns += [f"{name} VARCHAR" for name in spec.derived] + ["_source_file VARCHAR", "_source_row BIGINT"]
        con.execute(f"CREATE TABLE src ({', '.join(columns)}, _flags VARCHAR[])")
        con.execute(f"INSERT INTO src BY NAME SELECT {', '.join(f'? AS {name}' for name in row)}", list(row.values()))
        cursor = con.execute(redact_sql(spec, load_pii_policy(), key, "src"))
        names = [d[0] for d in cursor.description]
        return {n: v for n, v in zip(names, cursor.fetchone(), strict=True) if n.endswith("_token")}
    finally:
        con.close()


def reference_token(value: str, key: bytes) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def test_same_value_same_token_across_tables_and_runs_different_key_different_token():
    student = {"student_id": "1", "ssn": "569-60-3012", "email": " Max.Santos@Example.EDU"}
    same_person = {"student_id": "7", "ssn": "569603012", "email": "max.santos@example.edu"}
    instructor = {"instructor_id": "201", "email": "MAX.SANTOS@example.edu "}
    expected_a = {
        "email_token": reference_token("max.santos@example.edu", KEY_A),
        "ssn_token": reference_token("569603012", KEY_A),
    }
    assert _tokens("students", student, KEY_A) == _tokens("students", same_person, KEY_A) == expected_a
    assert _tokens("instructors", instructor, KEY_A) == {"email_token": expected_a["email_token"]}
    other_key = _tokens("students", student, KEY_B)
    assert other_key == {
        "email_token": reference_token("max.santos@example.edu", KEY_B),
        "ssn_token": reference_token("569603012", KEY_B),
    }
    assert set(other_key.values()).isdisjoint(expected_a.values())
